"""The bundle check assembles a bundle's canonical text from its members, each serialised once: it must refuse
exactly what the whole-document comparison refused, and give each member's own canonical text."""

import json
from pathlib import Path

import pytest

from decisions.check import _canonical_members
from strategy.decision_record import DecisionError, canonical_json

DOCUMENT = {"state": {"b": "1", "a": [1.5, None, True]}, "config": {"é": "x", "z": 0.1}, "inputs": {},
            "record": {"\U0001f600": 1, "\uffff": 2}}  # keys whose UTF-16 order differs from their code points'


def test_a_canonical_bundle_gives_its_value_and_each_members_text() -> None:
    document, members = _canonical_members(canonical_json(DOCUMENT), "bundle")
    assert document == DOCUMENT
    assert members == {key: canonical_json(value) for key, value in DOCUMENT.items()}


@pytest.mark.parametrize("text", [
    canonical_json(DOCUMENT) + " ",
    json.dumps(DOCUMENT, sort_keys=True, separators=(",", ":"), ensure_ascii=False),  # Python's key order
    json.dumps(DOCUMENT, ensure_ascii=False),
    canonical_json(DOCUMENT).replace("1.5", "1.50"),
])
def test_any_other_spelling_is_refused(text: str) -> None:
    with pytest.raises(DecisionError, match="not in canonical form"):
        _canonical_members(text, "bundle")


def test_text_that_is_not_json_is_refused() -> None:
    with pytest.raises(DecisionError, match="not JSON"):
        _canonical_members('{"record":', "bundle")


def test_a_bundle_nested_too_deep_to_parse_is_refused_before_parsing() -> None:
    # web3 (py_ecc) raises Python's recursion limit, so json.loads of this would overflow the C stack
    with pytest.raises(DecisionError, match="nests deeper than"):
        _canonical_members('{"record":' + "[" * 200_000 + "]" * 200_000 + "}", "bundle")


def test_an_unreadable_bundle_or_model_is_a_verdict_not_a_crash(tmp_path: Path, monkeypatch) -> None:
    from decisions.bundle import decision_bundle, model_path, write_bundle
    from decisions.check import BundleVerdict, check_decision
    from strategy.allocator import AllocatorConfig
    from strategy.guardrails import DEFAULT_GUARDRAILS, Guardrails, VaultState
    from strategy.market_supply import AssetUnit

    model_hash = "0x" + "cd" * 32
    bundle = decision_bundle(
        chain_id=1, vault="0x" + "00" * 20, timestamp=1, inputs={"at": "2026-12-01T00:00:00.000000Z"},
        model_hash=model_hash, allocator=AllocatorConfig(horizon_days=7.0), markets={},
        guardrails=Guardrails(**DEFAULT_GUARDRAILS, markets={}),
        state=VaultState(idle=0, positions={}, last_rebalance=0, paused=False),
        block={"hash": "0x" + "00" * 32, "number": 1, "timestamp": 1}, chain_time=2, unknown_pools=[],
        asset=AssetUnit("USDC", 6), targets={})
    write_bundle(tmp_path, bundle, None)
    (model_path(tmp_path, model_hash) / "artifact.json").mkdir(parents=True)  # a directory where a file belongs
    check = check_decision(tmp_path, bundle.decision_hash, chain_id=1, vault="0x" + "00" * 20)
    assert check.verdict is BundleVerdict.TAMPERED and check.why.startswith("model: "), check.why

    # a bundle the verifier may not read (root reads everything, so the refusal is injected)
    def refused(path: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(Path, "read_bytes", refused)
    check = check_decision(tmp_path, bundle.decision_hash, chain_id=1, vault="0x" + "00" * 20)
    assert check.verdict is BundleVerdict.MISSING, check.why
    assert check.why == f"cannot read {tmp_path / (bundle.decision_hash + '.json')}: Permission denied"

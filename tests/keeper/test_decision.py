"""Decision records: canonical encoding, the keccak256 decision hash, verification of stored records."""

import json

import pandas as pd
import pytest
from eth_utils import keccak
from hypothesis import given
from hypothesis import strategies as st

from strategy.decision_record import (
    DecisionError,
    canonical_json,
    decision_hash_of,
    decision_record,
    inputs_hash,
    verify,
)

VAULT = "0x" + "Ab" * 20
MARKET_A = "0x" + "11" * 20
MARKET_B = "0x" + "2F" * 20
HASH = "0x" + "ab" * 32


def record(**changes: object) -> dict:
    fields = {"chain_id": 31337, "vault": VAULT, "inputs_hash": HASH, "model_hash": "0x" + "cd" * 32,
              "targets": {MARKET_B: 5 * 10**6, MARKET_A: 2**200}, "timestamp": 1_717_200_000}
    return decision_record(**(fields | changes))


def test_canonical_json_is_the_documented_encoding() -> None:
    text = canonical_json(record())
    # RFC 8785: keys sorted at every level, no whitespace, addresses lowercase, amounts as decimal strings
    assert text == (
        '{"chain_id":31337,"inputs_hash":"0x' + "ab" * 32 + '","model_hash":"0x' + "cd" * 32 + '",'
        '"targets":{"0x' + "11" * 20 + '":"' + str(2**200) + '","0x' + "2f" * 20 + '":"5000000"},'
        '"timestamp":1717200000,"vault":"0x' + "ab" * 20 + '"}'
    )


def test_decision_hash_is_keccak256_of_the_canonical_bytes() -> None:
    rec = record()
    assert decision_hash_of(rec) == "0x" + keccak(canonical_json(rec).encode()).hex()
    assert len(bytes.fromhex(decision_hash_of(rec)[2:])) == 32


@given(st.dictionaries(st.sampled_from([MARKET_A, MARKET_B, "0x" + "33" * 20]), st.integers(0, 2**256 - 1)),
       st.integers(0, 2**40))
def test_hash_does_not_depend_on_key_order(targets: dict[str, int], timestamp: int) -> None:
    forward = record(targets=targets, timestamp=timestamp)
    backward = record(targets=dict(reversed(list(targets.items()))), timestamp=timestamp)
    assert decision_hash_of(forward) == decision_hash_of(backward)


def test_every_field_changes_the_hash() -> None:
    base = decision_hash_of(record())
    variants = [record(chain_id=1), record(vault="0x" + "ac" * 20), record(inputs_hash="0x" + "00" * 32),
                record(model_hash="0x" + "00" * 32), record(targets={MARKET_A: 1}), record(timestamp=1)]
    assert len({base, *map(decision_hash_of, variants)}) == 7


def test_verify_accepts_the_stored_record_and_rejects_tampering() -> None:
    rec = record()
    stored, claimed = canonical_json(rec), decision_hash_of(rec)
    assert verify(stored, claimed) == rec | {"targets": {MARKET_A.lower(): 2**200, MARKET_B.lower(): 5 * 10**6}}
    tampered = stored.replace("5000000", "5000001")
    with pytest.raises(DecisionError, match="hashes to"):
        verify(tampered, claimed)
    with pytest.raises(DecisionError, match="canonical"):
        verify(json.dumps(rec, indent=1), claimed)
    with pytest.raises(DecisionError, match="not JSON"):
        verify("{not json", claimed)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"chain_id": -1}, "chain_id"),
        ({"timestamp": True}, "timestamp"),
        ({"inputs_hash": "0x1234"}, "inputs_hash"),
        ({"vault": "not an address"}, "vault"),
        ({"targets": {MARKET_A: -5}}, "targets"),
        ({"targets": {MARKET_A: 2**256}}, "targets"),
    ],
)
def test_malformed_records_are_refused_with_the_key(changes: dict, message: str) -> None:
    with pytest.raises(DecisionError, match=message):
        record(**changes)


def test_floats_and_extra_keys_are_refused() -> None:
    rec = record()
    with pytest.raises(DecisionError, match="targets"):
        decision_hash_of({**rec, "targets": {MARKET_A: 1.5}})
    with pytest.raises(DecisionError, match="no canonical JSON"):
        canonical_json({"amount": 2**53})  # beyond a double's integers: amounts are decimal strings
    with pytest.raises(DecisionError, match="unexpected \\['note'\\]"):
        decision_hash_of({**rec, "note": "x"})


def test_inputs_hash_sees_row_order_and_every_value() -> None:
    frame = pd.DataFrame({
        "timestamp": pd.to_datetime(["2024-06-01", "2024-06-02"], utc=True),
        "pool": ["a", "a"], "apy": [4.1, 4.2], "tokens": [["x"], ["y"]],
    })
    at = pd.Timestamp("2024-06-02", tz="UTC")
    base = inputs_hash(at, {"history": frame})
    assert inputs_hash(at, {"history": frame.copy()}) == base
    assert inputs_hash(at, {"history": frame.iloc[::-1]}) != base  # the model sees the rows in this order
    assert inputs_hash(at, {"history": frame.assign(apy=[4.1, 4.2000001])}) != base
    assert inputs_hash(at + pd.Timedelta(days=1), {"history": frame}) != base
    assert inputs_hash(at, {"history": frame.iloc[:0]}) != base


def test_a_record_journaled_before_rfc8785_still_verifies_as_it_was_hashed():
    """Journals kept from before decision bundles hold records with integer targets hashed over sorted, compact
    JSON: `keeper verify` still checks them (and any changed byte), though they cannot be re-executed."""
    legacy = {"chain_id": 31337, "inputs_hash": "0x" + "1" * 64, "model_hash": "0x" + "2" * 64,
              "targets": {"0x" + "a" * 40: 1_000_000}, "timestamp": 1_700_000_000, "vault": "0x" + "b" * 40}
    text = json.dumps(legacy, sort_keys=True, separators=(",", ":"))
    digest = "0x" + keccak(text.encode()).hex()
    assert verify(text, digest)["targets"] == {"0x" + "a" * 40: 1_000_000}
    with pytest.raises(DecisionError):
        verify(text.replace("1000000", "1000001"), digest)
    with pytest.raises(DecisionError):
        verify(json.dumps(legacy, sort_keys=True), digest)  # whitespace: another spelling of the same record

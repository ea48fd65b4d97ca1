"""`vaultbot verify TX --bundle DIR` on a real anvil: a keeper cycle writes its decision bundle, and anyone
re-executes it from the chain and the bundle alone; every tampered part is named."""

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from config import Config
from decisions.bundle import VAULT_IN_POOL_DATA, bundle_path, model_path
from decisions.check import BundleVerdict, check_decision
from decisions.codec import decode
from decisions.replay import market_depth
from journal.db import CycleStatus
from keeper.cycle import Keeper
from strategy.decision_record import canonical_json, decision_hash_of, keccak_hex, table_from_json
from strategy.guardrails import VaultState
from strategy.models.artifact import model_file
from tests.cli import vaultbot

pytestmark = pytest.mark.anvil


def test_a_cycle_writes_a_bundle_that_a_fresh_process_reproduces(rebalanced: tuple[str, Path, str],
                                                                  keeper: Keeper, tmp_path: Path) -> None:
    tx, bundles, deployment = rebalanced
    [decision_hash] = [p.stem for p in bundles.glob("0x*.json")]
    document = json.loads(bundle_path(bundles, decision_hash).read_text())
    assert decision_hash_of(document["record"]) == decision_hash
    assert bundle_path(bundles, decision_hash).read_text() == canonical_json(document)
    assert (model_path(bundles, document["record"]["model_hash"]) / "artifact.json").is_file()
    assert document["state"]["block"]["number"].isdigit() and document["config"]["versions"]["lightgbm"]
    # the supply the keeper told the allocator is the one its inputs give again, in the asset the config names
    told = {p["market"]: (int(p["supply"]), p["elasticity"])
            for p in keeper.db.last_decision().predictions.values() if "supply" in p}
    again = market_depth(document, table_from_json(document["inputs"]["history"]),
                         table_from_json(document["inputs"]["pools"]), decode(VaultState, document["state"]["vault"]))
    assert told and {market: (depth.supply, depth.elasticity) for market, depth in (again or {}).items()} == told
    assert document["config"]["asset"] == {"symbol": "USDC", "decimals": "6"}
    assert VAULT_IN_POOL_DATA not in document["config"]  # the devnet's data never holds the vault: as before

    # another process, another working and state directory, no journal, no keys: the chain and the bundle
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAULTBOT_")} | {"VAULTBOT_HOME": str(fresh)}
    script = Path(sys.executable).with_name("vaultbot")
    run = subprocess.run([str(script), "verify", tx, "--bundle", str(bundles), "--json", deployment],
                         cwd=fresh, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip().splitlines()[-1].startswith("REPRODUCED:"), run.stdout
    assert decision_hash in run.stdout and list(fresh.iterdir()) == []


def _rewrite(directory: Path, change: Callable[[dict[str, Any]], None]) -> None:
    [path] = directory.glob("0x*.json")
    document = json.loads(path.read_text())
    change(document)
    path.write_text(canonical_json(document))


def _bump_first_target(document: dict[str, Any]) -> None:
    targets = document["record"]["targets"]
    market = sorted(targets)[0]
    targets[market] = str(int(targets[market]) + 1)


def _unrunnable(document: dict[str, Any]) -> None:
    """The config's asset decimals no number, the record's config hash rewritten to match: every part hashes as
    the record says, so only the re-execution and the record's own hash can tell."""
    document["config"]["asset"]["decimals"] = "six"
    document["record"]["config_hash"] = keccak_hex(canonical_json(document["config"]))


def _flip_model_byte(directory: Path) -> None:
    [model] = (directory / "models").iterdir()
    text = (model / model_file("yield")).read_text()
    (model / model_file("yield")).write_text(text.replace("shrinkage=", "shrinkage=1", 1))


@pytest.mark.parametrize(("part", "tamper"), [
    ("inputs", lambda d: _rewrite(d, lambda doc: doc["inputs"]["history"]["rows"][0].__setitem__(2, 123.25))),
    ("inputs", lambda d: _rewrite(d, lambda doc: doc["inputs"]["pools"]["rows"][0].__setitem__(2, "aave-v4"))),
    ("inputs", lambda d: _rewrite(d, lambda doc: doc["inputs"]["news"]["rows"][-1].__setitem__(1, "Exploit"))),
    ("state", lambda d: _rewrite(d, lambda doc: doc["state"]["vault"].__setitem__("idle", "1"))),
    ("config", lambda d: _rewrite(d, lambda doc: doc["config"]["allocator"].__setitem__("risk_aversion", 9.5))),
    ("config", lambda d: _rewrite(d, lambda doc: doc["config"]["asset"].__setitem__("decimals", "18"))),
    ("model hash", lambda d: _rewrite(d, lambda doc: doc["record"].__setitem__("model_hash", "0x" + "00" * 32))),
    ("targets", lambda d: _rewrite(d, _bump_first_target)),
    ("record", lambda d: _rewrite(d, _unrunnable)),
    ("model", _flip_model_byte),
    ("encoding", lambda d: next(d.glob("0x*.json")).write_text(next(d.glob("0x*.json")).read_text() + " ")),
])
def test_each_tampered_part_is_named(rebalanced: tuple[str, Path, str], tmp_path: Path, part: str,
                                     tamper: Callable[[Path], None]) -> None:
    tx, bundles, deployment = rebalanced
    copy = shutil.copytree(bundles, tmp_path / "copy")
    tamper(copy)
    result = vaultbot("verify", tx, "--bundle", str(copy), "--json", deployment)
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines()[-1].startswith(f"BUNDLE TAMPERED: {part}:"), result.output


def test_a_committed_bundle_that_does_not_run_is_one_verdict_line(rebalanced: tuple[str, Path, str],
                                                                  tmp_path: Path) -> None:
    # a keeper that committed on chain to a bundle whose content does not run: here its record is re-hashed
    # as such a keeper's would be, and judged by that hash
    _, bundles, _ = rebalanced
    copy = shutil.copytree(bundles, tmp_path / "copy")
    [path] = copy.glob("0x*.json")
    document = json.loads(path.read_text())
    _unrunnable(document)
    committed = decision_hash_of(document["record"])
    path.unlink()
    bundle_path(copy, committed).write_text(canonical_json(document))
    record = document["record"]
    check = check_decision(copy, committed, chain_id=record["chain_id"], vault=record["vault"])
    assert check.verdict == BundleVerdict.DIFFERENT, check.lines()
    assert check.why.startswith("the bundle the chain commits to cannot be re-executed (") and "six" in check.why
    assert "the record hashes to the on-chain decision hash" in check.facts


def test_a_missing_bundle_is_named(rebalanced: tuple[str, Path, str], tmp_path: Path) -> None:
    tx, _, deployment = rebalanced
    (tmp_path / "empty").mkdir()
    result = vaultbot("verify", tx, "--bundle", str(tmp_path / "empty"), "--json", deployment)
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines()[-1].startswith("BUNDLE MISSING: no bundle 0x"), result.output


def test_two_runs_write_byte_identical_bundles(keeper: Keeper, keeper_config: Config) -> None:
    moment = datetime.now(UTC)
    keeper.clock = lambda: moment
    first = keeper.run_cycle(dry_run=True)
    path = bundle_path(keeper_config.service.decisions_dir, first.decision_hash)
    written = path.read_bytes()
    path.unlink()
    second = keeper.run_cycle(dry_run=True)
    assert first.status == second.status == CycleStatus.DRY_RUN, (first.reason, second.reason)
    assert second.decision_hash == first.decision_hash and path.read_bytes() == written

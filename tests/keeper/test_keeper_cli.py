"""`vaultbot keeper once|status|verify|run` from the command line, on the funded devnet."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from web3 import Web3

from journal.db import CycleStatus
from strategy.trailing_best import RULE_HASH, decided_by
from tests.cli import vaultbot
from tests.keeper.keeper_world import (
    KEY_ENV,
    artifact_dir,
    config_file,
    config_of,
    funded,
    journal,
    keeper_table,
    llama,
    once_rebalancing,
    rebalanced_hashes,
)
from tests.keeper.llama_payloads import serve_llama


def test_a_missing_key_stops_the_keeper_at_start_naming_it_and_the_file(tmp_path: Path) -> None:
    path = config_file({"chain": {"rpc_urls": ["http://127.0.0.1:1"]}, "markets": {"p": "0x" + "12" * 20}}, tmp_path)
    result = vaultbot("keeper", "once", "--config", str(path))
    assert result.exit_code == 1
    assert f"config {path}" in result.output
    assert "key chain.chain_id (env VAULTBOT_CHAIN__CHAIN_ID): missing key" in result.output


def test_a_misspelt_key_is_named(tmp_path: Path) -> None:
    path = config_file({"chain": {"rpc_urls": ["http://127.0.0.1:1"], "chain_id": 31337, "raw_key_env": "K",
                                  "vault": "0x" + "34" * 20}, "markets": {"p": "0x" + "12" * 20},
                        "servise": {"interval_s": 5}}, tmp_path)
    result = vaultbot("keeper", "run", "--config", str(path))
    assert result.exit_code == 1 and "key servise" in result.output and "unknown key" in result.output


def test_without_config_and_devnet_the_keeper_says_how_to_start_one(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("VAULTBOT_HOME", str(tmp_path))
    result = vaultbot("keeper", "once")
    assert result.exit_code == 1 and "vaultbot devnet up" in result.output


@pytest.mark.anvil
def test_once_status_and_verify(w3: Web3, funded, keeper_table, tmp_path) -> None:
    path = config_file(keeper_table, tmp_path)
    tx_hash, decision = once_rebalancing(w3, funded, path)
    assert rebalanced_hashes(w3, funded) == [decision]

    verified = vaultbot("keeper", "verify", tx_hash, "--config", str(path))
    assert verified.exit_code == 0, verified.output
    assert "OK: the on-chain decision hash matches the journal's record" in verified.output
    assert decision in verified.output

    status = vaultbot("keeper", "status", "--config", str(path))
    assert status.exit_code == 0 and "rebalanced" in status.output
    assert f"positions now vs targets of the last decision (cycle 1, {decision})" in status.output
    db = journal(config_of(keeper_table))
    try:
        model_hash = db.last_decision().model_hash
    finally:
        db.close()
    assert model_hash.startswith("0x") and model_hash != RULE_HASH  # the devnet's model decided, not the rule
    assert f"the last decision (cycle 1) was made by the model {model_hash}" in status.output
    assert decided_by(RULE_HASH) == "the trailing-best rule"  # what status says on a fallback day

    again = vaultbot("keeper", "once", "--dry-run", "--config", str(path))
    assert again.exit_code == 0 and "skipped" in again.output and "cooldown" in again.output

    (tmp_path / "offline").mkdir()
    rpc_down = {**keeper_table, "chain": {**keeper_table["chain"], "rpc_urls": ["http://127.0.0.1:9"]}}
    offline = vaultbot("keeper", "status", "--config", str(config_file(rpc_down, tmp_path / "offline")))
    assert offline.exit_code == 0 and "rebalanced" in offline.output  # the journal needs no chain
    assert "positions not shown" in offline.output and "127.0.0.1:9" in offline.output


@pytest.mark.anvil
def test_verify_needs_the_decision_in_the_journal(w3: Web3, funded, keeper_table, tmp_path) -> None:
    tx_hash, _ = once_rebalancing(w3, funded, config_file(keeper_table, tmp_path))
    (tmp_path / "other").mkdir()
    elsewhere = dict(keeper_table, service={"database_url": f"sqlite:///{tmp_path / 'other' / 'keeper.sqlite'}"})
    other = config_file(elsewhere, tmp_path / "other")
    result = vaultbot("keeper", "verify", tx_hash, "--config", str(other))
    assert result.exit_code == 1 and "has no decision with hash" in result.output
    unknown = vaultbot("keeper", "verify", "0x" + "ab" * 32, "--config", str(other))
    assert unknown.exit_code == 1 and "no receipt" in unknown.output


@pytest.mark.anvil
def test_once_exits_1_when_the_data_is_refused(funded, keeper_table, httpserver, llama, tmp_path) -> None:
    httpserver.clear_all_handlers()
    httpserver.expect_request(f"/chart/{llama.pool_ids[0]}").respond_with_data("down", status=503)
    serve_llama(httpserver, llama)  # everything else answers; the broken chart is matched first
    path = config_file(keeper_table, tmp_path)
    result = vaultbot("keeper", "once", "--config", str(path))
    assert result.exit_code == 1 and "refused" in result.output and "HTTP 503" in result.output


@pytest.mark.anvil
@pytest.mark.slow
def test_run_serves_health_and_stops_gracefully_on_sigterm(funded, keeper_table, tmp_path) -> None:
    keeper_table["service"] |= {"interval_s": 1.0, "metrics_port": 0}
    path = config_file(keeper_table, tmp_path)
    env = dict(os.environ, **{KEY_ENV: os.environ[KEY_ENV], "VAULTBOT_LOG_FORMAT": "json"})
    process = subprocess.Popen([str(Path(sys.executable).parent / "vaultbot"), "keeper", "run", "--config", str(path)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    try:
        url = None
        deadline = time.monotonic() + 120
        while url is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            match = re.search(r"health (http://\S+/health)", line)
            url = match.group(1) if match else None
        assert url, "the keeper never announced its health endpoint"
        while time.monotonic() < deadline:
            body = requests.get(url, timeout=5).json()
            if body["last_cycle_status"] is not None:
                break
            time.sleep(0.2)
        assert body["status"] == "ok" and body["last_cycle_status"] == "rebalanced"
        metrics = requests.get(url.replace("/health", "/metrics"), timeout=5).text
        assert 'vaultbot_keeper_cycles_total{status="rebalanced"} 1.0' in metrics
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    cycles = journal(config_of(keeper_table)).recent_cycles(100)
    assert cycles and all(cycle.status != CycleStatus.RUNNING for cycle in cycles)
    # structured logs: one JSON object a line, the cycle's fields filterable; the key never in them
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    [first] = [r for r in records if r.get("cycle_id") == 1 and r.get("status")]
    assert first["status"] == "rebalanced" and first["level"] == "INFO" and first["logger"] == "keeper.cycle"
    assert re.fullmatch(r"0x[0-9a-f]{64}", first["decision_hash"]) and re.fullmatch(r"0x[0-9a-f]{64}", first["tx_hash"])
    assert first["time"].endswith("+00:00") and first["duration_s"] > 0
    assert any(r.get("tx_hash") == first["tx_hash"] and "journaled before broadcast" in r["message"] for r in records)
    assert os.environ[KEY_ENV].removeprefix("0x") not in output

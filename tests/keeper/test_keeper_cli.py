"""`vaultbot keeper once|status|verify|run` from the command line, on the funded devnet."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import select
from web3 import Web3

from journal.db import Cycle, CycleStatus, Decision, KeeperDB
from strategy.trailing_best import RULE_HASH, decided_by
from strategy.units import format_units
from tests.cli import vaultbot
from tests.journal.damage import DECISION_HASH, damage, offline_config, written_journal
from tests.keeper.decision_screens import assert_shows_the_decision, decision_table
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
    transact,
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


def test_help_shows_dry_run_as_a_flag_taking_no_value() -> None:
    help_text = vaultbot("keeper", "once", "--help").output
    [dry_run] = [line for line in help_text.splitlines() if "--dry-run" in line]
    [log_level] = [line for line in help_text.splitlines() if "--log-level" in line]
    assert "<" not in dry_run, dry_run  # no value placeholder: `--dry-run` takes none
    assert "<str>" in log_level, log_level  # an option that takes a value still shows its type
    refused = vaultbot("keeper", "once", "--dry-run=yes")
    assert refused.exit_code == 2 and "does not take a value" in refused.output


@pytest.mark.parametrize(("tx", "wrong"), [
    ("0x1234", "it has 4 hex digits"),
    ("ab" * 32, "it does not start with 0x"),
    ("0x" + "zz" * 32, "it holds characters that are not hex digits"),
])
def test_verify_refuses_what_is_not_a_hash_before_connecting(tx: str, wrong: str, tmp_path: Path) -> None:
    path = config_file({"chain": {"rpc_urls": ["http://127.0.0.1:1"]}, "markets": {"p": "0x" + "12" * 20}}, tmp_path)
    result = vaultbot("keeper", "verify", tx, "--config", str(path))  # the config is not even read
    assert result.exit_code == 2
    assert result.output.splitlines() == [f"error: TX: not a transaction hash (0x + 64 hex digits, 32 bytes): {wrong}"]


def refusal(*args: str) -> str:
    """The one line `vaultbot ARGS...` refuses with (exit 1, no exception the command did not handle)."""
    result = vaultbot(*args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 1, result.output
    [line] = result.output.splitlines()
    return line


@pytest.mark.parametrize(("sql", "row"), [
    ("UPDATE cycles SET started = 'yesterday'", "cycles is damaged: started holds 'yesterday', not a timestamp"),
    ("UPDATE cycles SET status = 'bogus'", "cycles is damaged: status holds 'bogus', not one of RUNNING, "),
    ("UPDATE decisions SET predictions = 'not json'",
     "decisions is damaged: predictions holds 'not json', not a JSON object"),
])
def test_status_names_a_damaged_journal_row_in_one_line(sql: str, row: str, tmp_path: Path) -> None:
    url = written_journal(tmp_path / "keeper.sqlite")
    damage(tmp_path / "keeper.sqlite", sql)
    line = refusal("keeper", "status", "--config", str(offline_config(url, tmp_path)))
    assert line.startswith(f"error: keeper database {url}: row 1 of table {row}"), line


@pytest.mark.anvil
@pytest.mark.parametrize(("where", "wrong"), [
    ("/dev/null", "/dev/null is not a regular file"),
    ("{tmp}/afile/keeper.sqlite", "{tmp}/afile is not a directory"),
    ("/proc/vaultbot-journal-test/keeper.sqlite", "cannot create the directory /proc/vaultbot-journal-test: "),
])
def test_once_on_a_journal_path_that_cannot_hold_one_is_one_line(where: str, wrong: str, funded, keeper_table,
                                                                tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    keeper_table["service"]["database_url"] = url = f"sqlite:///{where.format(tmp=tmp_path)}"
    line = refusal("keeper", "once", "--config", str(config_file(keeper_table, tmp_path)))
    assert line.startswith(f"error: cannot open the keeper database {url}: {wrong.format(tmp=tmp_path)}"), line


@pytest.mark.anvil
def test_once_with_a_lock_that_is_a_directory_is_one_line(funded, keeper_table, tmp_path: Path) -> None:
    url = keeper_table["service"]["database_url"]
    lock = Path(f"{url.removeprefix('sqlite:///')}.lock")
    lock.mkdir()
    assert refusal("keeper", "once", "--config", str(config_file(keeper_table, tmp_path))) == (
        f"error: cannot lock the keeper journal {url}: {lock}: Is a directory")


@pytest.mark.anvil
def test_verify_names_a_damaged_journal_row_in_one_line(funded, keeper_table, tmp_path: Path) -> None:
    url = keeper_table["service"]["database_url"]
    journal_file = Path(url.removeprefix("sqlite:///"))
    assert written_journal(journal_file) == url
    damage(journal_file, "UPDATE decisions SET predictions = 'not json'")
    assert refusal("keeper", "verify", DECISION_HASH, "--config", str(config_file(keeper_table, tmp_path))) == (
        f"error: keeper database {url}: row 1 of table decisions is damaged: predictions holds 'not json', "
        "not a JSON object")


@pytest.mark.anvil
def test_once_status_and_verify(w3: Web3, funded, keeper_table, tmp_path) -> None:
    path = config_file(keeper_table, tmp_path)
    tx_hash, decision = once_rebalancing(w3, funded, path)
    assert rebalanced_hashes(w3, funded) == [decision]

    verified = vaultbot("keeper", "verify", tx_hash, "--config", str(path))
    assert verified.exit_code == 0, verified.output
    assert verified.output.splitlines()[-1] == "OK: the on-chain decision hash matches the journal's record"
    assert f"transaction {tx_hash}\n" in verified.output and f"decision hash {decision}\n" in verified.output
    vault = funded.contract(w3, "Vault", funded.vault)
    invested = [m for m in funded.markets if vault.functions.position(m.address).call()]
    assert invested
    for market in invested:  # in asset units, by name, as `vault info` shows them
        position = format_units(vault.functions.position(market.address).call(), 6, "USDC")
        assert re.search(rf"market {re.escape(market.name)} \({market.address}\): target [0-9,.]+ USDC, "
                         rf"after {re.escape(position)}\n", verified.output), (market.name, verified.output)

    status = vaultbot("keeper", "status", "--config", str(path))
    assert status.exit_code == 0 and "rebalanced" in status.output
    assert f"positions now vs targets of the last decision (cycle 1, {decision})" in status.output
    idle = format_units(funded.contract(w3, "MockToken", funded.asset).functions.balanceOf(funded.vault).call(), 6,
                        "USDC")
    assert re.search(rf"idle +│ +{re.escape(idle)} ", status.output), status.output
    for market in funded.markets:
        position = format_units(vault.functions.position(market.address).call(), 6, "USDC")
        assert re.search(rf"{re.escape(market.name)} +│ +{re.escape(position)} │", status.output), status.output
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
def test_status_shows_the_forecasts_next_to_the_rates_on_chain_and_why_the_keeper_chose_them(
        w3: Web3, funded, keeper_table, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "240")  # wide enough that no table cell wraps
    path = config_file(keeper_table, tmp_path)
    once_rebalancing(w3, funded, path)
    status = vaultbot("keeper", "status", "--config", str(path))
    assert status.exit_code == 0, status.output
    assert_shows_the_decision(decision_table(status.output), status.output.splitlines(), w3, funded,
                              config_of(keeper_table))

    db = journal(config_of(keeper_table))  # as a node that keeps no state that old: the block is beyond its head
    try:
        with db.session() as session:
            session.scalars(select(Cycle)).one().block_number = 10**9
    finally:
        db.close()
    pruned = vaultbot("keeper", "status", "--config", str(path))
    assert pruned.exit_code == 0, pruned.output
    assert ("why not shown: the node cannot tell the vault's state at block 1000000000 (it may keep no state that "
            "old): Web3RPCError") in pruned.output, pruned.output
    assert decision_table(pruned.output)  # the forecasts and targets are still shown


@pytest.mark.anvil
def test_verify_needs_the_decision_in_the_journal(w3: Web3, funded, keeper_table, tmp_path) -> None:
    tx_hash, _ = once_rebalancing(w3, funded, config_file(keeper_table, tmp_path))
    (tmp_path / "other").mkdir()
    elsewhere = dict(keeper_table, service={"database_url": f"sqlite:///{tmp_path / 'other' / 'keeper.sqlite'}"})
    other = config_file(elsewhere, tmp_path / "other")
    missing = vaultbot("keeper", "verify", tx_hash, "--config", str(other))
    assert missing.exit_code == 1 and "no keeper journal at sqlite:///" in missing.output
    assert not (tmp_path / "other" / "keeper.sqlite").exists(), "a read made an empty journal"
    KeeperDB(elsewhere["service"]["database_url"]).close()  # another keeper's journal, without this decision
    result = vaultbot("keeper", "verify", tx_hash, "--config", str(other))
    assert result.exit_code == 1 and "has no decision with hash" in result.output
    assert result.output.splitlines()[-1].startswith("NOT IN THIS JOURNAL: ")
    unknown = vaultbot("keeper", "verify", "0x" + "ab" * 32, "--config", str(other))
    assert unknown.exit_code == 1 and unknown.output.splitlines()[-1].startswith("NOT FOUND: chain 31337 has no ")


@pytest.mark.anvil
def test_verify_tells_a_wrong_hash_apart_from_tampering(w3: Web3, funded, keeper_table, tmp_path) -> None:
    path = config_file(keeper_table, tmp_path)
    tx_hash, decision = once_rebalancing(w3, funded, path)
    token, vault = funded.contract(w3, "MockToken", funded.asset), funded.contract(w3, "Vault", funded.vault)
    depositor = funded.depositors[0]
    transact(w3, token.functions.mint(depositor, 10**6), funded.admin)
    transact(w3, token.functions.approve(funded.vault, 10**6), depositor)
    deposit = transact(w3, vault.functions.deposit(10**6, depositor), depositor)["transactionHash"].to_0x_hex()

    def verdict(tx: str, code: int = 1) -> str:
        result = vaultbot("keeper", "verify", tx, "--config", str(path))
        assert result.exit_code == code, result.output
        return result.output.splitlines()[-1]

    verdicts = {
        "mistyped": verdict(tx_hash[:-1], code=2),
        "decision hash": verdict(decision),
        "deposit": verdict(deposit),
        "nowhere": verdict("0x" + "ab" * 32),
    }
    assert verdicts["mistyped"] == ("error: TX: not a transaction hash (0x + 64 hex digits, 32 bytes): "
                                    "it has 63 hex digits")
    assert verdicts["decision hash"] == (f"NOT A TRANSACTION HASH: it is the decision hash of journal decision 1 "
                                         f"(cycle 1); verify its transaction {tx_hash} instead")
    assert verdicts["deposit"] == ("NOT A REBALANCE: it calls deposit on the vault; it emitted no Rebalanced, so "
                                   "there is no decision to check")
    assert verdicts["nowhere"].startswith("NOT FOUND: chain 31337 has no transaction with this hash")

    db = journal(config_of(keeper_table))  # someone edits the stored record after the fact
    try:
        with db.session() as session:
            stored = session.scalars(select(Decision)).one()
            stored.record = re.sub(r'"timestamp":(\d+)', lambda m: f'"timestamp":{int(m[1]) + 1}', stored.record)
    finally:
        db.close()
    verdicts["tampered"] = verdict(tx_hash)
    assert verdicts["tampered"] == ("MISMATCH: the journal's record of decision 1 does not hash to the on-chain "
                                    "decision hash: it was changed after it was sent")
    assert [text for text in verdicts.values() if text.startswith("MISMATCH")] == [verdicts["tampered"]]


@pytest.mark.anvil
def test_once_exits_1_when_the_data_is_refused(funded, keeper_table, httpserver, llama, tmp_path) -> None:
    httpserver.clear_all_handlers()
    httpserver.expect_request(f"/chart/{llama.pool_ids[0]}").respond_with_data("down", status=503)
    serve_llama(httpserver, llama)  # everything else answers; the broken chart is matched first
    path = config_file(keeper_table, tmp_path)
    result = vaultbot("keeper", "once", "--config", str(path))
    assert result.exit_code == 1 and "refused" in result.output and "HTTP 503" in result.output


@pytest.mark.anvil
def test_run_on_a_metrics_port_already_taken_is_one_line(funded, keeper_table, tmp_path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        keeper_table["service"] |= {"metrics_host": "127.0.0.1", "metrics_port": taken.getsockname()[1]}
        path = config_file(keeper_table, tmp_path)
        env = dict(os.environ, **{KEY_ENV: os.environ[KEY_ENV]})
        done = subprocess.run([str(Path(sys.executable).parent / "vaultbot"), "keeper", "run", "--config", str(path)],
                              capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode != 0 and "Traceback" not in done.stderr + done.stdout
    assert "cannot listen on 127.0.0.1:" in done.stderr and "service.metrics_port" in done.stderr, done.stderr


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
        assert body["decided_by"] == "the trailing-best rule" or re.fullmatch(r"the model 0x[0-9a-f]{64}",
                                                                               body["decided_by"]), body
        metrics = requests.get(url.replace("/health", "/metrics"), timeout=5).text
        assert 'vaultbot_keeper_cycles_total{status="rebalanced"} 1.0' in metrics
        # the decision bundles, published on the same port (`vaultbot verify TX --bundle URL` reads them there)
        bundle = next(Path(keeper_table["service"]["decisions_dir"]).glob("0x*.json"))
        served = requests.get(url.replace("/health", f"/decisions/{bundle.stem}"), timeout=5)
        assert served.status_code == 200 and served.content == bundle.read_bytes()
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

"""Faults during a cycle on a real anvil: broken sources, a dying RPC, a guardrail revert, a crash after signing.

Each ends the cycle with its reason journaled and without a transaction (or, after a restart, with the
transaction signed before the crash: whichever of its versions was mined, or a replacement of the same nonce
when the base fee priced it out, never a second rebalance).
"""

import re
import threading
from pathlib import Path

import pytest
from eth_account import Account
from pytest_httpserver import HTTPServer
from web3 import Web3
from werkzeug import Request, Response

from chain.deployment import Deployment
from chain.params import Param
from chain.tx import PendingTx
from config import Config
from devnet.llama_server import SyntheticLlama
from journal.db import CycleStatus, KeeperDB, TxStatus, to_hex
from keeper.cycle import CycleOutcome, DecidedRebalance, Keeper
from keeper.metrics import KeeperMetrics
from keeper.startup import open_keeper
from strategy.units import GWEI
from tests.keeper.chain_world import manual_mining
from tests.keeper.keeper_world import (
    DEPOSIT,
    KEY_ENV,
    artifact_dir,
    as_a,
    config_of,
    funded,
    journal,
    keeper_config,
    keeper_table,
    llama,
    own_devnet,
    rebalanced_hashes,
    transact,
)
from tests.keeper.llama_payloads import (
    COINS_CHART,
    handler_of,
    serve_llama,
    stale_chart,
    utc_now,
)

pytestmark = pytest.mark.anvil


def refused_without_tx(w3: Web3, deployment: Deployment, table: dict, expected: str, kind: str) -> str:
    """Runs one cycle that must be refused with `expected` in its reason, journaled, without a transaction;
    returns the reason."""
    metrics = KeeperMetrics(max_age_s=60)
    nonce = w3.eth.get_transaction_count(deployment.keeper)
    with open_keeper(config_of(table), metrics=metrics) as keeper:
        outcome = keeper.run_cycle()
    assert outcome.status == CycleStatus.REFUSED and expected in outcome.reason
    assert w3.eth.get_transaction_count(deployment.keeper) == nonce
    db = journal(config_of(table))
    cycle = db.recent_cycles(1)[0]
    assert (cycle.status, cycle.reason) == (CycleStatus.REFUSED, outcome.reason)
    assert db.decisions_with_hash("0x" + "00" * 32) == [] and db.pending_transactions() == []
    db.close()
    assert metrics.registry.get_sample_value("vaultbot_keeper_failures_total", {"reason": kind}) == 1
    return outcome.reason


def break_chart(server: HTTPServer, llama: SyntheticLlama, handler) -> None:
    server.clear_all_handlers()
    server.expect_request(f"/chart/{llama.pool_ids[0]}").respond_with_handler(handler)
    serve_llama(server, llama)


@pytest.mark.parametrize(("status", "body", "expected"), [
    (500, "upstream down", "HTTP 500"),
    (200, "<html>maintenance</html>", "not valid JSON"),
    (200, '{"status": "success", "data": [{"timestamp": "2024-01-01T00:00:00Z", "apy": "high", "tvlUsd": 1.0e8}]}',
     "expected a number"),
])
def test_a_broken_source_refuses_the_cycle(w3, funded, keeper_table, httpserver, llama, status, body, expected):
    break_chart(httpserver, llama, handler_of(status, body))
    refused_without_tx(w3, funded, keeper_table, expected, "source")


@pytest.mark.parametrize("route", ["yields chart", "coins chart"])
def test_a_source_that_times_out_refuses_the_cycle(w3, funded, keeper_table, httpserver, llama, route):
    release = threading.Event()

    def hang(_request: Request) -> Response:
        release.wait(timeout=15)
        return Response("{}", content_type="application/json")

    if route == "yields chart":
        break_chart(httpserver, llama, hang)
    else:
        httpserver.clear_all_handlers()
        httpserver.expect_request(COINS_CHART).respond_with_handler(hang)
        serve_llama(httpserver, llama)
    keeper_table["sources"]["http"]["read_timeout"] = 0.3
    try:
        refused_without_tx(w3, funded, keeper_table, "timed out", "source")
    finally:
        release.set()


def test_a_failing_coins_api_refuses_the_cycle(w3, funded, keeper_table, httpserver, llama):
    """The token prices feed the model: without them the cycle stops, it never decides price-less."""
    httpserver.clear_all_handlers()
    httpserver.expect_request(COINS_CHART).respond_with_handler(handler_of(500, "coins down"))
    serve_llama(httpserver, llama)
    reason = refused_without_tx(w3, funded, keeper_table, "HTTP 500", "source")
    assert re.search(r"http://\S+/chart/\w+:0x[0-9a-f]{40}\S*span=62", reason), reason  # the coins request


def test_stale_data_refuses_the_cycle(w3, funded, keeper_table, httpserver, llama):
    httpserver.clear_all_handlers()
    serve_llama(httpserver, llama, chart=stale_chart(llama, hours=40))
    refused_without_tx(w3, funded, keeper_table, "limit 36 h", "data_gate")


# -- the vault refuses ----------------------------------------------------------------------------------


class AdminTightensFirst(Keeper):
    """Between the keeper's read and its simulation the admin raises the idle floor (a tightening: at once)."""

    def execute(self, plan: DecidedRebalance, *, dry_run: bool):
        admin = self.chain.reader.snapshot().admin
        transact(self.chain.w3, self.chain.vault.functions.submit_param(Param.MIN_IDLE_BPS, 9_900), admin)
        return super().execute(plan, dry_run=dry_run)


def test_a_guardrail_revert_is_recorded_once_and_not_retried(w3, funded, keeper_config):
    with open_keeper(keeper_config) as opened:
        keeper = as_a(AdminTightensFirst, opened)
        nonce = w3.eth.get_transaction_count(funded.keeper)
        outcome = keeper.run_cycle()
    assert outcome.status == CycleStatus.REVERTED and "vault: idle below floor" in outcome.reason
    assert outcome.failure_kind == "revert"
    assert w3.eth.get_transaction_count(funded.keeper) == nonce  # the simulation caught it: nothing sent
    db = journal(keeper_config)
    [cycle] = db.recent_cycles()
    assert cycle.status == CycleStatus.REVERTED and cycle.reason == outcome.reason
    assert db.pending_transactions() == [] and db.gas_spent_wei() == 0
    db.close()


def test_a_predicted_guardrail_failure_is_not_sent(w3, funded, keeper_config):
    """The vault is paused by its guardian: the allocator holds, nothing is simulated or sent."""
    vault = funded.contract(w3, "Vault", funded.vault)
    transact(w3, vault.functions.pause(), funded.guardian)
    with open_keeper(keeper_config) as keeper:
        outcome = keeper.run_cycle()
    assert outcome.status == CycleStatus.HELD and "paused" in outcome.reason
    assert rebalanced_hashes(w3, funded) == []


# -- the RPC dies ---------------------------------------------------------------------------------------


@pytest.fixture
def own_chain(compiled_contracts, tmp_path: Path, w3: Web3):
    """A devnet on an anvil of its own, funded, that a test may kill."""
    node, deployment = own_devnet(compiled_contracts, tmp_path)
    try:
        yield node, deployment
    finally:
        node.stop()


def on_own_chain(table: dict, deployment: Deployment, tmp_path: Path) -> dict:
    path = tmp_path / "own-devnet.json"
    deployment.save(path)
    markets = dict(zip(table["markets"], (m.address for m in deployment.markets), strict=True))
    chain = table["chain"] | {"rpc_urls": [deployment.rpc_url], "deployment": str(path)}
    return table | {"chain": chain, "markets": markets}


def test_rpc_dying_while_the_keeper_fetches_data_fails_the_cycle(own_chain, keeper_table, httpserver, llama,
                                                                 tmp_path):
    node, deployment = own_chain
    table = on_own_chain(keeper_table, deployment, tmp_path)

    def kill_node_then_answer(_request: Request) -> Response:
        node.stop()  # the chain goes away in the middle of the cycle
        return Response(llama.news_feed(utc_now()), content_type="application/rss+xml")

    httpserver.clear_all_handlers()
    httpserver.expect_request("/news.xml").respond_with_handler(kill_node_then_answer)
    serve_llama(httpserver, llama)
    metrics = KeeperMetrics(max_age_s=60)
    with open_keeper(config_of(table), metrics=metrics) as keeper:
        outcome = keeper.run_cycle()
        later = keeper.run_cycle()  # the keeper itself keeps going
    assert outcome.status == CycleStatus.FAILED and outcome.failure_kind == "rpc"
    assert later.status == CycleStatus.FAILED
    db = journal(config_of(table))
    assert [c.status for c in db.recent_cycles()] == [CycleStatus.FAILED, CycleStatus.FAILED]
    assert db.pending_transactions() == []
    db.close()
    assert metrics.registry.get_sample_value("vaultbot_keeper_failures_total", {"reason": "rpc"}) == 2


def test_rpc_dying_between_decision_and_sending_fails_the_cycle(own_chain, keeper_table, tmp_path):
    node, deployment = own_chain

    class NodeDiesBeforeSimulation(Keeper):
        def execute(self, plan: DecidedRebalance, *, dry_run: bool):
            node.stop()
            return super().execute(plan, dry_run=dry_run)

    table = on_own_chain(keeper_table, deployment, tmp_path)
    with open_keeper(config_of(table)) as opened:
        keeper = as_a(NodeDiesBeforeSimulation, opened)
        outcome = keeper.run_cycle()
    assert outcome.status == CycleStatus.FAILED and outcome.failure_kind == "rpc" and outcome.decision_hash


# -- restart with a pending transaction -----------------------------------------------------------------


class DiesAfterJournaling(Keeper):
    """The process dies between committing the signed transaction and broadcasting it."""

    def journal_signed(self, decision_id: int, pending: PendingTx) -> None:
        super().journal_signed(decision_id, pending)
        raise KeyboardInterrupt("killed after journaling the signed transaction")


class DiesAfterJournalingTheReplacement(Keeper):
    """The first version is broadcast but not mined in time; the process dies after journaling its replacement,
    before broadcasting it."""

    def journal_signed(self, decision_id: int, pending: PendingTx) -> None:
        super().journal_signed(decision_id, pending)
        if len(self.db.pending_transactions()) == 2:
            raise KeyboardInterrupt("killed after journaling the replacement")


def crash(config: Config, kind: type[Keeper] = DiesAfterJournaling) -> None:
    with open_keeper(config) as opened:
        with pytest.raises(KeyboardInterrupt):
            as_a(kind, opened).run_cycle()


def restart(config: Config) -> CycleOutcome:
    with open_keeper(config) as restarted:  # a new process: resumes, then decides anew
        return restarted.run_cycle()


def assert_settled_by_resume(db: KeeperDB, crashed_cycle_id: int, outcome: CycleOutcome) -> None:
    """The crashed cycle counts as the rebalance; the restarted one finds the vault in its cooldown."""
    assert outcome.status == CycleStatus.SKIPPED and "vault: cooldown" in outcome.reason
    cycle = {c.id: c for c in db.recent_cycles()}[crashed_cycle_id]
    assert cycle.status == CycleStatus.REBALANCED and cycle.reason.startswith("resumed after a restart")
    assert db.pending_transactions() == []


def test_a_restart_resumes_the_journaled_transaction_and_never_sends_twice(w3, funded, keeper_config):
    nonce = w3.eth.get_transaction_count(funded.keeper)
    crash(keeper_config)
    db = journal(keeper_config)
    [pending] = db.pending_transactions()
    crashed_cycle = db.recent_cycles(1)[0]
    assert crashed_cycle.status == CycleStatus.RUNNING and pending.status == TxStatus.SIGNED
    decision_hash = db.decision_of(pending).decision_hash
    assert w3.eth.get_transaction_count(funded.keeper) == nonce  # never broadcast

    assert_settled_by_resume(db, crashed_cycle.id, restart(keeper_config))
    assert w3.eth.get_transaction_count(funded.keeper) == nonce + 1
    assert rebalanced_hashes(w3, funded) == [decision_hash]
    assert db.transaction(pending.tx_hash).status == TxStatus.MINED
    db.close()


def test_a_restart_settles_an_older_version_that_was_mined(w3, funded, keeper_table):
    """The newest journaled version never reached the node, the original was mined: the cycle rebalanced."""
    keeper_table["chain"]["receipt_timeout_s"] = 0.5
    config = config_of(keeper_table)
    nonce = w3.eth.get_transaction_count(funded.keeper)
    with manual_mining(w3):
        crash(config, DiesAfterJournalingTheReplacement)
        w3.provider.make_request("evm_mine", [])
    db = journal(config)
    original, replacement = db.pending_transactions()
    assert original.nonce == replacement.nonce == nonce
    crashed_cycle_id = db.decision_of(original).cycle_id

    assert_settled_by_resume(db, crashed_cycle_id, restart(config))
    assert db.transaction(original.tx_hash).status == TxStatus.MINED
    assert db.transaction(replacement.tx_hash).status == TxStatus.REPLACED
    assert rebalanced_hashes(w3, funded) == [db.decision_of(original).decision_hash]
    assert w3.eth.get_transaction_count(funded.keeper) == nonce + 1
    db.close()


def raise_base_fee(w3: Web3, base_fee: int) -> None:
    w3.provider.make_request("anvil_setNextBlockBaseFeePerGas", [hex(base_fee)])
    w3.provider.make_request("evm_mine", [])


def test_a_restart_replaces_a_journaled_transaction_the_base_fee_priced_out(w3, funded, keeper_config):
    nonce = w3.eth.get_transaction_count(funded.keeper)
    crash(keeper_config)
    db = journal(keeper_config)
    [signed] = db.pending_transactions()
    raise_base_fee(w3, 2 * signed.max_fee_per_gas)

    assert_settled_by_resume(db, db.decision_of(signed).cycle_id, restart(keeper_config))
    [event] = funded.contract(w3, "Vault", funded.vault).events.Rebalanced().get_logs(from_block=funded.deployed_at)
    replacement = db.transaction(to_hex(event["transactionHash"]))
    assert replacement.tx_hash != signed.tx_hash and replacement.status == TxStatus.MINED
    assert (replacement.decision_id, replacement.nonce) == (signed.decision_id, nonce)  # journaled by the cycle
    assert replacement.max_fee_per_gas > 2 * signed.max_fee_per_gas
    assert db.transaction(signed.tx_hash).status == TxStatus.REPLACED
    assert w3.eth.get_transaction_count(funded.keeper) == nonce + 1
    db.close()


def test_a_restart_with_the_base_fee_above_the_fee_cap_leaves_the_transaction_pending(w3, funded, keeper_config):
    nonce = w3.eth.get_transaction_count(funded.keeper)
    crash(keeper_config)
    raise_base_fee(w3, 150 * GWEI)  # the keeper's fee cap is 100 gwei

    outcome = restart(keeper_config)
    assert outcome.status == CycleStatus.SKIPPED and "is still pending: TimeExhausted" in outcome.reason
    assert "the fee cap 100 gwei leaves no room for a replacement at the base fee 150 gwei" in outcome.reason
    db = journal(keeper_config)
    [still] = db.pending_transactions()
    assert still.status == TxStatus.SIGNED and db.recent_cycles(2)[1].status == CycleStatus.RUNNING
    assert w3.eth.get_transaction_count(funded.keeper) == nonce and rebalanced_hashes(w3, funded) == []
    db.close()


def test_an_interrupted_cycle_without_a_transaction_is_marked_failed_at_start(funded, keeper_config):
    class DiesWhileDeciding(Keeper):
        def execute(self, plan: DecidedRebalance, *, dry_run: bool):
            raise KeyboardInterrupt("killed while deciding")

    with open_keeper(keeper_config) as opened:
        with pytest.raises(KeyboardInterrupt):
            as_a(DiesWhileDeciding, opened).run_cycle()
    with open_keeper(keeper_config):
        pass
    db = journal(keeper_config)
    cycle = db.recent_cycles(1)[0]
    assert cycle.status == CycleStatus.FAILED and cycle.reason.startswith("interrupted")
    db.close()



def test_a_restart_with_a_rotated_key_leaves_the_old_keys_transaction_pending(w3, funded, keeper_config,
                                                                              monkeypatch):
    crash(keeper_config)
    rotated = Account.from_key("0x" + "42" * 32)  # the operator rotated the keeper key meanwhile
    transact(w3, funded.contract(w3, "Vault", funded.vault).functions.set_keeper(rotated.address), funded.admin)
    monkeypatch.setenv(KEY_ENV, rotated.key.to_0x_hex())
    outcome = restart(config_of(keeper_config.model_dump()))
    assert outcome.status == CycleStatus.SKIPPED
    assert f"was signed by {funded.keeper}, not by this key" in outcome.reason
    db = journal(keeper_config)
    [pending] = db.pending_transactions()  # kept for the key that signed it; nothing else was signed
    assert pending.status == TxStatus.SIGNED and rebalanced_hashes(w3, funded) == []
    db.close()

"""A hostile RPC: a JSON-RPC proxy on 127.0.0.1 in front of a real anvil that starts lying about the chain id or
dies, a chain whose clock moves on between the keeper's read and its send, a chain reset or reorganised under a
journaled transaction, a decision gone stale, and RPC URLs holding credentials.

The keeper signs for its configured chain only and sends nothing to an RPC that claims another; a journaled
transaction is never broadcast on a chain other than the one it was built on, nor for a stale decision (it is
abandoned, with its reason, visibly in `keeper status`); and the credentials of an RPC URL never reach the
output of `keeper once|status|verify` or the JSON logs.
"""

import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from eth_account.typed_transactions import TypedTransaction
from hexbytes import HexBytes
from web3 import Web3

from chain.deployment import Deployment
from chain.tx import PendingTx
from config import Config
from journal.db import CycleStatus, Decision, KeeperDB, Transaction, TxStatus
from keeper.cycle import CycleOutcome, Keeper
from keeper.startup import open_keeper
from tests.cli import vaultbot
from tests.keeper.keeper_world import (
    DEPOSIT,
    artifact_dir,
    as_a,
    config_file,
    config_of,
    funded,
    journal,
    keeper_config,
    keeper_table,
    llama,
    once_rebalancing,
    own_devnet,
    rebalanced_hashes,
    transact,
)
from tests.shared_data import recorded_answer

pytestmark = pytest.mark.anvil

MAINNET = 1
PASSWORD, API_KEY, QUERY_KEY = "s3cret-pw", "0123456789abcdef0123456789abcdef", "k3y-t0ken"


class RpcProxy:
    """A JSON-RPC proxy on 127.0.0.1 (any path) forwarding to `upstream`, that records every raw transaction it is
    sent and can be switched to answer eth_chainId with another chain (`lie_chain_id`) or to die."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.lie_chain_id: int | None = None
        self.raw_transactions: list[str] = []
        self.hidden_receipts = 0  # after each send, answer this many receipt queries with null (not served yet)
        self.mined_later_s = 0  # the chain clock moves this far between the keeper's read and its send
        self.raw_answer: bytes | None = None  # when set, the body of every answer instead of the upstream's
        self.trickle_s = 0.0  # when set, each answer is sent a byte at a time, this long apart
        self._to_hide = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                body = proxy.raw_answer if proxy.raw_answer is not None else json.dumps(proxy.answer(request)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not proxy.trickle_s:
                    self.wfile.write(body)
                    return
                for byte in body:
                    try:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                    except OSError:  # the client gave up
                        return
                    time.sleep(proxy.trickle_s)

            def log_message(self, *_args: Any) -> None:  # quiet: the test output is asserted on
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, credentials: str = "", path: str = "") -> str:
        return f"http://{credentials}127.0.0.1:{self.port}{path}"

    def answer(self, request: dict[str, Any] | list[dict[str, Any]]) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(request, list):  # a batch: each call answered as if sent alone
            return [self.answer(call) for call in request]
        if request["method"] == "eth_chainId" and self.lie_chain_id is not None:
            return {"jsonrpc": "2.0", "id": request["id"], "result": hex(self.lie_chain_id)}
        if request["method"] == "eth_sendRawTransaction":
            self.raw_transactions.append(request["params"][0])
            self._to_hide = self.hidden_receipts
            if self.mined_later_s:
                requests.post(self.upstream, timeout=30, json={"jsonrpc": "2.0", "id": 0, "method": "evm_increaseTime",
                                                               "params": [self.mined_later_s]})
        if request["method"] == "eth_getTransactionReceipt" and self._to_hide > 0:
            self._to_hide -= 1
            return {"jsonrpc": "2.0", "id": request["id"], "result": None}
        return requests.post(self.upstream, json=request, timeout=30).json()

    def die(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(funded: Deployment) -> Iterator[RpcProxy]:
    """A proxy in front of the session's funded devnet."""
    running = RpcProxy(funded.rpc_url)
    yield running
    running.die()


def through(table: dict, *urls: str) -> dict:
    return table | {"chain": table["chain"] | {"rpc_urls": list(urls)}}


def signed_chain_ids(proxy: RpcProxy) -> list[int]:
    return [TypedTransaction.from_bytes(HexBytes(raw)).as_dict()["chainId"] for raw in proxy.raw_transactions]


class DiesAfterJournaling(Keeper):
    """The process dies between committing the signed transaction and broadcasting it."""

    def journal_signed(self, decision_id: int, pending: PendingTx) -> None:
        super().journal_signed(decision_id, pending)
        raise KeyboardInterrupt("killed after journaling the signed transaction")


def crash(config: Config) -> None:
    with open_keeper(config) as opened:
        with pytest.raises(KeyboardInterrupt):
            as_a(DiesAfterJournaling, opened).run_cycle()


def restart(config: Config) -> CycleOutcome:
    with open_keeper(config) as restarted:
        return restarted.run_cycle()


def known_to(w3: Web3, tx_hash: str) -> bool:
    return w3.provider.make_request("eth_getTransactionByHash", [tx_hash])["result"] is not None


# -- a lying chain id -----------------------------------------------------------------------------------


def test_an_rpc_that_starts_claiming_another_chain_gets_nothing_signed(w3, funded, keeper_table, proxy):
    config = config_of(through(keeper_table, proxy.url()))
    nonce = w3.eth.get_transaction_count(funded.keeper)
    with open_keeper(config) as keeper:  # the proxy answered honestly at start
        proxy.lie_chain_id = MAINNET
        outcome = keeper.run_cycle()
    assert outcome.status == CycleStatus.FAILED and outcome.failure_kind == "rpc"
    assert f"the RPC now serves chain {MAINNET}, but this sender signs for chain {funded.chain_id}" in outcome.reason
    assert "nothing signed or sent" in outcome.reason
    assert proxy.raw_transactions == []  # no transaction at all reached the RPC, for chain 1 or any other
    assert w3.eth.get_transaction_count(funded.keeper) == nonce
    db = journal(config)
    assert db.pending_transactions() == [] and db.recent_cycles(1)[0].reason == outcome.reason
    db.close()


def test_a_journaled_transaction_is_not_resumed_through_an_rpc_claiming_another_chain(w3, funded, keeper_table,
                                                                                       proxy):
    config = config_of(through(keeper_table, proxy.url()))
    crash(config)
    with open_keeper(config) as keeper:
        proxy.lie_chain_id = MAINNET
        outcome = keeper.run_cycle()
    assert outcome.status == CycleStatus.FAILED and "WrongChain: the RPC now serves chain 1" in outcome.reason
    assert proxy.raw_transactions == []
    db = journal(config)
    [pending] = db.pending_transactions()  # kept for an honest RPC
    assert pending.status == TxStatus.SIGNED and not known_to(w3, pending.tx_hash)
    db.close()
    proxy.lie_chain_id = None
    assert restart(config).status == CycleStatus.SKIPPED  # honest again: resumed, then the vault's cooldown
    assert signed_chain_ids(proxy) == [funded.chain_id] and rebalanced_hashes(w3, funded)


def test_a_node_counting_the_nonce_before_it_serves_the_receipt_is_not_taken_for_another_sender(
        w3, funded, keeper_table, proxy):
    """anvil sometimes moves the account's nonce a moment before it serves the receipt: that is our transaction
    mined, not another one that took the nonce."""
    proxy.hidden_receipts = 4
    with open_keeper(config_of(through(keeper_table, proxy.url()))) as keeper:
        outcome = keeper.run_cycle()
    assert outcome.status == CycleStatus.REBALANCED, outcome.reason
    assert rebalanced_hashes(w3, funded) == [outcome.decision_hash]


@pytest.mark.skipif(recorded_answer("defillama-yields-chart.json") is None,
                    reason="built on the real recorded answers: on the synthetic ones the model wants no market the "
                           "vault does not hold once it has invested, so no new money goes to one")
def test_a_rebalance_mined_an_hour_after_the_read_still_leaves_idle_above_the_floor(w3, funded, keeper_table, proxy):
    """The vault reports its markets before it checks the idle floor, so it checks it on a total grown by what the
    positions earned since the keeper read them. New money going to a market the vault did not hold, while the
    held ones earn untouched, is the case where nothing of that growth comes back to idle: a plan down to the floor
    of the total it read reverts 'vault: idle below floor' once it is mined an hour later (it did before the
    allocator kept the accrual margin above the floor)."""
    config = config_of(through(keeper_table, proxy.url()))
    with open_keeper(config) as keeper:
        for _ in range(3):  # invest as far as the turnover and the caps allow
            keeper.run_cycle()
            w3.provider.make_request("evm_increaseTime", [2 * 3600])  # past the vault's one-hour cooldown
            w3.provider.make_request("evm_mine", [])
        vault, state = funded.contract(w3, "Vault", funded.vault), keeper.chain.reader.state()
        held = [market for market in state.positions if state.position(market) > 0]
        assert 0 < len(held) < len(state.positions)
        for market in held:  # a lowered cap applies now; 1 USDC of room is no trade worth its gas
            cap_bps = keeper.chain.reader.guardrails().markets[market].cap_bps
            transact(w3, vault.functions.submit_market(market, cap_bps, state.position(market) + 10**6), funded.admin)
        depositor, token, new_money = funded.depositors[0], funded.contract(w3, "MockToken", funded.asset), DEPOSIT // 4
        transact(w3, token.functions.mint(depositor, new_money), funded.admin)
        transact(w3, token.functions.approve(funded.vault, new_money), depositor)
        transact(w3, vault.functions.deposit(new_money, depositor), depositor)
        rails, before = keeper.chain.reader.guardrails(), keeper.chain.reader.state()
        proxy.mined_later_s = 3600
        outcome = keeper.run_cycle()
    assert outcome.status == CycleStatus.REBALANCED, outcome.reason
    after = keeper.chain.reader.state()
    assert {m for m in after.positions if after.position(m) > before.position(m) + 10**6} == \
        set(after.positions) - set(held)  # the new money went where the vault held nothing
    assert after.idle < before.idle and after.idle * 10_000 >= rails.min_idle_bps * after.total
    assert rebalanced_hashes(w3, funded)[-1] == outcome.decision_hash


# -- a chain reset, a reorg, a stale decision -----------------------------------------------------------


def test_a_transaction_journaled_before_a_chain_reset_is_abandoned_not_broadcast(compiled_contracts, keeper_table,
                                                                                  tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # `keeper status` prints each cycle on one line
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, deployment = own_devnet(compiled_contracts, tmp_path / "a")
    proxy = RpcProxy(first.rpc_url)
    try:
        path = tmp_path / "own-devnet.json"
        deployment.save(path)
        markets = dict(zip(keeper_table["markets"], (m.address for m in deployment.markets), strict=True))
        table = through(keeper_table, proxy.url()) | {"markets": markets}
        table["chain"]["deployment"] = str(path)
        config = config_of(table)
        crash(config)
        db = journal(config)
        [journaled] = db.pending_transactions()
        crashed_cycle = db.decision_of(journaled).cycle_id
        old_genesis = Web3(Web3.HTTPProvider(first.rpc_url)).eth.get_block(0)["hash"]
        first.stop()

        second, redeployed = own_devnet(compiled_contracts, tmp_path / "b")  # the devnet restarted
        try:
            w3 = Web3(Web3.HTTPProvider(second.rpc_url))
            assert (redeployed.vault, redeployed.keeper) == (deployment.vault, deployment.keeper)
            assert w3.eth.get_block(0)["hash"] != old_genesis
            proxy.upstream = second.rpc_url
            outcome = restart(config)

            assert not known_to(w3, journaled.tx_hash) and journaled.raw_tx not in proxy.raw_transactions
            assert db.decision_of(journaled).decision_hash not in rebalanced_hashes(w3, redeployed)
            cycle = {c.id: c for c in db.recent_cycles()}[crashed_cycle]
            assert cycle.status == CycleStatus.ABANDONED and "chain reset" in cycle.reason
            assert outcome.status == CycleStatus.REBALANCED  # a fresh decision on the new chain
            assert db.transaction(outcome.tx_hash).nonce == journaled.nonce
            abandoned = db.transaction(journaled.tx_hash)  # the new receipt of its nonce left it abandoned
            assert abandoned.status == TxStatus.ABANDONED and "chain reset" in abandoned.error

            status = vaultbot("keeper", "status", "--config", str(config_file(table, tmp_path)))
            assert status.exit_code == 0, status.output
            assert re.search(rf"{crashed_cycle} .*abandoned.*chain reset", status.output), status.output
        finally:
            second.stop()
        db.close()
    finally:
        first.stop()
        proxy.die()


def test_a_transaction_built_on_a_block_a_reorg_replaced_is_abandoned(w3, funded, keeper_config):
    before = w3.provider.make_request("evm_snapshot", [])["result"]
    w3.provider.make_request("evm_mine", [])
    built_on = w3.eth.get_block("latest")  # the head the keeper builds its transaction on
    crash(keeper_config)
    db = journal(keeper_config)
    [journaled] = db.pending_transactions()
    assert (journaled.built_on_block, journaled.built_on_hash) == (built_on["number"], built_on["hash"].to_0x_hex())
    w3.provider.make_request("evm_revert", [before])
    w3.provider.make_request("evm_mine", [built_on["timestamp"] + 7])  # another block at that height
    assert w3.eth.get_block(built_on["number"])["hash"] != built_on["hash"]

    restart(keeper_config)
    assert not known_to(w3, journaled.tx_hash)
    abandoned = db.transaction(journaled.tx_hash)
    assert abandoned.status == TxStatus.ABANDONED
    assert f"reorg: block {built_on['number']} it was built on was {built_on['hash'].to_0x_hex()}" in abandoned.error
    db.close()


def crashed_with_a_short_decision_age(keeper_table: dict) -> tuple[Config, KeeperDB, Transaction, Decision]:
    """A keeper whose decisions go stale after 1 s, crashed with its transaction journaled and not broadcast: its
    config, journal, that transaction and its decision."""
    keeper_table["service"]["decision_max_age_s"] = 1.0
    config = config_of(keeper_table)
    crash(config)
    db = journal(config)
    [stale] = db.pending_transactions()
    return config, db, stale, db.decision_of(stale)


def test_a_transaction_of_a_stale_decision_is_abandoned_not_broadcast(w3, funded, keeper_table):
    config, db, stale, old_decision = crashed_with_a_short_decision_age(keeper_table)
    time.sleep(1.5)

    outcome = restart(config)
    assert not known_to(w3, stale.tx_hash)
    abandoned = db.transaction(stale.tx_hash)
    assert abandoned.status == TxStatus.ABANDONED
    assert re.search(r"stale decision: decided \d+s ago, more than service.decision_max_age_s \(1s\)", abandoned.error)
    cycle = {c.id: c for c in db.recent_cycles()}[old_decision.cycle_id]
    assert cycle.status == CycleStatus.ABANDONED and "stale decision" in cycle.reason
    assert outcome.status == CycleStatus.REBALANCED  # decided anew, from fresh data
    assert old_decision.decision_hash not in rebalanced_hashes(w3, funded)
    db.close()


def test_a_stale_transaction_still_in_the_pool_is_cancelled_before_the_keeper_decides_anew(w3, funded, keeper_table):
    # Broadcast before the crash and never mined (a gas spike, say): left alone it could be mined any time later,
    # a decision executed long after it was made. The restart takes its nonce with a cancel, journaled first.
    config, db, stale, old_decision = crashed_with_a_short_decision_age(keeper_table)
    w3.provider.make_request("evm_setAutomine", [False])
    try:
        assert "error" not in w3.provider.make_request("eth_sendRawTransaction", [stale.raw_tx])
        time.sleep(1.5)
        result: dict[str, Any] = {}
        thread = threading.Thread(target=lambda: result.update(outcome=restart(config)), daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while len(versions := [tx for tx in db.pending_transactions() if tx.nonce == stale.nonce]) < 2:
            assert time.monotonic() < deadline and thread.is_alive(), "no cancel was journaled"
            time.sleep(0.05)
        cancel = versions[-1]  # journaled as a version of the stale transaction
        while not known_to(w3, cancel.tx_hash):
            assert time.monotonic() < deadline, "the cancel was not broadcast"
            time.sleep(0.05)
        w3.provider.make_request("evm_mine", [])
    finally:
        w3.provider.make_request("evm_setAutomine", [True])
    thread.join(60)
    assert result["outcome"].status == CycleStatus.REBALANCED  # decided anew, after the cancel
    assert cancel.nonce == stale.nonce and cancel.function == "cancel"
    assert w3.eth.get_transaction(cancel.tx_hash)["to"] == funded.keeper
    for tx in (db.transaction(stale.tx_hash), db.transaction(cancel.tx_hash)):
        assert tx.status == TxStatus.ABANDONED and f"cancelled by {cancel.tx_hash}" in tx.error
    assert old_decision.decision_hash not in rebalanced_hashes(w3, funded)
    db.close()


# -- credentials in RPC URLs ----------------------------------------------------------------------------


def test_rpc_credentials_never_reach_the_output(w3, funded, keeper_table, proxy, tmp_path):
    """A dead first URL makes the keeper fail over (and say so); then the proxy dies under status and verify."""
    credentials = f"keeper:{PASSWORD}@"
    dead = f"http://{credentials}127.0.0.1:9/v3/{API_KEY}?apikey={QUERY_KEY}"
    table = through(keeper_table, dead, proxy.url(credentials, f"/v3/{API_KEY}"))
    path = config_file(table, tmp_path)
    secrets = (PASSWORD, API_KEY, QUERY_KEY)

    once = vaultbot("keeper", "once", "--config", str(path), "--log-format", "json", "--log-level", "INFO")
    assert once.exit_code == 0, once.output
    tx_hash = re.search(r"transaction (0x[0-9a-f]{64})", once.output).group(1)
    logs = [json.loads(line) for line in once.output.splitlines() if line.startswith("{")]
    assert any("RPC fail-over" in record["message"] for record in logs)  # the URLs are named, masked
    assert "http://***@127.0.0.1:9/v3/***?apikey=***" in once.output
    status = vaultbot("keeper", "status", "--config", str(path))
    verify = vaultbot("keeper", "verify", tx_hash, "--config", str(path))
    assert status.exit_code == verify.exit_code == 0, status.output + verify.output

    proxy.die()
    status_offline = vaultbot("keeper", "status", "--config", str(path))
    verify_offline = vaultbot("keeper", "verify", tx_hash, "--config", str(path))
    assert "positions not shown: no RPC answered" in status_offline.output
    assert verify_offline.exit_code == 1 and "no RPC answered" in verify_offline.output
    assert f"http://***@127.0.0.1:{proxy.port}/v3/***" in verify_offline.output
    for result in (once, status, verify, status_offline, verify_offline):
        for secret in secrets:
            assert secret not in result.output, result.output

"""chain.logs and the vault reader's logs on a real anvil, through proxies that refuse eth_getLogs as providers do:
over more than K blocks (Alchemy's and public nodes' caps), or answering more than M logs (Infura's). The reader
still returns exactly the logs one unbounded query to plain anvil returns, in order; a single block a node refuses
is one RpcUnavailable (one line at the CLI), after a bounded number of requests; `proposals()` reads only the
blocks of the last PROPOSAL_TTL seconds and misses no live proposal.

Anvil mines a block in time that grows with the chain (6,000 blocks took a minute), so the range is cut to
`RANGE` blocks here instead of the 10,000 of `chain.logs.LOG_RANGE_BLOCKS`.
"""

import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from web3 import Web3

import chain.logs
from chain.errors import RpcUnavailable
from chain.logs import event_logs
from chain.rpc import connect
from chain.vault_reader import VaultReader
from tests.cli import vaultbot
from tests.keeper.chain_world import Devnet, first_markets, fund_vault, manual_mining, net
from tests.keeper.test_hostile_rpc import RpcProxy
from tests.test_bad_input import one_clear_line

pytestmark = pytest.mark.anvil

__all__ = ["net"]  # fixtures

RANGE = 50
TTL = 86_400  # Vault.vy PROPOSAL_TTL
ALCHEMY = {"code": -32602, "message": "Log response size exceeded. You can make eth_getLogs requests with up to a "
                                      "2K block range and no limit on the response size"}
INFURA = {"code": -32005, "message": "query returned more than 10000 results"}


class LogsCappedRpc(RpcProxy):
    """Forwards to `upstream`, refusing eth_getLogs over more than `max_blocks` blocks (Alchemy's error) or answering
    more than `max_logs` logs (Infura's); `ranges` is every eth_getLogs asked: (first, last, served)."""

    def __init__(self, upstream: str, *, max_blocks: int | None = None, max_logs: int | None = None) -> None:
        super().__init__(upstream)
        self.max_blocks, self.max_logs = max_blocks, max_logs
        self.ranges: list[tuple[int, int, bool]] = []

    def answer(self, request: Any) -> Any:
        if isinstance(request, list) or request["method"] != "eth_getLogs":
            return super().answer(request)
        query = request["params"][0]
        first, last = int(query["fromBlock"], 16), int(query["toBlock"], 16)
        answer = super().answer(request)
        error = self._refusal(last - first + 1, len(answer.get("result") or []))
        self.ranges.append((first, last, error is None))
        return answer if error is None else {"jsonrpc": "2.0", "id": request["id"], "error": error}

    def _refusal(self, blocks: int, logs: int) -> dict[str, Any] | None:
        if self.max_blocks is not None and blocks > self.max_blocks:
            return ALCHEMY
        if self.max_logs is not None and logs > self.max_logs:
            return INFURA
        return None

    def served(self) -> list[tuple[int, int]]:
        return [(first, last) for first, last, served in self.ranges if served]

    def refused(self) -> int:
        return sum(not served for _, _, served in self.ranges)


@pytest.fixture(autouse=True)
def short_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chain.logs, "LOG_RANGE_BLOCKS", RANGE)


@pytest.fixture
def capped(net: Devnet, request: pytest.FixtureRequest) -> Iterator[LogsCappedRpc]:
    proxy = LogsCappedRpc(net.deployment.rpc_url, **getattr(request, "param", {}))
    yield proxy
    proxy.die()


def mine(net: Devnet, blocks: int) -> None:
    net.rpc("anvil_mine", hex(blocks), hex(12))  # 12 s a block, as mainnet


def proposal(net: Devnet, decision: int) -> Any:
    """propose_rebalance of nothing (the vault checks only the sender) under decision hash `decision`."""
    return net.vault.functions.propose_rebalance([], decision.to_bytes(32, "big"))


def propose(net: Devnet, decision: int) -> dict:
    return net.transact(proposal(net, decision), net.deployment.keeper)


def proposed_in_one_block(net: Devnet, decisions: range) -> int:
    with manual_mining(net.w3):
        hashes = [proposal(net, decision).transact({"from": net.deployment.keeper}) for decision in decisions]
        net.rpc("evm_mine")
    blocks = {net.w3.eth.wait_for_transaction_receipt(tx)["blockNumber"] for tx in hashes}
    assert len(blocks) == 1
    return blocks.pop()


@pytest.fixture
def proposed(net: Devnet) -> tuple[int, int]:
    """RebalanceProposed logs over some 4 * RANGE blocks: on each side of a range's end, at most two a block."""
    first = VaultReader(net.w3, net.deployment.vault, net.deployment).deployed_block()
    for decision, gap in enumerate((1, RANGE - 3, 1, 1, RANGE - 7, 20, 1, 33, RANGE, 2), start=1):
        mine(net, gap)
        propose(net, decision)
    proposed_in_one_block(net, range(100, 102))
    mine(net, 5)
    return first, net.w3.eth.block_number


def unbounded(net: Devnet, first: int, last: int) -> list:
    """What one eth_getLogs over the whole range answers on plain anvil."""
    return list(net.vault.events.RebalanceProposed().get_logs(from_block=first, to_block=last))


def proposed_logs(proxy: LogsCappedRpc, net: Devnet, first: int, last: int) -> list:
    w3 = connect([proxy.url(), net.deployment.rpc_url])  # an error answer must not fail over to plain anvil
    vault = w3.eth.contract(address=net.vault.address, abi=net.vault.abi)
    return event_logs(vault.events.RebalanceProposed(), first, last)


def covers(ranges: list[tuple[int, int]], first: int, last: int) -> bool:
    """`ranges` are consecutive, from `first` to `last`."""
    starts = [first] + [end + 1 for _, end in ranges[:-1]]
    return [start for start, _ in ranges] == starts and ranges[-1][1] == last


def test_logs_are_read_in_consecutive_ranges_of_at_most_log_range_blocks(net, proposed, capped):
    first, last = proposed
    logs = proposed_logs(capped, net, first, last)
    expected = unbounded(net, first, last)
    assert len(expected) == 12 and logs == expected
    served = capped.served()
    assert covers(served, first, last) and capped.refused() == 0
    assert all(end - start + 1 <= RANGE for start, end in served)
    assert len(served) == -(-(last - first + 1) // RANGE)  # every range but the last is full


@pytest.mark.parametrize("capped", [{"max_blocks": 16}], indirect=True)
def test_a_node_capping_the_block_range_gets_halved_ranges_and_the_same_logs(net, proposed, capped):
    first, last = proposed
    assert proposed_logs(capped, net, first, last) == unbounded(net, first, last)
    served = capped.served()
    assert covers(served, first, last) and all(end - start + 1 <= 16 for start, end in served)
    assert capped.refused() == 2  # 50, 25 refused; the 12 that worked is kept for the rest of the read


@pytest.mark.parametrize("capped", [{"max_logs": 2}], indirect=True)
def test_a_node_capping_the_answer_gets_halved_ranges_and_the_same_logs(net, proposed, capped):
    first, last = proposed
    assert proposed_logs(capped, net, first, last) == unbounded(net, first, last)
    assert covers(capped.served(), first, last) and capped.refused() > 0


def raised_within(seconds: float, call: Callable[[], object]) -> BaseException | None:
    """What `call` raised (None: nothing); the test fails if it still runs after `seconds` (an endless loop)."""
    raised: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
        except Exception as error:  # handed to the test
            raised.append(error)
        else:
            raised.append(None)

    thread = threading.Thread(target=run, daemon=True)  # an endless loop ends with the proxy, at teardown
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"still running after {seconds:g} s")
    return raised[0]


@pytest.mark.parametrize("capped", [{"max_logs": 2}], indirect=True)
def test_a_single_block_refused_is_one_error_after_a_few_requests(net, capped):
    mine(net, 3 * RANGE)
    dense = proposed_in_one_block(net, range(3))
    reader = VaultReader(connect([capped.url()]), net.deployment.vault, net.deployment)
    error = raised_within(30, reader.proposals)
    assert isinstance(error, RpcUnavailable) and re.fullmatch(
        f"the RPC refused eth_getLogs of RebalanceProposed in block {dense}: .*query returned more than 10000 "
        "results.*", str(error)), error
    assert capped.refused() <= RANGE.bit_length() + 1  # halved down to the one block, then given up

    message = one_clear_line(vaultbot("vault", "info", "--rpc", capped.url(), "--vault", net.deployment.vault))
    assert f"the RPC refused eth_getLogs of RebalanceProposed in block {dense}" in message, message


@pytest.mark.parametrize("capped", [{"max_blocks": 16}], indirect=True)
def test_rebalance_events_through_a_capped_node_are_those_of_plain_anvil(net, capped):
    fund_vault(net)
    for day, amounts in enumerate(([5_000 * 10**6], [4_000 * 10**6, 1_000 * 10**6], [3_000 * 10**6])):
        net.rpc("evm_increaseTime", TTL)
        mine(net, RANGE + 7)
        net.transact(net.vault.functions.rebalance(first_markets(net, amounts), bytes([day + 1]) * 32),
                     net.deployment.keeper)
    mine(net, 3)
    reader = VaultReader(connect([capped.url()]), net.deployment.vault, net.deployment)
    events = reader.rebalance_events()
    assert len(events) == 3 and events == VaultReader(net.w3, net.deployment.vault, net.deployment).rebalance_events()
    served = capped.served()
    assert covers(served, reader.deployed_block(), net.w3.eth.block_number) and capped.refused() == 2
    assert all(end - start + 1 <= 16 for start, end in served)


def proposal_id(net: Devnet, receipt: dict) -> str:
    [log] = net.vault.events.RebalanceProposed().process_receipt(receipt)
    return "0x" + bytes(log["args"]["id"]).hex()


def live_at(net: Devnet, block: int) -> set[str]:
    """The ids of every proposal ever made that is live at `block`, from one query over all the vault's logs."""
    now = net.w3.eth.get_block(block)["timestamp"]
    logs = net.vault.events.RebalanceProposed().get_logs(from_block=0, to_block=block)
    return {"0x" + bytes(log["args"]["id"]).hex() for log in logs
            if net.vault.functions.proposals(log["args"]["id"]).call(block_identifier=block)[0] >= now}


def test_proposals_reads_only_the_last_ttl_and_misses_no_live_proposal(net, capped):
    propose(net, 1)  # expires
    again = propose(net, 2)  # proposed again below, inside the window: live by its second log only
    net.rpc("evm_increaseTime", TTL)
    mine(net, 2 * RANGE)
    # anvil mines the block after anvil_mine's last at the same second: `boundary` is the first of its second here
    net.rpc("evm_setNextBlockTimestamp", net.w3.eth.get_block("latest")["timestamp"] + 1)
    boundary = propose(net, 3)
    mine(net, 3)
    assert proposal_id(net, propose(net, 2)) == proposal_id(net, again)
    mine(net, 10)
    deadline = net.w3.eth.get_block(boundary["blockNumber"])["timestamp"] + TTL
    net.rpc("evm_mine", deadline)  # `boundary`'s last second

    last = net.w3.eth.block_number
    reader = VaultReader(connect([capped.url()]), net.deployment.vault, net.deployment)
    live = {proposal.id for proposal in reader.proposals(last)}
    assert live == live_at(net, last) == {proposal_id(net, boundary), proposal_id(net, again)}
    assert [first for first, _, _ in capped.ranges] == [boundary["blockNumber"]]  # one range, from `boundary` on

    net.rpc("evm_mine", deadline + 1)  # a second later, `boundary` is past its deadline
    assert {proposal.id for proposal in reader.proposals()} == live_at(net, last + 1) == {proposal_id(net, again)}

"""`ChainVault`: a `backtest.engine.BacktestVault` whose money is in the real `Vault` and `MockMarket`s on anvil.

Chain time of a day is `origin` plus the days since the window's first day. Every market is touched once a
day, at exactly that time, in one block: `set_rate` accrues the day just ended at the rate set a day earlier
and sets the rate for the day ahead, so each day's simple interest compounds daily like fast mode's factors.
The rate of the day ahead is the recorded APY's (growth - 1) / 86400 s (1e18 = 100 %/s), set before the day's
rebalance is known; the dilution of that yield by the vault's position held into the day (`backtest.realised`), a
price move, an incident or a negative yield is applied on arrival as an exact change of the market's balance: a gain
is minted to the market, a loss is `inject_loss` of the whole basis points above it and a top-up of the excess, later
in the same block, from the balance the market holds once its day accrued (its `totalAssets` read as the block will
find it). A market whose available liquidity that day could bind the vault's position is capped to it
(`set_liquidity`, the market's `maxWithdraw`), as fast mode's state bounds its withdrawals; the cap is sent only when
it changes. The vault's report closes the block. The rebalance is mined at the day's time too, so cooldowns see the
same clock as fast mode.

A day is four JSON-RPC round trips, all of them mining its block (`ChainContracts.mine`); the last also reads the
vault's state there (`VaultReader.batched_state`), once, for the day's decision and its value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import pandas as pd
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError, Web3RPCError
from web3.logs import DISCARD
from web3.types import BlockIdentifier, RPCEndpoint, RPCResponse, TxReceipt

from backtest.engine import Executed, Setup
from backtest.errors import ChainModeError
from backtest.realised import DayFactors, RealisedMarket
from chain.errors import ContractRevert
from chain.events import emitted
from chain.rebalance import simulate_then_send
from chain.rpc import batching_provider
from chain.tx import TxSender
from chain.vault_reader import AbiCodec, VaultReader, ViewCall, decoded, read_batch
from strategy.decision_record import decision_hash_of, decision_record, keccak_hex
from strategy.guardrails import MAX_MARKETS, VaultState
from strategy.units import BPS, GWEI, SECONDS_PER_DAY, UINT256_MAX, WAD

MARKET_TX_GAS = 1_000_000  # set_rate, inject_loss, mint ~60k each, a report of 16 markets ~300k: no estimate per call
# A day's block: every market's rate, up to two calls of its mark and its liquidity cap, and the report.
DAY_BLOCK_GAS = (4 * MAX_MARKETS + 1) * MARKET_TX_GAS
# Fees set, not left to anvil (which prices from its own base-fee state, not restored by evm_revert): the same
# replay sends the same transactions; no tip, the base fee is paid, in the operators' ETH.
MARKET_TX_FEE_CAP = 10_000 * GWEI


def rpc(w3: Web3, method: str, *params: Any) -> Any:
    """One raw JSON-RPC call (anvil's evm_* and anvil_* methods); an error reply is a ChainModeError."""
    reply = w3.provider.make_request(RPCEndpoint(method), list(params))
    if "error" in reply:
        raise ChainModeError(f"{method} failed: {reply['error']}")
    return reply.get("result")


def rpc_batch(w3: Web3, requests: list[tuple[str, list[Any]]]) -> list[Any]:
    """Raw JSON-RPC calls in one batch, their results in order. anvil may run a batch's calls in any order:
    batch only calls that do not depend on each other. An error reply is a ChainModeError."""
    replies = rpc_replies(w3, requests)
    for (method, _), reply in zip(requests, replies, strict=True):
        if "error" in reply:
            raise ChainModeError(f"{method} failed: {reply['error']}")
    return [reply.get("result") for reply in replies]


def rpc_replies(w3: Web3, requests: list[tuple[str, list[Any]]]) -> list[RPCResponse]:
    """`rpc_batch`'s replies themselves, an error reply among them (an eth_call the caller decodes)."""
    replies = batching_provider(w3).make_batch_request([(RPCEndpoint(method), params) for method, params in requests])
    if not isinstance(replies, list) or len(replies) != len(requests):
        raise ChainModeError(f"a batch of {len(requests)} requests got {replies!r:.200}")
    return replies


class Mined(NamedTuple):
    block: int  # its number
    after: list[Any]  # the answers of the reads made once it was mined


class Call(NamedTuple):
    """One operator transaction of a day's block: `data` sent to `to` from `sender` (impersonated on anvil)."""

    sender: str
    to: str
    data: str


@dataclass(frozen=True)
class ChainContracts:
    """The deployed backtest: markets in `Setup.pools` order with the account allowed to operate each."""

    w3: Web3
    vault: Contract
    token: Contract
    markets: list[Contract]
    operators: list[str]
    admin: str  # any unlocked account: mints gains (MockToken.mint is public)
    reader: VaultReader
    sender: TxSender  # the keeper's
    origin: int  # chain time of the window's first day
    market_codec: AbiCodec  # calldata without web3's search of the ABI on every call
    token_codec: AbiCodec
    vault_codec: AbiCodec

    def rpc(self, method: str, *params: Any) -> Any:
        return rpc(self.w3, method, *params)

    def at_origin(self, origin: int) -> ChainContracts:
        return replace(self, origin=origin)

    def transact(self, call: ContractFunction, sender: str, step: str) -> None:
        """Send one set-up transaction from an unlocked account; a revert is a ChainModeError naming `step`."""
        try:
            receipt = self.w3.eth.wait_for_transaction_receipt(call.transact({"from": sender}))
        except (ContractLogicError, Web3RPCError) as error:
            raise ChainModeError(f"{step} failed: {error}") from None
        if receipt["status"] != 1:
            raise ChainModeError(f"{step} failed: the transaction reverted")

    def mine(self, timestamp: int, step: str, build: Callable[[list[Any]], list[Call]],
             reads: Sequence[ViewCall] = (), after: Sequence[ViewCall] = ()) -> Mined:
        """Mine one block at `timestamp` by hand: `reads` are made as the block will find them (at the latest block,
        its time set to `timestamp`), `build` makes the block's calls of their values, and the calls are sent and
        mined in their order; every one must succeed. Then `after` is read at the block.

        Four round trips: automine off, with the reads and the senders' nonces; the calls, in one batch when they
        have one sender (anvil may take a batch's calls in any order: the nonces keep the block's), else one at a
        time (fork mode's operators); evm_mine; automine on, with the block's receipts and the `after` reads."""
        senders = sorted({self.admin, *self.operators})
        at_timestamp = {"time": hex(timestamp)}  # eth_call's block overrides
        first = rpc_batch(self.w3, [("evm_setAutomine", [False]),
                                    *(("eth_getTransactionCount", [sender, "pending"]) for sender in senders),
                                    *(("eth_call", read.params("latest", {}, at_timestamp)) for read in reads)])
        try:
            nonces = {sender: int(nonce, 16) for sender, nonce in zip(senders, first[1:1 + len(senders)], strict=True)}
            calls = build([read.codec.decode(read.function, value)
                           for read, value in zip(reads, first[1 + len(senders):], strict=True)])
            transactions = []
            for call in calls:
                transactions.append(_transaction(call, nonces[call.sender]))
                nonces[call.sender] += 1
            if len({call.sender for call in calls}) == 1:
                rpc_batch(self.w3, [("eth_sendTransaction", [transaction]) for transaction in transactions])
            else:
                for transaction in transactions:
                    self.rpc("eth_sendTransaction", transaction)
            self.rpc("evm_mine", timestamp)
        except BaseException:
            self.rpc("evm_setAutomine", True)
            raise
        replies = rpc_replies(self.w3, [("evm_setAutomine", [True]), ("eth_getBlockReceipts", ["latest"]),
                                        *(("eth_call", read.params("latest")) for read in after)])
        receipts = replies[1]["result"]
        failed = sum(1 for receipt in receipts if int(receipt["status"], 16) != 1)
        if len(receipts) != len(calls) or failed:
            raise ChainModeError(f"{step}: {failed or len(calls) - len(receipts)} of {len(calls)} transactions "
                                 f"failed in block {int(receipts[0]['blockNumber'], 16) if receipts else '?'}")
        return Mined(int(receipts[0]["blockNumber"], 16), decoded(after, replies[2:]))


def _transaction(call: Call, nonce: int) -> dict[str, str]:
    return {"from": call.sender, "to": call.to, "data": call.data, "gas": hex(MARKET_TX_GAS),
            "maxFeePerGas": hex(MARKET_TX_FEE_CAP), "maxPriorityFeePerGas": "0x0", "nonce": hex(nonce)}


class ChainVault:
    """One strategy's vault on chain; `start()` sets the first day's rates (`ChainWorld.vault` calls it)."""

    def __init__(self, setup: Setup, contracts: ChainContracts, strategy: str) -> None:
        self.setup, self.contracts, self.strategy = setup, contracts, strategy
        self.realised = RealisedMarket.of(setup)
        self.address_of = {pool: market.address for pool, market in zip(setup.pools, contracts.markets, strict=True)}
        self.chain_id = contracts.w3.eth.chain_id
        self._day_index = {day: index for index, day in enumerate(setup.days)}
        self._state: VaultState | None = None  # read once between two writes
        self._block: BlockIdentifier = "latest"  # the block of the last write: where the state is read
        self._liquidity: list[int] = []  # each market's liquidity cap as last set (read by `start`)

    def clock(self, day: pd.Timestamp) -> int:
        """Chain time of `day`."""
        return self.contracts.origin + self._day_index[day] * SECONDS_PER_DAY

    def start(self) -> None:
        # Read, not assumed unlimited: a MockMarket already on a forked chain may have a cap set by its operator.
        c = self.contracts
        self._liquidity = read_batch(c.w3, [ViewCall(market.address, c.market_codec, "liquidity")
                                            for market in c.markets], c.w3.eth.block_number)
        self._block = self._mine_day(self.setup.days[0], None).block

    # -- BacktestVault ----------------------------------------------------------------------------------

    def state(self) -> VaultState:
        if self._state is None:
            self._state = self._read_state()
        return self._state

    def rebalance(self, trades: Mapping[str, int], day: pd.Timestamp) -> Executed:
        """The engine's `send` verdict, through `chain.rebalance.simulate_then_send` as the keeper sends it; a revert
        is a rejection with the contract's reason."""
        now = self.clock(day)
        before = self.state()
        planned = sum(abs(amount - before.position(pool)) for pool, amount in trades.items())
        allocations = [(self.address_of[pool], amount) for pool, amount in trades.items()]
        record = decision_record(chain_id=self.chain_id, vault=self.contracts.vault.address,
                                 inputs_hash=keccak_hex(f"{self.setup.market.source} at {day.isoformat()}"),
                                 model_hash=keccak_hex(f"backtest strategy {self.strategy}"),
                                 targets=dict(allocations), timestamp=now)
        self._state = None
        try:
            receipt = simulate_then_send(
                self.contracts.sender, self.contracts.vault, allocations, decision_hash_of(record),
                before_send=lambda: self.contracts.rpc("evm_setNextBlockTimestamp", now))
        except ContractRevert as revert:
            gas = 0
            if revert.receipt is not None:  # mined and reverted: gas was paid
                gas, self._block = revert.receipt["gasUsed"], revert.receipt["blockNumber"]
            return Executed([revert.reason or "reverted without a reason"], planned,
                            self.setup.price_of_gas(gas), 0)
        if receipt is None:  # only a simulation (send=False) returns no receipt
            raise ChainModeError("the rebalance was simulated but not sent: no receipt to settle")
        self._block = receipt["blockNumber"]
        events = emitted(self.contracts.vault, "Rebalanced", receipt)
        return Executed([], int(events[0]["args"]["moved"]), self.setup.price_of_gas(receipt["gasUsed"]),
                        self._fees_paid(receipt))

    def _fees_paid(self, receipt: TxReceipt) -> int:
        """The slippage of a rebalance: the deposit fees the vault paid to this backtest's markets."""
        markets = set(self.address_of.values())
        fees = self.contracts.markets[0].events.DepositFeePaid().process_receipt(receipt, errors=DISCARD)
        return sum(int(fee["args"]["assets"]) for fee in fees
                   if fee["address"] in markets and fee["args"]["sender"] == self.contracts.vault.address)

    def advance(self, day: pd.Timestamp, pnl: dict[str, float]) -> None:
        before = self.state()
        factors = self.realised.on(day, [before.position(pool) for pool in self.setup.pools])
        unit = self.setup.settings.unit
        for index, pool in enumerate(self.setup.pools):
            factors.hold(index, before.position(pool)).add_pnl(pnl, unit)
        read = self.contracts.reader.batched_state()
        self._block, answers = self._mine_day(day, factors, before.total, read.calls)
        self._state = self._by_pool(read.state(answers, self._block))

    def _read_state(self) -> VaultState:
        """The vault at the block of the last write, positions keyed by pool."""
        return self._by_pool(self.contracts.reader.state(self._block))

    def _by_pool(self, state: VaultState) -> VaultState:
        return replace(state, positions={pool: state.position(address) for pool, address in self.address_of.items()},
                       withdrawable={pool: state.withdrawable[address] for pool, address in self.address_of.items()
                                     if address in state.withdrawable})

    # -- market steps -----------------------------------------------------------------------------------

    def _mine_day(self, day: pd.Timestamp, factors: DayFactors | None, total: int = 0,
                  after: Sequence[ViewCall] = ()) -> Mined:
        """`day`'s block at its time: every market accrues the day just ended and takes the rate of the day ahead;
        then, with `factors` (every day but the first), the day's price moves and losses, the liquidity caps that
        changed for a vault of `total` assets the day before, and the vault's report; `after` read there."""
        c = self.contracts
        index = self._day_index[day]
        ahead = (self.realised.on(self.setup.days[index + 1]).recorded_growth if index + 1 < len(self.setup.days)
                 else None)
        rates = [Call(operator, market.address,
                      c.market_codec.encode("set_rate", 0 if ahead is None else rate_for(float(ahead[i]))))
                 for i, (market, operator) in enumerate(zip(c.markets, c.operators, strict=True))]
        if factors is None:
            return c.mine(self.clock(day), f"set the market rates on {day.date()}", lambda _: rates)
        moves = [(i, factor) for i in range(len(c.markets))
                 if (factor := factors.hold(i, 1).after / max(float(factors.recorded_growth[i]), 1.0)) != 1.0]
        # The day's close is reported, as the keeper reports on a day it does not rebalance: the vault's stored
        # totalAssets (its share price) then carries the day's yield and moves as fast mode's value does.
        report = Call(c.admin, c.vault.address, c.vault_codec.encode("report"))
        caps = self._liquidity_caps(factors, total)
        return c.mine(self.clock(day), f"move the markets into {day.date()}",
                      lambda balances: [*rates, *self._marks(moves, balances), *caps, report],
                      [ViewCall(c.markets[i].address, c.market_codec, "totalAssets") for i, _ in moves], after)

    def _liquidity_caps(self, factors: DayFactors, total: int) -> list[Call]:
        """`set_liquidity` of each market whose cap changes: the day's available liquidity where it is below
        twice the vault's assets (no position can grow past that in a day), else unlimited (what fast mode's
        `DayFactors.withdrawable` leaves unbounded); either way its `maxWithdraw` is fast mode's bound."""
        c, calls = self.contracts, []
        bounded = factors.withdrawable([2 * total] * len(c.markets), self.setup.settings.unit)
        for index, (market, operator) in enumerate(zip(c.markets, c.operators, strict=True)):
            cap = bounded.get(index, UINT256_MAX)
            if cap != self._liquidity[index]:
                calls.append(Call(operator, market.address, c.market_codec.encode("set_liquidity", cap)))
                self._liquidity[index] = cap
        return calls

    def _marks(self, moves: list[tuple[int, float]], balances: list[int]) -> list[Call]:
        """Each moved market's balance (as its day accrued) times its factor, exactly: a gain minted to it, a loss
        as `inject_loss` of the whole basis points above it and a top-up of the excess."""
        c, calls = self.contracts, []
        for (index, factor), balance in zip(moves, balances, strict=True):
            market, operator = c.markets[index], c.operators[index]
            if balance == 0:
                continue
            target = round(balance * factor)
            if target > balance:
                calls.append(Call(c.admin, c.token.address, c.token_codec.encode("mint", market.address,
                                                                                   target - balance)))
            elif target < balance:
                bps = math.ceil((balance - target) * BPS / balance)
                excess = balance * bps // BPS - (balance - target)
                calls.append(Call(operator, market.address, c.market_codec.encode("inject_loss", bps)))
                if excess:
                    calls.append(Call(c.admin, c.token.address, c.token_codec.encode("mint", market.address, excess)))
        return calls


def rate_for(growth: float) -> int:
    """MockMarket's per-second simple rate that grows a balance by `growth` over a day (0 when it would shrink)."""
    return round((growth - 1.0) * WAD / SECONDS_PER_DAY) if growth > 1.0 else 0

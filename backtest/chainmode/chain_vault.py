"""`ChainVault`: a `backtest.engine.BacktestVault` whose money is in the real `Vault` and `MockMarket`s on anvil.

Chain time of a day is `origin` plus the days since the window's first day. Every market is touched once a
day, at exactly that time, in one block: `set_rate` accrues the day just ended at the rate set a day earlier
and sets the rate for the day ahead, so each day's simple interest compounds daily like fast mode's factors.
The rate of the day ahead is (growth - 1) / 86400 s (1e18 = 100 %/s); a price move, a TVL run or a negative
yield is applied on arrival as an exact change of the market's balance: a gain is minted to the market, a
loss is `inject_loss` of the whole basis points above it and a top-up of the excess, in a second block at
the same time. The rebalance is mined at the day's time too, so cooldowns see the same clock as fast mode.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import pandas as pd
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError, Web3RPCError
from web3.logs import DISCARD
from web3.types import TxReceipt

from backtest.engine import Executed, Setup
from backtest.errors import ChainModeError
from backtest.realised import DayFactors, RealisedMarket
from chain.errors import ContractRevert
from chain.events import emitted
from chain.rebalance import simulate_then_send
from chain.tx import TxSender
from chain.vault_reader import VaultReader
from strategy.decision_record import decision_hash_of, decision_record, keccak_hex
from strategy.guardrails import VaultState
from strategy.units import BPS, SECONDS_PER_DAY, WAD

MARKET_TX_GAS = 1_000_000  # set_rate, inject_loss, mint ~60k each, a report of 16 markets ~300k: no estimate per call


def rpc(w3: Web3, method: str, *params: Any) -> Any:
    """One raw JSON-RPC call (anvil's evm_* and anvil_* methods); an error reply is a ChainModeError."""
    reply = w3.provider.make_request(method, list(params))
    if "error" in reply:
        raise ChainModeError(f"{method} failed: {reply['error']}")
    return reply.get("result")


class Call(NamedTuple):
    """One operator transaction of a day's block."""

    sender: str
    contract: Contract
    function: str
    args: list[int | str]


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

    def mine(self, calls: list[Call], timestamp: int, step: str) -> None:
        """Send `calls` unmined, then mine them in one block at `timestamp`; every one must succeed."""
        if not calls:
            return
        self.rpc("evm_setAutomine", False)
        try:
            for call in calls:
                self.rpc("eth_sendTransaction", {"from": call.sender, "to": call.contract.address,
                                                 "data": call.contract.encode_abi(call.function, call.args),
                                                 "gas": hex(MARKET_TX_GAS)})
            self.rpc("evm_mine", timestamp)
        finally:
            self.rpc("evm_setAutomine", True)
        receipts = self.rpc("eth_getBlockReceipts", "latest")
        failed = sum(1 for receipt in receipts if int(receipt["status"], 16) != 1)
        if len(receipts) != len(calls) or failed:
            raise ChainModeError(f"{step}: {failed or len(calls) - len(receipts)} of {len(calls)} transactions "
                                 f"failed in block {int(receipts[0]['blockNumber'], 16) if receipts else '?'}")


class ChainVault:
    """One strategy's vault on chain; `start()` sets the first day's rates (`ChainWorld.vault` calls it)."""

    def __init__(self, setup: Setup, contracts: ChainContracts, strategy: str) -> None:
        self.setup, self.contracts, self.strategy = setup, contracts, strategy
        self.realised = RealisedMarket(setup.market, setup.pools, setup.settings.asset_symbol)
        self.address_of = {pool: market.address for pool, market in zip(setup.pools, contracts.markets, strict=True)}
        self.chain_id = contracts.w3.eth.chain_id
        self._day_index = {day: index for index, day in enumerate(setup.days)}
        self._state: VaultState | None = None  # read once between two writes

    def clock(self, day: pd.Timestamp) -> int:
        """Chain time of `day`."""
        return self.contracts.origin + self._day_index[day] * SECONDS_PER_DAY

    def start(self) -> None:
        self._touch(self.setup.days[0])

    # -- BacktestVault ----------------------------------------------------------------------------------

    def state(self) -> VaultState:
        if self._state is None:
            state = self.contracts.reader.state()
            self._state = replace(state, positions={pool: state.position(address)
                                                    for pool, address in self.address_of.items()})
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
            gas = revert.receipt["gasUsed"] if revert.receipt is not None else 0  # mined and reverted: gas was paid
            return Executed([revert.reason or "reverted without a reason"], planned,
                            self.setup.price_of_gas(gas), 0)
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
        factors = self.realised.on(day)
        unit = self.setup.settings.unit
        for index, pool in enumerate(self.setup.pools):
            factors.hold(index, before.position(pool)).add_pnl(pnl, unit)
        self._state = None
        self._touch(day)
        self._mark(day, factors)

    # -- market steps -----------------------------------------------------------------------------------

    def _touch(self, day: pd.Timestamp) -> None:
        """At `day`'s time, every market accrues the day just ended and takes the rate of the day ahead."""
        index = self._day_index[day]
        ahead = self.realised.on(self.setup.days[index + 1]).growth if index + 1 < len(self.setup.days) else None
        calls = [Call(operator, market, "set_rate", [0 if ahead is None else rate_for(float(ahead[i]))])
                 for i, (market, operator) in enumerate(zip(self.contracts.markets, self.contracts.operators,
                                                            strict=True))]
        self.contracts.mine(calls, self.clock(day), f"set the market rates on {day.date()}")

    def _mark(self, day: pd.Timestamp, factors: DayFactors) -> None:
        """Price moves, incident losses and negative yields of `day`, as exact changes of each market's balance."""
        calls: list[Call] = []
        for index, (market, operator) in enumerate(zip(self.contracts.markets, self.contracts.operators, strict=True)):
            factor = factors.hold(index, 1).after / max(float(factors.growth[index]), 1.0)
            if factor == 1.0:
                continue
            balance = self.contracts.token.functions.balanceOf(market.address).call()
            if balance == 0:
                continue
            target = round(balance * factor)
            if target > balance:
                calls.append(Call(self.contracts.admin, self.contracts.token, "mint",
                                  [market.address, target - balance]))
            elif target < balance:
                bps = math.ceil((balance - target) * BPS / balance)
                excess = balance * bps // BPS - (balance - target)
                calls.append(Call(operator, market, "inject_loss", [bps]))
                if excess:
                    calls.append(Call(self.contracts.admin, self.contracts.token, "mint", [market.address, excess]))
        # The day's close is reported, as the keeper reports on a day it does not rebalance: the vault's stored
        # totalAssets (its share price) then carries the day's yield and moves as fast mode's value does.
        calls.append(Call(self.contracts.admin, self.contracts.vault, "report", []))
        self.contracts.mine(calls, self.clock(day), f"apply price moves and losses on {day.date()}")


def rate_for(growth: float) -> int:
    """MockMarket's per-second simple rate that grows a balance by `growth` over a day (0 when it would shrink)."""
    return round((growth - 1.0) * WAD / SECONDS_PER_DAY) if growth > 1.0 else 0

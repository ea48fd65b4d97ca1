"""The simulated vault of fast mode: the state in Python, rebalances by `backtest.execution`, the day's yield,
losses and what each market can pay back by `backtest.realised`, gas charged from `[strategy.costs]` at the
simulated gas price."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

import pandas as pd

from backtest.execution import execute
from backtest.realised import RealisedMarket
from strategy.guardrails import VaultState

if TYPE_CHECKING:
    from backtest.engine import Executed, Setup


class FastVault:
    """A `backtest.engine.BacktestVault` held in memory: every step is exact arithmetic, no chain."""

    def __init__(self, setup: Setup):
        self.setup = setup
        self.realised = RealisedMarket.of(setup)
        self._state = VaultState(idle=setup.capital, positions=dict.fromkeys(setup.pools, 0), last_rebalance=0,
                                 paused=False)

    def state(self) -> VaultState:
        return self._state

    def clock(self, day: pd.Timestamp) -> int:
        return int(day.timestamp())

    def rebalance(self, trades: Mapping[str, int], day: pd.Timestamp) -> Executed:
        from backtest.engine import Executed

        costs = self.setup.costs
        result = execute(self._state, trades, self.clock(day), self.setup.guardrails, costs.slippage_bps)
        self._state = result.state
        gas = self.setup.price_of_gas(costs.rebalance_gas(len(trades))) if result.accepted else 0
        return Executed(result.rejections, result.moved, gas, result.slippage)

    def advance(self, day: pd.Timestamp, pnl: dict[str, float]) -> None:
        pools = self.realised.pools
        factors = self.realised.on(day, [self._state.position(pool) for pool in pools])
        unit = self.setup.settings.unit
        positions = {}
        for index, pool in enumerate(pools):
            held = factors.hold(index, self._state.position(pool))
            held.add_pnl(pnl, unit)
            positions[pool] = int(held.after)
        withdrawable = {pools[index]: amount
                        for index, amount in factors.withdrawable([positions[pool] for pool in pools], unit).items()}
        self._state = replace(self._state, positions=positions, withdrawable=withdrawable)

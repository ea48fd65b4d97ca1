"""The daily replay of one strategy on a vault: simulated in memory (fast mode, `backtest.fastvault`) or the
real contracts on anvil (chain mode, `backtest.chainmode`), both behind `BacktestVault`.

Each day of the window, in order: on a rebalance day (every `rebalance_every` days from the first) the
forecaster sees the market as known that day (`MarketData.until(day)`), `strategy.allocator.allocate` turns
its forecasts into targets on the vault's state and the vault executes them under its guardrails;
gas is paid for an accepted call that moves something. The day's value is then recorded, and the positions
earn the next day's realised yield and suffer its losses (`backtest.realised`). No decision on the last day.

A listed pool with no data on a decision day nor the day before (its feed stopped, or has not started yet) is
unknown: every strategy's forecast for it is replaced by `strategy.allocator.UNKNOWN_MARKET`, so the vault
leaves it as fast as the guardrails allow instead of holding a dead position at an assumed rate. A strategy
that gives no forecast for a pool with data leaves it where it is (the ML strategy while it warms up: in cash
at the start).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple, Protocol, cast

import pandas as pd

from backtest.market import Investable, MarketData
from backtest.realised import PNL_EFFECTS
from config import BacktestSettings
from strategy.allocator import (
    AllocationStatus,
    AllocatorConfig,
    MarketForecast,
    allocate,
)
from strategy.costs import ExecutionCosts
from strategy.data.daily import DailyPanel
from strategy.data.schema import POOL, TIMESTAMP
from strategy.decision import Planner, VerdictKind, decide, forecasts_for_markets
from strategy.guardrails import Guardrails, VaultState
from strategy.market_supply import MarketDepth, depths, rate_elasticity, supply_in_asset
from strategy.targets import TargetParams

# A pool whose last row is older than this is unknown. One missing day is a feed's gap (the real Compound v3
# chart skips 2024-02-05), not an ended market: the keeper's data gate likewise accepts a point 36 h old. A
# pool without today's row but with yesterday's gets no forecast that day, so it is held.
UNKNOWN_AFTER = pd.Timedelta(days=1)




class Forecaster(Protocol):
    """A strategy: per-pool forecasts from what is known at `now`. `leaky` marks one that reads the future.

    A strategy may also have a `plan` (a `Planner`) that sets the targets itself; otherwise
    `strategy.allocator.allocate` does.
    """

    name: str
    leaky: bool

    def forecast(self, view: MarketData, now: pd.Timestamp) -> Mapping[str, MarketForecast]: ...


class Executed(NamedTuple):
    """What a vault made of one rebalance call (amounts in base units)."""

    rejections: list[str]  # revert reasons, empty when accepted
    moved: int  # Σ |position after - position before| over the traded markets
    gas: int  # paid for the call (0 when rejected: the keeper simulates before sending)
    slippage: int  # lost in execution


class BacktestVault(Protocol):
    """Where a replay's money is: positions keyed by pool id, moved by rebalances, carried from day to day."""

    def state(self) -> VaultState: ...

    def clock(self, day: pd.Timestamp) -> int:
        """The vault's time on `day` (Unix seconds; a chain's own clock in chain mode), as cooldowns see it."""
        ...

    def rebalance(self, trades: Mapping[str, int], day: pd.Timestamp) -> Executed:
        """Send the allocator's trades on decision day `day`."""
        ...

    def advance(self, day: pd.Timestamp, pnl: dict[str, float]) -> None:
        """Hold the positions into `day` (its realised yield and losses); add each effect to `pnl` (asset units)."""
        ...


@dataclass(frozen=True)
class Setup:
    """Everything a replay needs besides the strategy; shared by every strategy of a run."""

    market: MarketData
    days: pd.DatetimeIndex
    guardrails: Guardrails  # markets keyed by pool id: the universe
    allocator: AllocatorConfig
    costs: ExecutionCosts  # what the vault is charged: gas at `settings.gas_price_gwei`, slippage
    targets: TargetParams
    settings: BacktestSettings
    capital: int  # asset base units
    rebalance_every: int  # days
    investable: Investable | None = None  # the pools the vault's asset allows (None: not recorded)

    def price_of_gas(self, gas: int) -> int:
        """`gas` at the simulated gas price, in asset base units."""
        return self.costs.price_of_gas(gas, self.settings.gas_price_wei, self.settings.asset_decimals)

    @property
    def pools(self) -> list[str]:
        return list(self.guardrails.markets)

    def is_decision_day(self, index: int) -> bool:
        return index % self.rebalance_every == 0 and index < len(self.days) - 1

    @cached_property
    def market_depth(self) -> tuple[pd.DataFrame, pd.DataFrame] | None:
        """Each pool's supply besides the vault (base units) and its rate curve's elasticity, days × pools: what
        the vault's own deposit dilutes, in the replay's yields and its decisions alike
        (`strategy.market_supply`); None with `[backtest] supply_dilution` off."""
        if not self.settings.supply_dilution:
            return None
        panel = DailyPanel(self.market.history)
        supply = supply_in_asset(panel, self.market.pools, self.settings.asset_symbol, self.settings.unit)
        return supply.reindex(columns=self.pools), rate_elasticity(panel).reindex(columns=self.pools, fill_value=1.0)

    def depth_on(self, day: pd.Timestamp) -> dict[str, MarketDepth] | None:
        """The depths the allocator is told on decision day `day` (known by then: both read days up to it)."""
        if self.market_depth is None:
            return None
        supply, elasticity = self.market_depth
        if day not in supply.index:
            return {}
        return depths(cast(pd.Series, supply.loc[day]), cast(pd.Series, elasticity.loc[day]))  # one day: a row


@dataclass(frozen=True)
class DayDecision:
    """One rebalance decision: the allocator's targets for every listed pool and what the vault made of them."""

    day: pd.Timestamp
    targets: dict[str, int]
    status: AllocationStatus
    traded: bool  # the allocator asked for a change
    rejections: list[str]  # guardrail revert reasons of a rejected change
    moved: int  # base units
    gas: int  # base units
    slippage: int  # base units

    @property
    def accepted(self) -> bool:
        return self.traded and not self.rejections


@dataclass
class StrategyRun:
    """One strategy's replay; amounts in asset units (not base units) except in `decisions`."""

    name: str
    leaky: bool
    unit: int  # base units per asset unit
    values: pd.DataFrame  # per day: total (vault assets), idle, gas (cumulative), net = total - gas
    positions: pd.DataFrame  # per day × pool, asset units
    decisions: list[DayDecision]
    forecasts: pd.DataFrame  # timestamp, pool, apy_pct, p_event for each decision and listed pool
    pnl: dict[str, float] = field(default_factory=dict)  # PNL_EFFECTS, slippage, gas (asset units)


def replay(setup: Setup, forecaster: Forecaster, on_day: Callable[[], None] | None = None,
           vault: BacktestVault | None = None) -> StrategyRun:
    """Run `forecaster` through the window of `setup` on `vault` (a fresh `FastVault` by default)."""
    from backtest.fastvault import FastVault

    pools, unit = setup.pools, setup.settings.unit
    vault = vault if vault is not None else FastVault(setup)
    plan = planner_of(forecaster)
    gas_paid = 0
    pnl = dict.fromkeys((*PNL_EFFECTS, "slippage"), 0.0)
    decisions: list[DayDecision] = []
    forecast_rows: list[tuple[pd.Timestamp, str, float, float]] = []
    value_rows, position_rows = [], []
    for index, day in enumerate(setup.days):
        if setup.is_decision_day(index):
            forecasts, decision = decide_day(setup, forecaster, vault, day, plan)
            forecast_rows += [(day, pool, f.apy_pct, f.p_event) for pool, f in forecasts.items()]
            decisions.append(decision)
            gas_paid += decision.gas
            pnl["slippage"] -= decision.slippage / unit
        state = vault.state()
        value_rows.append((state.total / unit, state.idle / unit, gas_paid / unit, (state.total - gas_paid) / unit))
        position_rows.append([state.position(pool) / unit for pool in pools])
        if index + 1 < len(setup.days):
            vault.advance(setup.days[index + 1], pnl)
        if on_day is not None:
            on_day()
    pnl["gas"] = -gas_paid / unit
    return StrategyRun(
        name=forecaster.name,
        leaky=forecaster.leaky,
        unit=unit,
        values=pd.DataFrame(value_rows, index=setup.days, columns=["total", "idle", "gas", "net"]),
        positions=pd.DataFrame(position_rows, index=setup.days, columns=pools),
        decisions=decisions,
        forecasts=pd.DataFrame(forecast_rows, columns=[TIMESTAMP, POOL, "apy_pct", "p_event"]),
        pnl=pnl,
    )


def planner_of(forecaster: Forecaster) -> Planner:
    """How the strategy turns forecasts into targets: the allocator, unless it brings its own `plan`."""
    return getattr(forecaster, "plan", allocate)


def decide_day(setup: Setup, forecaster: Forecaster, vault: BacktestVault, day: pd.Timestamp,
               plan: Planner | None = None) -> tuple[dict[str, MarketForecast], DayDecision]:
    """One decision day of the replay: the strategy's forecasts for the listed pools and what became of them,
    the step a keeper cycle takes on the same inputs (`strategy.decision.decide`)."""
    forecasts = _listed_forecasts(setup, forecaster, day)
    return forecasts, _decide(setup, vault, plan or planner_of(forecaster), forecasts, day)


def _listed_forecasts(setup: Setup, forecaster: Forecaster, day: pd.Timestamp) -> dict[str, MarketForecast]:
    """The strategy's forecasts for the listed pools under `strategy.decision`'s missing-forecast policy; a pool
    without data today is stale whatever the strategy said (a forecaster that remembers a pool, as `hold` does,
    must not keep money in it)."""
    view = setup.market.until(day)
    forecasts = forecaster.forecast(view, day)
    recent = (view.history[TIMESTAMP] >= day - UNKNOWN_AFTER).to_numpy()
    with_data = set(view.history[POOL].array[recent])  # one column cut, not whole rows: asked every day
    return forecasts_for_markets(setup.pools, forecasts, stale=[pool for pool in setup.pools if pool not in with_data],
                                 depth=setup.depth_on(day))


def _decide(setup: Setup, vault: BacktestVault, plan: Planner, forecasts: dict[str, MarketForecast],
            day: pd.Timestamp) -> DayDecision:
    """`strategy.decision.decide` on the vault's state, as the keeper decides; only a `send` reaches the vault."""
    verdict = decide(vault.state(), setup.guardrails, forecasts, setup.allocator, vault.clock(day), plan)
    allocation = verdict.allocation
    if verdict.kind == VerdictKind.HOLD:
        return DayDecision(day, allocation.targets, allocation.status, False, [], 0, 0, 0)
    if verdict.kind != VerdictKind.SEND:  # the keeper would not send it: no gas, nothing moves
        return DayDecision(day, allocation.targets, allocation.status, True,
                        [str(violation.reason) for violation in verdict.violations], 0, 0, 0)
    done = vault.rebalance(allocation.trades, day)
    return DayDecision(day, allocation.targets, allocation.status, True, done.rejections, done.moved, done.gas,
                    done.slippage)

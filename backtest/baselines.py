"""Baseline strategies as forecasters: each turns the point-in-time view into per-pool forecasts, which go
through the same allocator and guardrails as the model's.

- `equal`: equal weights: every pool with data today gets the same share of what may be invested (within its
  cap), moved towards at the turnover limit's pace and only when the drift exceeds `EQUAL_WEIGHT_BAND` or
  money sits in a pool without data today (which it leaves); it brings its own `plan` instead of the
  allocator, which with tied values would pick pools arbitrarily;
- `trailing-best`: each pool's mean APY over the trailing 7 days (chases what paid best lately): the rule of
  `strategy.trailing_best`, which also decides for the ML strategy when its model is not trusted;
- `hold`: fixed preferences chosen once at the first decision, by TVL (the biggest pool first), never revised;
- `perfect-foresight`: the realised forward mean APY, adverse-event flag and worst price fall of
  `strategy.targets`, read from the full data: a reference for what knowing the future is worth (an upper
  bound on forecasting, though not on the result: price moves, haircuts and the horizon are not in it),
  deliberately leaky (the look-ahead check must flag it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction

import pandas as pd

from backtest.market import MarketData
from strategy.allocator import (
    Allocation,
    AllocationStatus,
    AllocatorConfig,
    MarketForecast,
    mined_idle_floor,
    move_limit,
    position_caps,
    withdrawal_room,
)
from strategy.data.schema import POOL, TIMESTAMP
from strategy.guardrails import Guardrails, VaultState
from strategy.targets import FWD_APY_MEAN, WORST_FALL, TargetParams, build_targets

EQUAL_WEIGHT_BAND = Fraction(1, 100)  # of total assets: smaller drifts from equal weights are left alone


def rows_at(view: MarketData, now: pd.Timestamp) -> pd.DataFrame:
    """The history rows of day `now`, indexed by pool."""
    history = view.history
    return history[history[TIMESTAMP] == now].set_index(POOL)


class EqualForecaster:
    """The same forecast for every pool with data today."""

    name = "equal"
    leaky = False

    def __init__(self) -> None:
        self._with_data: set[str] = set()  # the pools of the last forecast, which `plan` weighs

    def forecast(self, view: MarketData, now: pd.Timestamp) -> dict[str, MarketForecast]:
        today = rows_at(view, now)
        self._with_data = set(today.index)
        if today.empty:
            return {}
        median = float(today["apy"].median())
        return {pool: MarketForecast(apy_pct=median, p_event=0.0) for pool in today.index}

    def plan(self, state: VaultState, guardrails: Guardrails, forecasts: Mapping[str, MarketForecast],
             config: AllocatorConfig) -> Allocation:
        """Targets moving towards equal weights over the pools this forecaster saw data for (module docstring)."""
        markets = list(guardrails.markets)
        current = {market: state.position(market) for market in markets}
        alive = [market for market in markets if market in forecasts and market in self._with_data]
        # Money in a pool without data today is left whatever the band: such a pool is unknown (backtest.engine).
        stranded = any(current[market] > 0 for market in markets if market not in alive)
        total = state.total
        if state.paused or total == 0 or not (alive or stranded):
            return Allocation(current, {}, 0.0, AllocationStatus.EMPTY, None, "nothing to weigh")
        caps = position_caps(total, guardrails, markets, config)
        share = (total - mined_idle_floor(state, guardrails)) // len(alive) if alive else 0
        goal = {market: min(share, caps[market]) if market in alive else 0 for market in markets}
        # No lower than a market short of cash can pay back now: what is stuck stays.
        goal = {market: max(goal[market], current[market] - withdrawal_room(state, market)) for market in markets}
        drift = sum(abs(goal[market] - current[market]) for market in markets)
        if drift <= EQUAL_WEIGHT_BAND * total and not stranded:
            return Allocation(current, {}, 0.0, AllocationStatus.OPTIMAL, None, "within the band")
        # One step of at most the turnover limit: a convex combination of today and the goal keeps caps and
        # the idle floor; withdrawals round up and the step keeps one unit per market for that.
        room = move_limit(total, guardrails, config, total - state.idle) - len(markets)
        step = min(Fraction(1), Fraction(max(0, room), drift))
        targets = _within_idle(state, guardrails, {market: current[market] + _towards(goal[market] - current[market],
                                                                                   step) for market in markets})
        trades = {market: target for market, target in targets.items() if target != current[market]}
        return Allocation(targets, trades, 0.0, AllocationStatus.OPTIMAL, None, "equal weight")


def _within_idle(state: VaultState, guardrails: Guardrails, targets: dict[str, int]) -> dict[str, int]:
    """`targets` with the supplies scaled down (rounded down) to what the withdrawals and idle above its floor
    hold: with a market's withdrawal bounded by its cash, the weights' supplies may ask for more."""
    withdrawn = sum(max(0, state.position(m) - target) for m, target in targets.items())
    supplied = {m: target - state.position(m) for m, target in targets.items() if target > state.position(m)}
    room = max(withdrawn, state.idle + withdrawn - mined_idle_floor(state, guardrails))
    if sum(supplied.values()) <= room:
        return targets
    scale = Fraction(room, sum(supplied.values()))
    return {m: state.position(m) + int(supplied[m] * scale) if m in supplied else target
            for m, target in targets.items()}


def _towards(delta: int, step: Fraction) -> int:
    """`step` of a move: supplies rounded down, withdrawals rounded up (idle never ends below the plan)."""
    moved = step * abs(delta)
    return int(moved) if delta > 0 else -math.ceil(moved)


class TrailingBestForecaster:
    """Each pool's mean APY over the last `strategy.trailing_best.TRAILING_DAYS` days up to today."""

    name = "trailing-best"
    leaky = False

    def forecast(self, view: MarketData, now: pd.Timestamp) -> dict[str, MarketForecast]:
        return view.trailing_best_on(now)


class HoldForecaster:
    """Preferences fixed at the first decision: the pools ranked by TVL, the biggest valued most."""

    name = "hold"
    leaky = False

    def __init__(self) -> None:
        self._fixed: dict[str, MarketForecast] | None = None

    def forecast(self, view: MarketData, now: pd.Timestamp) -> dict[str, MarketForecast]:
        if self._fixed is None:
            today = rows_at(view, now)
            if today.empty:
                return {}
            # Positive values ordered by TVL: the allocator fills the biggest pool to its cap first, then the next.
            median, biggest = float(today["apy"].median()), float(today["tvl_usd"].max())
            scale = max(median, 1.0) / biggest if biggest > 0 else 0.0
            self._fixed = {
                str(pool): MarketForecast(apy_pct=float(tvl) * scale, p_event=0.0)
                for pool, tvl in today["tvl_usd"].items()
            }
        return self._fixed


class PerfectForesightForecaster:
    """The realised future over the horizon, from the full data: `strategy.targets`' forward mean APY,
    adverse-event flag and worst price fall (what the event costs). Price moves of stablecoin pools are not in
    its yield, so it is a reference, not a strict bound."""

    name = "perfect-foresight"
    leaky = True

    def __init__(self, market: MarketData, params: TargetParams):
        self._targets = build_targets(market.history, market.pools, params, market.news).dropna(subset=[FWD_APY_MEAN])
        self._days = set(self._targets.index.get_level_values(TIMESTAMP))

    def forecast(self, view: MarketData, now: pd.Timestamp) -> dict[str, MarketForecast]:
        if now not in self._days:
            return {}
        today = self._targets.xs(now, level=TIMESTAMP)
        return {  # it foresees what an event will cost too: the worst price fall ahead (unknown: `loss_given`)
            str(pool): MarketForecast(apy_pct=float(apy), p_event=float(event),
                                      loss_given_event=None if math.isnan(fall) else min(1.0, float(fall)))
            for pool, apy, event, fall in zip(today.index, today[FWD_APY_MEAN], today["adverse_event"],
                                              today[WORST_FALL], strict=True)
        }

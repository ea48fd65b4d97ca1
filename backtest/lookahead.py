"""The look-ahead check: a decision must not change when the data after it is removed.

Each strategy is replayed on the full data, then again with the data cut off at several days (market rows
and news after the cut removed, window ending the day after the cut so the cut day still decides). Every
decision of a cut run, up to and including the cut day, must equal the full run's on the same day: the
same forecast for every listed pool, the same targets and the same outcome at the vault. A difference means
the strategy (or the replay) used data from after the decision.

The forecasts are compared, not only what the allocator made of them: among a vault's stablecoin lending
pools the allocator holds on most days whatever it is told (a move must pay for its gas and slippage), so
perfect foresight, which has no forecast on the last horizon of days before a cut (they need the days after
it), left every target as it was and a check of the targets alone never failed; its forecasts on those days
always differ.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import pandas as pd

from backtest.engine import DayDecision, Forecaster, Setup, StrategyRun, replay
from backtest.errors import BacktestError, UsageError
from strategy.data.schema import POOL, TIMESTAMP


@dataclass(frozen=True)
class Mismatch:
    """A decision that differs between the full run and a run with the data cut at `cut`."""

    strategy: str
    cut: pd.Timestamp
    day: pd.Timestamp
    pools: list[str]  # pools whose target differs
    full: DayDecision
    truncated: DayDecision
    forecasts: list[str] = field(default_factory=list)  # pools whose forecast differs (or is missing in one run)

    def describe(self) -> str:
        changed = "; ".join(f"{name} of {', '.join(p[:12] for p in pools)}"
                            for name, pools in (("forecasts", self.forecasts), ("targets", self.pools)) if pools)
        changed = changed or "the vault's outcome"
        return (f"{self.strategy}: decision on {self.day.date()} changes when the data ends {self.cut.date()} "
                f"({changed})")


@dataclass
class LookaheadReport:
    cuts: list[pd.Timestamp]
    compared: dict[str, int] = field(default_factory=dict)  # decisions compared per strategy
    leaky: dict[str, bool] = field(default_factory=dict)  # strategies that read the future by design
    mismatches: list[Mismatch] = field(default_factory=list)

    def unexpected(self) -> list[Mismatch]:
        """Mismatches of strategies that claim to be point-in-time."""
        return [m for m in self.mismatches if not self.leaky[m.strategy]]


def cut_points(days: pd.DatetimeIndex, count: int) -> list[pd.Timestamp]:
    """`count` distinct days spread evenly inside the window (neither the first nor the last day)."""
    if count < 1:
        raise UsageError(f"`cuts` must be at least 1, got {count}", "cuts")
    if len(days) < 3:
        raise BacktestError("the look-ahead check needs a window of at least 3 days")
    if count >= len(days) - 2:  # as many cuts as inner days, or more: every inner day, without counting to count
        return list(days[1:-1])
    positions = sorted({min(len(days) - 2, max(1, round(len(days) * k / (count + 1)))) for k in range(1, count + 1)})
    return [days[i] for i in positions]


def check_lookahead(
    setup: Setup,
    factories: Mapping[str, Callable[[Setup], Forecaster]],
    cuts: list[pd.Timestamp],
    on_replay: Callable[[str, pd.Timestamp | None], None] | None = None,
) -> LookaheadReport:
    """Compare each strategy's full replay with its replays on data cut at `cuts`.

    `factories` make a fresh forecaster from the setup it will run on (a cut setup for a cut run);
    `on_replay(strategy, cut)` is called after each replay (cut None for the full one).
    """
    report = LookaheadReport(cuts)
    for name, factory in factories.items():
        forecaster = factory(setup)
        full = _decided(replay(setup, forecaster))
        report.leaky[name] = forecaster.leaky
        report.compared[name] = 0
        if on_replay is not None:
            on_replay(name, None)
        for cut in cuts:
            truncated = cut_setup(setup, cut)
            for day, decided in _decided(replay(truncated, factory(truncated))).items():
                report.compared[name] += 1
                mismatch = _compare(name, cut, full[day], decided)
                if mismatch is not None:
                    report.mismatches.append(mismatch)
            if on_replay is not None:
                on_replay(name, cut)
    return report


def cut_setup(setup: Setup, cut: pd.Timestamp) -> Setup:
    """`setup` with the data known at `cut` only, its window ending the day after `cut`."""
    return replace(setup, market=setup.market.until(cut), days=setup.days[setup.days <= cut + pd.Timedelta(days=1)])


Forecasts = dict[str, tuple[float, float]]  # pool -> (apy_pct, p_event) of one decision day
# Forecasts closer than this (relative) are the same: a forward mean computed over longer data may differ in its
# last bits (the rolling sum runs from the data's end). A point-in-time strategy's never differ at all.
_FORECAST_RTOL = 1e-9


def _decided(run: StrategyRun) -> dict[pd.Timestamp, tuple[DayDecision, Forecasts]]:
    """Each decision day's decision and the forecasts it was made on."""
    forecasts: dict[pd.Timestamp, Forecasts] = {}
    for day, pool, apy, p_event in run.forecasts[[TIMESTAMP, POOL, "apy_pct", "p_event"]].itertuples(index=False):
        forecasts.setdefault(day, {})[pool] = (apy, p_event)
    return {decision.day: (decision, forecasts.get(decision.day, {})) for decision in run.decisions}


def _compare(name: str, cut: pd.Timestamp, full: tuple[DayDecision, Forecasts],
             truncated: tuple[DayDecision, Forecasts]) -> Mismatch | None:
    (decision, forecasts), (cut_decision, cut_forecasts) = full, truncated
    pools = sorted(p for p in decision.targets.keys() | cut_decision.targets.keys()
                   if decision.targets.get(p) != cut_decision.targets.get(p))
    forecast_pools = sorted(p for p in forecasts.keys() | cut_forecasts.keys()
                            if not _same(forecasts.get(p), cut_forecasts.get(p)))
    if pools or forecast_pools or (decision.traded, decision.rejections) != (cut_decision.traded,
                                                                            cut_decision.rejections):
        return Mismatch(name, cut, decision.day, pools, decision, cut_decision, forecast_pools)
    return None


def _same(forecast: tuple[float, float] | None, other: tuple[float, float] | None) -> bool:
    if forecast is None or other is None:
        return forecast is other
    return all(math.isclose(a, b, rel_tol=_FORECAST_RTOL) for a, b in zip(forecast, other, strict=True))

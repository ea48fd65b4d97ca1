"""The look-ahead check: a decision must not change when the data after it is removed.

Each strategy is replayed on the full data, then again with the data cut off at several days (market rows
and news after the cut removed, window ending the day after the cut so the cut day still decides). Every
decision of a cut run, up to and including the cut day, must equal the full run's on the same day: the
same targets for every listed pool and the same outcome at the vault. A difference means the strategy
(or the replay) used data from after the decision.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import pandas as pd

from backtest.engine import DayDecision, Forecaster, Setup, replay
from backtest.errors import BacktestError, UsageError


@dataclass(frozen=True)
class Mismatch:
    """A decision that differs between the full run and a run with the data cut at `cut`."""

    strategy: str
    cut: pd.Timestamp
    day: pd.Timestamp
    pools: list[str]  # pools whose target differs (empty when only the vault's outcome does)
    full: DayDecision
    truncated: DayDecision

    def describe(self) -> str:
        what = f"targets of {', '.join(p[:12] for p in self.pools)}" if self.pools else "the vault's outcome"
        return f"{self.strategy}: decision on {self.day.date()} changes when the data ends {self.cut.date()} ({what})"


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
        full = {decision.day: decision for decision in replay(setup, forecaster).decisions}
        report.leaky[name] = forecaster.leaky
        report.compared[name] = 0
        if on_replay is not None:
            on_replay(name, None)
        for cut in cuts:
            truncated = cut_setup(setup, cut)
            for decision in replay(truncated, factory(truncated)).decisions:
                report.compared[name] += 1
                mismatch = _compare(name, cut, full[decision.day], decision)
                if mismatch is not None:
                    report.mismatches.append(mismatch)
            if on_replay is not None:
                on_replay(name, cut)
    return report


def cut_setup(setup: Setup, cut: pd.Timestamp) -> Setup:
    """`setup` with the data known at `cut` only, its window ending the day after `cut`."""
    return replace(setup, market=setup.market.until(cut), days=setup.days[setup.days <= cut + pd.Timedelta(days=1)])


def _compare(name: str, cut: pd.Timestamp, full: DayDecision, truncated: DayDecision) -> Mismatch | None:
    pools = sorted(p for p in full.targets.keys() | truncated.targets.keys()
                   if full.targets.get(p) != truncated.targets.get(p))
    if pools or (full.traded, full.rejections) != (truncated.traded, truncated.rejections):
        return Mismatch(name, cut, full.day, pools, full, truncated)
    return None

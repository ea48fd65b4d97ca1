"""The look-ahead check finds nothing for point-in-time strategies and does find a strategy that peeks."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest

from backtest.baselines import (
    EqualForecaster,
    HoldForecaster,
    PerfectForesightForecaster,
    TrailingBestForecaster,
)
from backtest.engine import Setup
from backtest.errors import UsageError
from backtest.lookahead import check_lookahead, cut_points
from backtest.market import MarketData
from strategy.allocator import MarketForecast
from strategy.data.schema import POOL, TIMESTAMP
from tests.backtest.conftest import START

END = START + pd.Timedelta(days=40)


class LatestApy:
    """A typical leak: ranks pools by the newest APY in the data it was given, not by the APY known at `now`."""

    name, leaky = "latest-apy", False

    def __init__(self, setup: Setup):
        history = setup.market.history
        self.latest = history[history[TIMESTAMP] == history[TIMESTAMP].max()].set_index(POOL)["apy"]

    def forecast(self, view: MarketData, now: pd.Timestamp) -> dict[str, MarketForecast]:
        return {str(pool): MarketForecast(apy_pct=float(apy), p_event=0.0) for pool, apy in self.latest.items()}


@pytest.mark.parametrize("every", [1, 7])
def test_point_in_time_baselines_pass(market: MarketData, setup_of: Callable[..., Setup], every: int) -> None:
    setup = setup_of(market, START, END, rebalance_every=every)
    factories = {"equal": lambda s: EqualForecaster(), "trailing-best": lambda s: TrailingBestForecaster(),
                 "hold": lambda s: HoldForecaster()}
    report = check_lookahead(setup, factories, cut_points(setup.days, 2))
    assert report.mismatches == []
    # Each cut run decides on every day up to and including its cut.
    expected = sum(sum(1 for i, day in enumerate(setup.days) if day <= cut and setup.is_decision_day(i))
                   for cut in report.cuts)
    assert all(count == expected for count in report.compared.values())


def test_a_strategy_that_reads_later_data_is_caught(market: MarketData, setup_of: Callable[..., Setup]) -> None:
    setup = setup_of(market, START, END)
    cuts = cut_points(setup.days, 2)
    report = check_lookahead(setup, {"latest-apy": LatestApy}, cuts)
    assert report.mismatches and report.unexpected() == report.mismatches
    assert {m.cut for m in report.mismatches} == set(cuts)  # every cut changes some decision before it
    assert all(m.pools for m in report.mismatches)
    assert "latest-apy: decision on" in report.mismatches[0].describe()


@pytest.mark.parametrize("every", [1, 7])
def test_perfect_foresight_trips_the_check_but_is_expected(market: MarketData, setup_of: Callable[..., Setup],
                                                           every: int) -> None:
    # The vault's own universe: stablecoin lending pools, whose yields are close enough that the allocator often
    # holds whatever it is told; what the future told it still shows in the forecasts it decided on.
    setup = setup_of(market, START, END, rebalance_every=every)
    cuts = cut_points(setup.days, 3)
    factory = lambda s: PerfectForesightForecaster(s.market, s.targets)  # noqa: E731
    report = check_lookahead(setup, {"perfect-foresight": factory}, cuts)
    assert report.leaky["perfect-foresight"] and report.unexpected() == []
    assert {m.cut for m in report.mismatches} == set(cuts)  # every cut changes a decision before it
    assert all(m.day <= m.cut and m.forecasts for m in report.mismatches)
    assert "forecasts of" in report.mismatches[0].describe()


def test_cut_points_are_distinct_days_inside_the_window(setup_of: Callable[..., Setup], market: MarketData) -> None:
    days = setup_of(market, START, END).days
    cuts = cut_points(days, 3)
    assert len(set(cuts)) == 3 and days[0] < min(cuts) and max(cuts) < days[-1]
    assert len(cut_points(days[:4], 5)) == 2  # a short window has fewer inner days than asked for
    assert cut_points(days, 10**20) == list(days[1:-1])  # every inner day, at once (it counted to 10**20)
    assert cut_points(days, len(days) - 2) == list(days[1:-1])
    with pytest.raises(UsageError, match="`cuts` must be at least 1"):
        cut_points(days, 0)

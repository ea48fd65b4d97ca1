"""Baseline forecasters: what each forecasts from a hand-made history."""

from __future__ import annotations

import pandas as pd
import pytest

from backtest.baselines import EqualForecaster, HoldForecaster, PerfectForesightForecaster, TrailingBestForecaster
from backtest.market import MarketData
from strategy.targets import TargetParams
from tests.backtest.conftest import history_frame

DAY0 = pd.Timestamp("2024-01-01", tz="UTC")
ROWS = {
    "rising": [(float(apy), 1e6, 1.0) for apy in range(1, 11)],  # APY 1 .. 10
    "steady": [(6.0, 5e6, 1.0)] * 10,
    "gone": [(20.0, 9e6, 1.0)] * 5 + [None] * 5,
}
MARKET = MarketData(history_frame(ROWS), None, None, "rows")


def at(day: int) -> tuple[MarketData, pd.Timestamp]:
    now = DAY0 + pd.Timedelta(days=day)
    return MARKET.until(now), now


def test_equal_forecasts_todays_median_for_every_pool_with_data() -> None:
    forecasts = EqualForecaster().forecast(*at(7))
    assert {p: f.apy_pct for p, f in forecasts.items()} == {"rising": 7.0, "steady": 7.0}  # median of 8 and 6


def test_trailing_best_is_the_mean_of_the_last_seven_days() -> None:
    forecasts = TrailingBestForecaster().forecast(*at(9))
    assert forecasts["rising"].apy_pct == pytest.approx(sum(range(4, 11)) / 7)
    assert forecasts["steady"].apy_pct == 6.0
    assert "gone" not in forecasts  # no data today


def test_hold_ranks_by_tvl_once_and_never_revises() -> None:
    hold = HoldForecaster()
    first = hold.forecast(*at(0))
    assert sorted(first, key=lambda p: first[p].apy_pct, reverse=True) == ["gone", "steady", "rising"]
    assert hold.forecast(*at(8)) == first


def test_perfect_foresight_reads_the_realised_forward_mean() -> None:
    oracle = PerfectForesightForecaster(MARKET, TargetParams(horizon_days=3))
    forecasts = oracle.forecast(*at(2))
    assert forecasts["rising"].apy_pct == pytest.approx((4 + 5 + 6) / 3)  # days 3, 4, 5
    assert forecasts["rising"].p_event == 0.0
    assert "gone" not in forecasts  # its horizon is incomplete
    assert oracle.forecast(*at(8)) == {}  # the horizon reaches past the data

"""Realised yield, peg moves and TVL runs from the market data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backtest.market import MarketData
from backtest.realised import RealisedMarket
from strategy.targets import TargetParams
from tests.backtest.conftest import history_frame, meta_frame

DAY = pd.Timedelta(days=1)


def realised(rows: dict, stable: dict[str, bool] | None = None) -> RealisedMarket:
    market = MarketData(history_frame(rows), None, meta_frame(stable) if stable else None, "test")
    return RealisedMarket(market, list(rows), TargetParams(horizon_days=3, tvl_run_fraction=0.3))


def test_yield_compounds_daily_at_the_apy_of_the_day_arriving() -> None:
    market = realised({"a": [(10.0, 1e6, 1.0), (36.5, 1e6, 1.0), None, (5.0, 1e6, 1.0)]})
    day0 = pd.Timestamp("2024-01-01", tz="UTC")
    assert market.on(day0 + DAY).growth[0] == pytest.approx(1.365 ** (1 / 365))
    assert market.on(day0 + 2 * DAY).growth[0] == 1.0  # no row: nothing earned
    assert market.on(day0 + 3 * DAY).growth[0] == pytest.approx(1.05 ** (1 / 365))
    assert market.on(day0 + 30 * DAY).growth[0] == 1.0  # after the data: neutral


def test_peg_moves_apply_to_stablecoin_pools_only() -> None:
    path = [(5.0, 1e6, 1.0), (5.0, 1e6, 0.9), (5.0, 1e6, 0.99)]
    market = realised({"stable": path, "volatile": path}, stable={"stable": True, "volatile": False})
    day1 = pd.Timestamp("2024-01-02", tz="UTC")
    np.testing.assert_allclose(market.on(day1).peg, [0.9, 1.0])
    np.testing.assert_allclose(market.on(day1 + DAY).peg, [0.99 / 0.9, 1.0])


def test_tvl_run_fires_once_on_the_first_day_below_the_threshold() -> None:
    # TVL 100 for three days, then 75 (a 25 % fall: no run), 65 (35 % below the 3-day peak: run), 60, 60.
    tvls = [100, 100, 100, 75, 65, 60, 60]
    market = realised({"a": [(5.0, float(tvl), 1.0) for tvl in tvls]})
    days = pd.date_range("2024-01-01", periods=len(tvls), freq="D", tz="UTC")
    assert [bool(market.on(day).run[0]) for day in days] == [False, False, False, False, True, False, False]

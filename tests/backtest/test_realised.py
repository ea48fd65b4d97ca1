"""Realised yield, peg moves and incident losses from the market data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backtest.market import MarketData
from backtest.realised import PNL_EFFECTS, RealisedMarket
from strategy.data.daily import DailyPanel
from strategy.market_supply import supply_in_asset
from tests.backtest.conftest import history_frame, meta_frame

DAY = pd.Timedelta(days=1)


def realised(rows: dict, stable: dict[str, bool] | None = None, news: pd.DataFrame | None = None) -> RealisedMarket:
    market = MarketData(history_frame(rows), news, meta_frame(stable) if stable else None, "test")
    return RealisedMarket(market, list(rows))


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


def test_moves_of_available_liquidity_cost_nothing() -> None:
    """A lending market's TVL is what is not lent out: it swings with borrowing, nobody loses by it."""
    tvls = [100, 100, 100, 75, 30, 5, 60]
    market = realised({"a": [(5.0, float(tvl), 1.0) for tvl in tvls]})
    days = pd.date_range("2024-01-01", periods=len(tvls), freq="D", tz="UTC")
    assert [float(market.on(day).loss[0]) for day in days] == [0.0] * len(tvls)


def test_an_incident_costs_its_reported_loss_pro_rata() -> None:
    news = pd.DataFrame({
        "timestamp": pd.to_datetime(["2024-01-02T10:00:00Z", "2024-01-03T10:00:00Z"]),
        "title": ["Test Lend - Flashloan attack (lost $2M)", "Test Lend - Logic flaw (lost 21 ETH)"],
        "source": "incidents", "url": ["https://a", "https://b"], "summary": ["", "DeFi incident (Test Lend)."],
    })
    path = [(5.0, 8e6, 1.0)] * 4  # 8 M available; utilization unknown, so 8 M supplied
    market = realised({"a": path, "b": path}, stable={"a": True, "b": True}, news=news)
    day = pd.Timestamp("2024-01-03", tz="UTC")  # the first midnight after the report
    np.testing.assert_allclose(market.on(day).loss, [2e6 / 16e6, 2e6 / 16e6])
    assert market.on(day + DAY).loss.tolist() == [0.0, 0.0]  # an amount in ETH is not priced here
    assert market.unpriced_incidents == 1
    held = market.on(day).hold(0, 1_000_000)
    assert held.after == pytest.approx(1_000_000 * held.earned / 1_000_000 * (1 - 0.125))


def test_a_pool_of_the_vaults_own_asset_is_not_marked_to_its_price() -> None:
    """A USDC depeg moves a USDC vault's idle and its USDC positions alike: no loss in the vault's unit."""
    path = [(5.0, 1e6, 1.0), (5.0, 1e6, 0.97), (5.0, 1e6, 1.0)]
    market = MarketData(history_frame({"a": path}), None, meta_frame({"a": True}), "test")  # a ZUSD pool
    day1 = pd.Timestamp("2024-01-02", tz="UTC")
    assert RealisedMarket(market, ["a"], "zusd").on(day1).peg.tolist() == [1.0]
    assert RealisedMarket(market, ["a"], "USDC").on(day1).peg.tolist() == pytest.approx([0.97])


def test_a_position_earns_the_rate_its_share_of_the_supply_leaves_it() -> None:
    """1 M available at 75 % lent is a supply of 4 M: 1 M more earns 4/5 of the recorded rate."""
    rows = history_frame({"a": [(10.0, 1e6, 1.0)] * 3, "b": [(10.0, 1e6, 1.0)] * 3})
    rows["utilization"] = 0.75
    market = MarketData(rows, None, None, "test")
    day = pd.Timestamp("2024-01-02", tz="UTC")
    supply = supply_in_asset(DailyPanel(market.history), None, None, 10**6)
    assert supply.loc[day, "a"] == 4e12
    factors = RealisedMarket(market, ["a", "b"], depth=(supply, supply * 0 + 1.0)).on(day, [10**12, 0])
    np.testing.assert_allclose(factors.recorded_growth, [1.1 ** (1 / 365)] * 2)
    assert np.log(factors.growth[0]) == pytest.approx(np.log(1.1) / 365 * 0.8)
    assert factors.growth[1] == factors.recorded_growth[1]  # nothing held there: the recorded rate, to the bit
    pnl = dict.fromkeys(PNL_EFFECTS, 0.0)
    factors.hold(0, 10**12).add_pnl(pnl, 10**6)
    assert pnl["yield"] == pytest.approx(1e6 * (1.1 ** (1 / 365) - 1))
    assert pnl["dilution"] == pytest.approx(1e6 * (1.1 ** (0.8 / 365) - 1.1 ** (1 / 365))) and pnl["dilution"] < 0
    undiluted = RealisedMarket(market, ["a", "b"]).on(day, [10**12, 0])
    assert undiluted.growth.tolist() == undiluted.recorded_growth.tolist()
    # where its rate curve answers: at an elasticity of 3 the position's 1/5 of the supply takes 3/5 of the rate
    steep = RealisedMarket(market, ["a", "b"], depth=(supply, supply * 0 + 3.0)).on(day, [10**12, 0])
    assert np.log(steep.growth[0]) == pytest.approx(np.log(1.1) / 365 * 0.4)

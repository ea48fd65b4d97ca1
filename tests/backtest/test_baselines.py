"""Baseline forecasters: what each forecasts from a hand-made history."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from backtest.baselines import (
    EqualForecaster,
    HoldForecaster,
    PerfectForesightForecaster,
    TrailingBestForecaster,
)
from backtest.market import MarketData, synthetic_market
from strategy.allocator import AllocatorConfig
from strategy.guardrails import (
    Guardrails,
    MarketLimits,
    VaultState,
    check_rebalance,
    simulate_rebalance,
)
from strategy.targets import TargetParams
from strategy.trailing_best import TRAILING_DAYS, trailing_best, trailing_best_days
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


RAILS = Guardrails(min_rebalance_interval=0, max_turnover_bps=5000, max_loss_bps=10, min_idle_bps=500,
                   markets={pool: MarketLimits(cap_bps=6000, cap_abs=10**30) for pool in ROWS})
CONFIG = AllocatorConfig(horizon_days=7)


def test_equal_weight_moves_to_equal_shares_of_the_pools_with_data_within_the_guardrails() -> None:
    equal = EqualForecaster()
    state = VaultState(idle=0, positions={"rising": 0, "steady": 0, "gone": 1_000_000}, last_rebalance=0, paused=False)
    steps = 0
    while True:
        allocation = equal.plan(state, RAILS, equal.forecast(*at(7)), CONFIG)  # "gone" has no data on day 7
        if not allocation.changed:
            break
        after = simulate_rebalance(state, allocation.trades)
        assert check_rebalance(state, after, 1, RAILS) == []  # every step is one the vault accepts
        state, steps = after, steps + 1
    assert steps == 4  # 1.95 M to move, at most half the total (less a unit per market) at a time
    assert state.position("gone") == 0
    # The idle floor stays idle: 5 % of the total plus the 1 bp (95) the ~950,000 invested may earn before the
    # rebalance is mined, since the vault checks the floor after reporting that accrual.
    floor = 50_005
    assert state.position("rising") == state.position("steady") == (1_000_000 - floor) // 2
    assert state.idle == 1_000_000 - 2 * ((1_000_000 - floor) // 2)


def test_equal_weight_leaves_small_drifts_alone() -> None:
    equal = EqualForecaster()
    state = VaultState(idle=60_000, positions={"rising": 470_000, "steady": 470_000 + 9_000, "gone": 0},
                       last_rebalance=0, paused=False)
    drifted = replace(state, idle=50_000, positions={**state.positions, "steady": 470_000 + 19_000})
    assert not equal.plan(state, RAILS, equal.forecast(*at(7)), CONFIG).changed  # 1 % band
    assert equal.plan(drifted, RAILS, equal.forecast(*at(7)), CONFIG).changed


def test_equal_weight_leaves_pools_without_data_even_within_the_band_or_with_none_left() -> None:
    equal = EqualForecaster()
    small = VaultState(idle=60_000, positions={"rising": 470_000, "steady": 465_000, "gone": 5_000},
                       last_rebalance=0, paused=False)  # 0.5 % in "gone", which has no data on day 7
    allocation = equal.plan(small, RAILS, equal.forecast(*at(7)), CONFIG)
    assert allocation.trades["gone"] == 0
    stranded = VaultState(idle=0, positions={"rising": 0, "steady": 400_000, "gone": 600_000}, last_rebalance=0,
                          paused=False)
    allocation = equal.plan(stranded, RAILS, equal.forecast(*at(12)), CONFIG)  # no pool has data on day 12
    assert allocation.trades and all(target < stranded.position(pool) for pool, target in allocation.trades.items())
    assert check_rebalance(stranded, simulate_rebalance(stranded, allocation.trades), 1, RAILS) == []


def test_trailing_best_is_the_mean_of_the_last_seven_days() -> None:
    forecasts = TrailingBestForecaster().forecast(*at(9))
    assert forecasts["rising"].apy_pct == pytest.approx(sum(range(4, 11)) / 7)
    assert forecasts["steady"].apy_pct == 6.0
    assert "gone" not in forecasts  # no data today


def window_means(history: pd.DataFrame, day: pd.Timestamp) -> dict[str, float]:
    """The rule's definition, one day at a time: each pool's pandas mean APY of its rows in (day - 7 d, day], for
    the pools with a row on the day."""
    stamps = history["timestamp"]
    window = history[(stamps > day - pd.Timedelta(days=TRAILING_DAYS)) & (stamps <= day)]
    alive = set(window.loc[window["timestamp"] == day, "pool"])
    return {pool: mean for pool, mean in window.groupby("pool")["apy"].mean().items() if pool in alive}


def test_every_days_trailing_best_at_once_is_each_days_mean_to_the_bit() -> None:
    market = synthetic_market(6, DAY0, DAY0 + pd.Timedelta(days=60), 20, seed=3)  # APYs whose sums round
    history = market.history[~((market.history["pool"] == market.history["pool"].iloc[0])
                               & (market.history["timestamp"].dt.day % 5 == 0))]  # a pool with gaps
    days = [*pd.DatetimeIndex(history["timestamp"].unique()), DAY0 + pd.Timedelta(hours=30),
            DAY0 - pd.Timedelta(days=40)]  # off the daily grid, and before the data
    table = trailing_best_days(history, days)
    assert set(table) == set(days)
    for day in days:
        assert {pool: f.apy_pct for pool, f in table[day].items()} == window_means(history, day)
        assert list(table[day]) == sorted(table[day])  # pools in order, as one day's grouping gives them
        assert all(f.p_event == 0.0 for f in table[day].values())
    assert table[days[-1]] == {} and trailing_best(history, days[10]) == table[days[10]]


def test_a_cuts_trailing_best_is_read_from_the_whole_data_only_up_to_its_last_row() -> None:
    market = synthetic_market(4, DAY0, DAY0 + pd.Timedelta(days=30), 10, seed=5)
    whole = MarketData(market.history, None, None, "synthetic")
    cut = whole.until(DAY0 + pd.Timedelta(days=12))
    for offset in (0, 5, 12, 13, 20):  # after day 12 the whole data knows more than the cut
        day = DAY0 + pd.Timedelta(days=offset)
        assert cut.trailing_best_on(day) == trailing_best(cut.history, day)
    assert cut.trailing_best_on(DAY0 + pd.Timedelta(days=20)) == {}  # the cut has no row that day
    assert whole.trailing_best_on(DAY0 + pd.Timedelta(days=20)) != {}


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


def test_equal_weights_leave_what_a_market_short_of_cash_cannot_pay_back() -> None:
    from backtest.baselines import EqualForecaster
    from strategy.allocator import AllocatorConfig, MarketForecast
    from strategy.guardrails import Guardrails, MarketLimits, VaultState

    rails = Guardrails(min_rebalance_interval=0, max_turnover_bps=10_000, max_loss_bps=0, min_idle_bps=0,
                       markets=dict.fromkeys(("a", "b"), MarketLimits(cap_bps=10_000, cap_abs=10**30)))
    equal = EqualForecaster()
    equal._with_data = {"a", "b"}
    state = VaultState(idle=0, positions={"a": 1_000_000, "b": 0}, last_rebalance=0, paused=False,
                       withdrawable={"a": 100_000})
    forecasts = dict.fromkeys(("a", "b"), MarketForecast(apy_pct=3.0, p_event=0.0))
    plan = equal.plan(state, rails, forecasts, AllocatorConfig(horizon_days=7))
    # halfway would move 500,000; the market pays back 100,000, less its 1 bp accrual margin
    assert plan.trades == {"a": 900_100, "b": 99_900}  # and no more supplied than that freed

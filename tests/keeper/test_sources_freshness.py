"""The data gate: stale, incomplete or implausible market and price data is refused with a logged reason."""

import logging
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sources.gate import (
    DataGateError,
    GateLimits,
    ImplausibleDataError,
    MissingDataError,
    StaleDataError,
    check_market,
    check_prices,
)
from strategy.data.errors import DataError

NOW = datetime(2024, 6, 1, 12, tzinfo=UTC)
USDC_POOL = "aa70268e-4b52-42bf-a116-608b370f9501"
DAI_POOL = "405d8dad-5c99-4c91-90d3-82813ade1ff1"
USDC_COIN = "ethereum:0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"


def market(pool: str = USDC_POOL, apys=(4.0, 4.1, 4.2), tvls=None, last=NOW - timedelta(hours=1)):
    """Daily canonical history of one pool ending at `last` (TVL steady at 1 bn USD unless given)."""
    days = len(apys)
    tvls = tvls or [1.0e9] * days
    return pd.DataFrame(
        {
            "timestamp": pd.date_range(end=last, periods=days, freq="D"),
            "pool": pool,
            "apy": list(apys),
            "apy_base": list(apys),
            "apy_reward": 0.0,
            "tvl_usd": list(tvls),
        }
    )


def prices(coin: str = USDC_COIN, values=(1.0, 0.9999, 1.0001), last=NOW - timedelta(hours=1)):
    return pd.DataFrame(
        {
            "timestamp": pd.date_range(end=last, periods=len(values), freq="D"),
            "coin": coin,
            "symbol": "USDC",
            "price": list(values),
        }
    )


def test_fresh_plausible_market_passes_unchanged():
    history = pd.concat([market(), market(pool=DAI_POOL)], ignore_index=True)
    checked = check_market(history, NOW, required_pools=[USDC_POOL, DAI_POOL])
    pd.testing.assert_frame_equal(checked, history)


def test_stale_pool_is_refused_with_a_logged_reason(caplog):
    history = pd.concat([market(), market(pool=DAI_POOL, last=NOW - timedelta(days=3))], ignore_index=True)
    with caplog.at_level(logging.ERROR, logger="sources.gate"):
        stale = f"pool {DAI_POOL}: latest point .* is 72 h old \\(limit 36 h\\)"
        with pytest.raises(StaleDataError, match=stale) as caught:
            check_market(history, NOW)
    assert USDC_POOL not in str(caught.value)
    assert any(DAI_POOL in record.getMessage() and "StaleDataError" in record.getMessage() for record in caplog.records)


def test_gate_errors_are_data_errors():
    """The keeper cycle can stop on one type for everything wrong with the data."""
    assert issubclass(DataGateError, DataError)
    for error in (MissingDataError, StaleDataError, ImplausibleDataError):
        assert issubclass(error, DataGateError)


def test_max_age_is_configurable():
    history = market(last=NOW - timedelta(hours=5))
    check_market(history, NOW)
    with pytest.raises(StaleDataError):
        check_market(history, NOW, limits=GateLimits(max_age=timedelta(hours=4)))


def test_missing_required_pool_is_refused():
    with pytest.raises(MissingDataError, match=f"no data for pool\\(s\\) {DAI_POOL}"):
        check_market(market(), NOW, required_pools=[USDC_POOL, DAI_POOL])


def test_empty_market_is_refused():
    with pytest.raises(MissingDataError, match="no pool data at all"):
        check_market(market().iloc[0:0], NOW)


def test_frame_without_a_gated_column_is_refused():
    with pytest.raises(MissingDataError, match="lacks column\\(s\\) tvl_usd"):
        check_market(market().drop(columns="tvl_usd"), NOW)


def test_point_from_the_future_is_implausible():
    with pytest.raises(ImplausibleDataError, match="is 2 h in the future \\(limit 0.1667 h\\)"):
        check_market(market(last=NOW + timedelta(hours=2)), NOW)


def test_naive_now_is_a_programming_error():
    with pytest.raises(ValueError, match="timezone-aware"):
        check_market(market(), NOW.replace(tzinfo=None))


@pytest.mark.parametrize(
    ("apys", "tvls", "reason"),
    [
        ((4.0, 4.1, -1.0), (1e9, 1e9, 1e9), "APY -1.0 % is outside 0.0..1000.0 %"),
        ((4.0, 4.1, 5000.0), (1e9, 1e9, 1e9), "APY 5000.0 % is outside"),
        ((4.0, 4.1, float("nan")), (1e9, 1e9, 1e9), "APY nan % is outside"),
        ((4.0, 4.1, 4.2), (1e9, 1e9, 0.0), "TVL 0.0 USD is outside (0, 1,000,000,000,000] USD"),
        ((4.0, 4.1, 4.2), (1e9, 1e9, 1e18), "TVL 1e+18 USD is outside"),
        ((4.0, 4.1, 4.2), (1e9, 1e9, float("nan")), "TVL nan USD is outside"),
    ],
)
def test_implausible_latest_point_is_refused(apys, tvls, reason):
    with pytest.raises(ImplausibleDataError, match=reason.replace("(", "\\(").replace(".", "\\.").replace("+", "\\+")):
        check_market(market(apys=apys, tvls=tvls), NOW)


@pytest.mark.parametrize(
    ("apys", "tvls"),
    [((4.0, 4.1, 90.0), (1e9, 1e9, 1e9)), ((4.0, 4.1, 4.2), (1e9, 1e9, 3e6)), ((4.0, 4.1, 4.2), (1e9, 1e9, 2.5e11))],
)
def test_steps_of_apy_and_available_liquidity_are_market_moves_by_default(apys, tvls):
    """A lending market's available liquidity and its rate at the kink move this much in a day (module docstring)."""
    check_market(market(apys=apys, tvls=tvls), NOW)


@pytest.mark.parametrize(
    ("apys", "tvls", "limits", "reason"),
    [
        ((4.0, 4.1, 90.0), (1e9, 1e9, 1e9), GateLimits(max_apy_jump=50.0), "APY jumped from 4.1 % to 90.0 %"),
        ((4.0, 4.1, 4.2), (1e9, 1e9, 3e8), GateLimits(max_tvl_change=0.5),
         "TVL moved from 1,000,000,000 to 300,000,000 USD"),
    ],
)
def test_step_limits_apply_when_configured(apys, tvls, limits, reason):
    with pytest.raises(ImplausibleDataError, match=reason.replace("(", "\\(").replace(".", "\\.")):
        check_market(market(apys=apys, tvls=tvls), NOW, limits=limits)


def test_utilization_outside_its_range_is_refused():
    history = market().assign(utilization=[0.5, 0.6, 1.4])
    with pytest.raises(ImplausibleDataError, match="utilization 1.4 is outside 0..1"):
        check_market(history, NOW)
    check_market(market().assign(utilization=[0.5, 0.6, float("nan")]), NOW)  # unknown is not wrong


def test_a_frozen_feed_is_stale():
    with pytest.raises(StaleDataError, match="the last 3 points repeat APY and TVL exactly"):
        check_market(market(apys=(4.0, 4.2, 4.2, 4.2)), NOW)
    check_market(market(apys=(4.2, 4.2, 4.3)), NOW)  # a repeat of one step is not a frozen feed


def test_old_spikes_in_history_do_not_block_the_cycle():
    """Only the latest step is judged: a real spike weeks ago is history, not a data error."""
    check_market(market(apys=(4.0, 80.0, 4.0, 4.1, 4.2), tvls=(1e9, 1e8, 1e9, 1e9, 1e9)), NOW)


def test_single_point_series_is_judged_on_level_only():
    check_market(market(apys=(4.0,), tvls=(1e9,)), NOW)


def test_jump_thresholds_are_configurable():
    history = market(apys=(4.0, 4.0, 64.0))
    check_market(history, NOW)
    with pytest.raises(ImplausibleDataError):
        check_market(history, NOW, limits=GateLimits(max_apy_jump=50.0))
    check_market(history, NOW, limits=GateLimits(max_apy_jump=100.0))


@given(step=st.floats(min_value=-4.0, max_value=200.0, allow_nan=False))
def test_apy_step_is_refused_exactly_when_above_the_limit(step):
    limits = GateLimits(max_apy_jump=50.0)
    history = market(apys=(4.0, 4.0 + step))
    if abs(step) > limits.max_apy_jump:
        with pytest.raises(ImplausibleDataError):
            check_market(history, NOW, limits=limits)
    else:
        check_market(history, NOW, limits=limits)


def test_fresh_prices_pass_unchanged():
    frame = prices()
    pd.testing.assert_frame_equal(check_prices(frame, NOW, required_coins=[USDC_COIN]), frame)


def test_stale_prices_are_refused():
    with pytest.raises(StaleDataError, match=f"coin {USDC_COIN}: latest point"):
        check_prices(prices(last=NOW - timedelta(days=2)), NOW)


def test_missing_coin_is_refused():
    with pytest.raises(MissingDataError, match="no data for coin\\(s\\) ethereum:0xdai"):
        check_prices(prices(), NOW, required_coins=[USDC_COIN, "ethereum:0xdai"])


@pytest.mark.parametrize(
    ("values", "reason"),
    [((1.0, 1.0, 0.5), "price moved from 1.0 to 0.5, more than 25% in one step"), ((1.0, 1.0, 0.0), "not positive")],
)
def test_implausible_price_is_refused(values, reason):
    with pytest.raises(ImplausibleDataError, match=reason):
        check_prices(prices(values=values), NOW)

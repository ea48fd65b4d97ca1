"""Lending-market features (`strategy.features.market.utilization_features`): values on hand-made pools,
NaN without utilization, and no look-ahead (also covered on the full market by test_features.py)."""

import math

import numpy as np
import pandas as pd
import pytest

from strategy.features import build_features
from strategy.features.market import RATE_CURVE_DAYS as KINK_WINDOW

DAY = pd.Timedelta(days=1)
START = pd.Timestamp("2024-01-01", tz="UTC")


def lending_pool(apy, tvl, utilization, *, pool="a", days=None) -> pd.DataFrame:
    days = list(range(len(apy))) if days is None else days
    frame = pd.DataFrame({
        "timestamp": [START + d * DAY for d in days], "pool": pool, "apy": np.asarray(apy, float),
        "apy_base": np.asarray(apy, float), "apy_reward": 0.0, "tvl_usd": np.asarray(tvl, float),
        "utilization": np.asarray(utilization, float),
    })
    frame["timestamp"] = frame["timestamp"].astype("datetime64[us, UTC]")
    return frame


def features_of(history: pd.DataFrame, pool: str = "a") -> pd.DataFrame:
    return build_features(history).xs(pool, level="pool")


# Five days by hand: supplied = tvl / (1 - u), borrowed = supplied - tvl.
UTIL = [0.5, 0.6, 0.75, 0.9, 0.8]
TVL = [100.0, 80.0, 50.0, 20.0, 40.0]
SUPPLIED = [200.0, 200.0, 200.0, 200.0, 200.0]
BORROWED = [100.0, 120.0, 150.0, 180.0, 160.0]


def test_utilization_and_its_weekly_change():
    util = [0.5, 0.6, 0.75, 0.9, 0.8, 0.7, 0.6, 0.65]
    features = features_of(lending_pool([3.0] * 8, [100.0] * 8, util))
    assert features["utilization"].tolist() == pytest.approx(util)
    assert features["utilization_chg_7d"].iloc[:7].isna().all()  # no utilization seven days back
    assert features["utilization_chg_7d"].iloc[7] == pytest.approx(0.65 - 0.5)


def test_supplied_and_borrowed_are_recovered_from_available_liquidity_and_utilization():
    features = features_of(lending_pool([3.0] * 5, TVL, UTIL))
    assert features["supply_log"].tolist() == pytest.approx([math.log1p(s) for s in SUPPLIED])
    assert features["borrow_log"].tolist() == pytest.approx([math.log1p(b) for b in BORROWED])
    # Supply held still while borrowers came and went: the flows say which side moved.
    assert features["supply_growth_1d"].tolist()[1:] == pytest.approx([0.0] * 4, abs=1e-12)
    assert features["borrow_growth_1d"].tolist()[1:] == pytest.approx(
        [math.log1p(BORROWED[i]) - math.log1p(BORROWED[i - 1]) for i in range(1, 5)])
    assert features["borrow_growth_7d"].isna().all()


def test_borrow_and_supply_flows_over_seven_days():
    util = [0.5] * 7 + [0.75]
    tvl = [100.0] * 7 + [75.0]  # supplied 200 → 300, borrowed 100 → 225
    features = features_of(lending_pool([3.0] * 8, tvl, util))
    assert features["supply_growth_7d"].iloc[7] == pytest.approx(math.log1p(300) - math.log1p(200))
    assert features["borrow_growth_7d"].iloc[7] == pytest.approx(math.log1p(225) - math.log1p(100))
    assert features["supply_growth_7d"].iloc[:7].isna().all()


def test_a_fully_borrowed_pool_has_no_supplied_amount_rather_than_an_infinite_one():
    features = features_of(lending_pool([3.0, 3.0], [100.0, 0.0], [0.5, 1.0]))
    assert math.isnan(features["supply_log"].iloc[1]) and math.isnan(features["borrow_growth_1d"].iloc[1])


def kinked_pool(days: int) -> tuple[np.ndarray, np.ndarray]:
    """A pool swinging around a kink at 0.8: APY 1 + 5u below, 5 + 50 (u - 0.8) above."""
    utilization = 0.7 + 0.2 * np.abs(np.sin(np.arange(days) / 5.0))
    apy = np.where(utilization <= 0.8, 1 + 5 * utilization, 5 + 50 * (utilization - 0.8))
    return apy, utilization


def test_rate_curve_features_read_the_pools_own_trailing_history():
    days = KINK_WINDOW + 20
    apy, util = kinked_pool(days)
    features = features_of(lending_pool(apy, [1e6] * days, util))
    first = KINK_WINDOW // 2 - 1  # a slope needs half the window observed
    slope = features[f"apy_util_slope_{KINK_WINDOW}d"]
    assert slope.iloc[:first].isna().all()
    for t in (first, KINK_WINDOW - 1, days - 1):
        window = slice(max(0, t - KINK_WINDOW + 1), t + 1)
        u, a = util[window], apy[window]
        expected = np.cov(u, a)[0, 1] / np.var(u, ddof=1)  # least-squares slope of APY on utilization
        assert slope.iloc[t] == pytest.approx(expected)
        assert 5 < expected < 50  # between the two legs of the curve
        recent = util[max(0, t - 29): t + 1].mean()
        assert features[f"apy_util_reversion_{KINK_WINDOW}d"].iloc[t] == pytest.approx(expected * (recent - util[t]))


def test_a_steeper_curve_gives_a_steeper_slope():
    days = KINK_WINDOW
    apy, util = kinked_pool(days)
    gentle = features_of(lending_pool(apy, [1e6] * days, util))[f"apy_util_slope_{KINK_WINDOW}d"].iloc[-1]
    steep = features_of(lending_pool(3 * apy, [1e6] * days, util))[f"apy_util_slope_{KINK_WINDOW}d"].iloc[-1]
    assert steep == pytest.approx(3 * gentle)


def test_utilization_that_does_not_move_gives_no_slope():
    days = KINK_WINDOW
    features = features_of(lending_pool(np.linspace(2, 4, days), [1e6] * days, [0.8] * days))
    assert features[f"apy_util_slope_{KINK_WINDOW}d"].isna().all()


def test_every_lending_feature_is_nan_without_utilization_and_nothing_fails():
    apy, util = kinked_pool(120)
    history = lending_pool(apy, np.linspace(1e6, 2e6, 120), util)
    with_util, without = build_features(history), build_features(history.drop(columns="utilization"))
    assert list(with_util.columns) == list(without.columns)
    lending = [c for c in with_util.columns if c.startswith(("utilization", "supply_", "borrow_", "apy_util_"))]
    assert len(lending) == 10  # utilization and its change, 3 supply and 3 borrow, slope and reversion
    assert without[lending].isna().all().all()
    assert with_util[lending].iloc[-1].notna().all()  # all known once the windows have filled
    # One pool with utilization, one without (a DeFiLlama chart): each gets what its own data allow.
    mixed = pd.concat([history, lending_pool(apy, [1e6] * 120, [np.nan] * 120, pool="b")], ignore_index=True)
    features = build_features(mixed)
    assert features.xs("b", level="pool")[lending].isna().all().all()
    pd.testing.assert_frame_equal(features.xs("a", level="pool")[lending], with_util.xs("a", level="pool")[lending])


def test_lending_features_up_to_t_ignore_everything_after_t():
    days, t = KINK_WINDOW + 30, KINK_WINDOW + 5
    apy, util = kinked_pool(days)
    history = lending_pool(apy, np.linspace(1e6, 3e6, days), util)
    expected = features_of(history).iloc[: t + 1]
    later = history.index > t
    rng = np.random.default_rng(0)
    changed = history.copy()
    changed.loc[later, "utilization"] = rng.uniform(0, 1, later.sum())
    changed.loc[later, "apy"] *= 10
    changed.loc[later, "tvl_usd"] /= 7
    pd.testing.assert_frame_equal(features_of(changed).iloc[: t + 1], expected, check_exact=True)
    pd.testing.assert_frame_equal(features_of(history[~later]), expected, check_exact=True)


def test_the_look_ahead_market_exercises_the_lending_features(synthetic_or_real):
    """Uses `synthetic_or_real`: the lending features are known on its rows, so the no-look-ahead property
    test of test_features.py (which perturbs utilization after t) compares real values, not NaNs."""
    market = synthetic_or_real
    features = build_features(market.history, market.news, market.pools)
    lending = [c for c in features.columns if c.startswith(("utilization", "supply_", "borrow_", "apy_util_"))]
    assert features[lending].notna().sum().min() > 0, features[lending].notna().sum()

"""Per-pool time-series features and cross-sectional features from market history, on the daily grid.

All windows count days and end at the row's own day (trailing); cross-sectional features compare pools on
the same day only. Nothing here looks past the row's day.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import numpy as np
import pandas as pd
from pandas.api.typing import Rolling

from strategy.data.daily import DailyPanel


def market_features(
    panel: DailyPanel, stablecoin: pd.Series | None, windows: Sequence[int]
) -> dict[str, pd.DataFrame]:
    """Wide (days × pools) feature frames by name; ``stablecoin`` (bool per pool) enables peg features."""
    apy, base, reward = panel.wide("apy"), panel.wide("apy_base"), panel.wide("apy_reward")
    tvl, price, utilization = panel.wide("tvl_usd"), panel.wide("price"), panel.wide("utilization")
    changes = (1, *windows)
    features = {"apy": apy, "apy_base": base, "apy_reward": reward}

    positive_base, positive_reward = base.clip(lower=0), reward.clip(lower=0)
    total = positive_base + positive_reward
    features["reward_share"] = positive_reward / total.where(total > 0)
    for w in changes:
        features[f"apy_chg_{w}d"] = apy - apy.shift(w)
    features["apy_reward_chg_7d"] = reward - reward.shift(7)
    for w in windows:
        features[f"apy_ewm_{w}d"] = apy.ewm(span=w).mean()
        features[f"apy_vol_{w}d"] = apy.rolling(w, min_periods=2).std()
    mean_30, std_30 = _rolling(apy, 30).mean(), _rolling(apy, 30).std()
    features["apy_z_30d"] = (apy - mean_30) / std_30.where(std_30 > 0)

    log_tvl = cast(pd.DataFrame, np.log1p(tvl))  # a frame: numpy's stubs miss DataFrame.__array_ufunc__
    features["tvl_log"] = log_tvl
    for w in changes:
        features[f"tvl_growth_{w}d"] = log_tvl - log_tvl.shift(w)
    for w in windows:
        peak = tvl.rolling(w, min_periods=1).max()
        features[f"tvl_drawdown_{w}d"] = tvl / peak.where(peak > 0) - 1
    features["tvl_flow_vol_30d"] = _rolling(features["tvl_growth_1d"], 30).std()

    log_price = cast(pd.DataFrame, np.log(price))  # a frame: numpy's stubs miss DataFrame.__array_ufunc__
    features["price_ret_1d"] = log_price - log_price.shift(1)
    features["price_ret_7d"] = log_price - log_price.shift(7)
    for w in (7, 30):
        features[f"price_vol_{w}d"] = _rolling(features["price_ret_1d"], w).std()
    is_stable = panel.per_pool(stablecoin)
    peg_deviation = (price - 1.0).where(is_stable == 1.0)
    features["peg_dev"] = peg_deviation
    for w in (7, 30):
        features[f"peg_dev_max_{w}d"] = peg_deviation.abs().rolling(w, min_periods=1).max()

    features |= utilization_features(apy, tvl, utilization)

    seen = apy.notna().cummax()
    features["pool_age_days"] = (seen.cumsum() - 1).where(seen)
    features["apy_rank"] = apy.rank(axis=1, pct=True)
    features["tvl_rank"] = tvl.rank(axis=1, pct=True)
    features["apy_excess_median"] = apy.sub(apy.median(axis=1), axis=0)
    return features


# -- lending markets --------------------------------------------------------------------------------------
# A lending pool's supply APY is set by a rate model of its utilization u = borrowed / supplied: the borrow
# rate rises gently up to a "kink" (the optimal utilization, 0.8-0.92 in these markets) and steeply above
# it, and suppliers earn about borrow rate x u. High rates pull in deposits and push out borrowers, so
# utilization, and with it the APY, reverts. These features say which side moved and where the pool sits on
# its curve. (Utilization changes over 1/3/30 days, trailing means and maxima, and the distance to a trailing
# 90 % quantile were tried as well and left out: they did not lower the walk-forward MAE on validation
# periods before the test period.)

RATE_CURVE_DAYS = 90  # history to read a pool's rate curve from (rate models change only by governance)
REVERSION_DAYS = 30  # the recent utilization level the pool tends back to
MIN_UTILIZATION_STD = 1e-3  # below this spread in a window, utilization says nothing about the APY's slope


def utilization_features(apy: pd.DataFrame, tvl: pd.DataFrame, utilization: pd.DataFrame
                         ) -> dict[str, pd.DataFrame]:
    """Utilization, its supply and borrow sides, and the slope of the rate curve; NaN without utilization."""
    features = {"utilization": utilization, "utilization_chg_7d": utilization - utilization.shift(7)}
    features |= _supply_and_borrow(tvl, utilization)
    features |= _rate_curve(apy, utilization)
    return features


def _supply_and_borrow(tvl: pd.DataFrame, utilization: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Supplied and borrowed USD (log levels and 1- and 7-day flows), as tvl_usd is only supplied - borrowed.

    supplied = tvl / (1 - u), borrowed = supplied - tvl (NaN at u = 1). A rate moves when one side moves
    faster than the other; which side moved (deposits leaving, or borrowers arriving) tvl and u alone hide.
    """
    supplied = supplied_usd(tvl, utilization)
    borrowed = supplied - tvl
    features = {}
    for side, amount in (("supply", supplied), ("borrow", borrowed)):
        log_amount = cast(pd.DataFrame, np.log1p(amount.clip(lower=0)))  # a frame, as above
        features[f"{side}_log"] = log_amount
        for w in (1, 7):
            features[f"{side}_growth_{w}d"] = log_amount - log_amount.shift(w)
    return features


def supplied_usd(tvl: pd.DataFrame, utilization: pd.DataFrame) -> pd.DataFrame:
    """What depositors supplied: available liquidity (DeFiLlama's TVL of a lending market) / (1 - utilization);
    NaN where utilization is unknown or 1."""
    return tvl / (1 - utilization.where(utilization < 1))


def _rate_curve(apy: pd.DataFrame, utilization: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The pool's own rate curve, read from its trailing history of APY against utilization.

    - apy_util_slope: least-squares slope of APY (pp) on utilization over RATE_CURVE_DAYS (half of them
      observed); steep when the pool has been working above its kink, where a utilization move costs most.
    - apy_util_reversion: slope x (REVERSION_DAYS mean utilization - utilization): the APY move if
      utilization went back to its recent level along that slope (negative after a spike above the kink).
    """
    slope = rate_curve_slope(apy, utilization)
    recent = utilization.rolling(REVERSION_DAYS, min_periods=1).mean()
    return {
        f"apy_util_slope_{RATE_CURVE_DAYS}d": slope,
        f"apy_util_reversion_{RATE_CURVE_DAYS}d": slope * (recent - utilization),
    }


def rate_curve_slope(apy: pd.DataFrame, utilization: pd.DataFrame) -> pd.DataFrame:
    """APY points per unit of utilization: the least-squares slope of each pool's APY on its utilization over
    the last RATE_CURVE_DAYS (half of them observed); NaN where utilization barely moved."""
    window = utilization.rolling(RATE_CURVE_DAYS, min_periods=RATE_CURVE_DAYS // 2)
    return window.cov(apy) / window.var().where(window.std() > MIN_UTILIZATION_STD)


def _rolling(frame: pd.DataFrame, window: int) -> Rolling:
    """A trailing window that needs about half its days observed (at least two, for a deviation)."""
    return frame.rolling(window, min_periods=max(2, window // 2))

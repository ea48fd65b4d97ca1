"""Per-pool time-series features and cross-sectional features from market history, on the daily grid.

All windows count days and end at the row's own day (trailing); cross-sectional features compare pools on
the same day only. Nothing here looks past the row's day.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from strategy.data.daily import DailyPanel
from strategy.features.windows import trailing


def market_features(
    panel: DailyPanel, stablecoin: pd.Series | None, windows: Sequence[int]
) -> dict[str, np.ndarray]:
    """Wide (days × pools) feature arrays by name; ``stablecoin`` (bool per pool) enables peg features.

    Elementwise steps run on the arrays (the same numpy operations pandas would call, without its per-call
    alignment: on a few pools that was most of the time); windows (`strategy.features.windows`), EWMs, ranks
    and medians stay pandas' own."""
    frames = {column: panel.wide(column) for column in ("apy", "apy_base", "apy_reward", "tvl_usd", "price")}
    apy, base, reward, tvl, price = (frame.to_numpy() for frame in frames.values())
    utilization = panel.wide("utilization")
    changes = (1, *windows)
    features = {"apy": apy, "apy_base": base, "apy_reward": reward}

    positive_base, positive_reward = _clip_negative(base), _clip_negative(reward)
    total = positive_base + positive_reward
    features["reward_share"] = positive_reward / _where(total > 0, total)
    for w in changes:
        features[f"apy_chg_{w}d"] = apy - _shift(apy, w)
    features["apy_reward_chg_7d"] = reward - _shift(reward, 7)
    for w in windows:
        features[f"apy_ewm_{w}d"] = frames["apy"].ewm(span=w).mean().to_numpy()
        features[f"apy_vol_{w}d"] = trailing(apy, w, 2, "std")
    mean_30, std_30 = _trailing(apy, 30, "mean"), _trailing(apy, 30, "std")
    features["apy_z_30d"] = (apy - mean_30) / _where(std_30 > 0, std_30)

    log_tvl = np.log1p(tvl)
    features["tvl_log"] = log_tvl
    for w in changes:
        features[f"tvl_growth_{w}d"] = log_tvl - _shift(log_tvl, w)
    for w in windows:
        peak = trailing(tvl, w, 1, "max")
        features[f"tvl_drawdown_{w}d"] = tvl / _where(peak > 0, peak) - 1
    features["tvl_flow_vol_30d"] = _trailing(features["tvl_growth_1d"], 30, "std")

    log_price = np.log(price)
    features["price_ret_1d"] = log_price - _shift(log_price, 1)
    features["price_ret_7d"] = log_price - _shift(log_price, 7)
    for w in (7, 30):
        features[f"price_vol_{w}d"] = _trailing(features["price_ret_1d"], w, "std")
    is_stable = panel.per_pool(stablecoin).to_numpy()
    peg_deviation = _where(is_stable == 1.0, price - 1.0)
    features["peg_dev"] = peg_deviation
    for w in (7, 30):
        features[f"peg_dev_max_{w}d"] = trailing(np.abs(peg_deviation), w, 1, "max")

    features |= utilization_features(frames["apy"], frames["tvl_usd"], utilization)

    seen = np.maximum.accumulate(~np.isnan(apy), axis=0)
    features["pool_age_days"] = _where(seen, np.cumsum(seen, axis=0) - 1)
    features["apy_rank"] = frames["apy"].rank(axis=1, pct=True).to_numpy()
    features["tvl_rank"] = frames["tvl_usd"].rank(axis=1, pct=True).to_numpy()
    features["apy_excess_median"] = apy - frames["apy"].median(axis=1).to_numpy()[:, None]
    return features


def _shift(values: np.ndarray, days: int) -> np.ndarray:
    """`DataFrame.shift(days)` of a days × pools array: each row holds the row `days` earlier, NaN before."""
    shifted = np.full_like(values, np.nan)
    shifted[days:] = values[:max(len(values) - days, 0)]
    return shifted


def _where(condition: np.ndarray, values: np.ndarray) -> np.ndarray:
    """`DataFrame.where(condition)` of an array: NaN where the condition fails."""
    return np.where(condition, values, np.nan)


def _clip_negative(values: np.ndarray) -> np.ndarray:
    """`DataFrame.clip(lower=0)` of an array: negatives to 0, NaN (and -0.0) kept."""
    return np.where(values < 0, 0.0, values)


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
                         ) -> dict[str, np.ndarray]:
    """Utilization, its supply and borrow sides, and the slope of the rate curve; NaN without utilization."""
    values = utilization.to_numpy()
    features = {"utilization": values, "utilization_chg_7d": values - _shift(values, 7)}
    features |= _supply_and_borrow(tvl, utilization)
    features |= _rate_curve(apy, utilization)
    return features


def _supply_and_borrow(tvl: pd.DataFrame, utilization: pd.DataFrame) -> dict[str, np.ndarray]:
    """Supplied and borrowed USD (log levels and 1- and 7-day flows), as tvl_usd is only supplied - borrowed.

    supplied = tvl / (1 - u), borrowed = supplied - tvl (NaN at u = 1). A rate moves when one side moves
    faster than the other; which side moved (deposits leaving, or borrowers arriving) tvl and u alone hide.
    """
    supplied = supplied_usd(tvl, utilization).to_numpy()
    borrowed = supplied - tvl.to_numpy()
    features = {}
    for side, amount in (("supply", supplied), ("borrow", borrowed)):
        log_amount = np.log1p(_clip_negative(amount))
        features[f"{side}_log"] = log_amount
        for w in (1, 7):
            features[f"{side}_growth_{w}d"] = log_amount - _shift(log_amount, w)
    return features


def supplied_usd(tvl: pd.DataFrame, utilization: pd.DataFrame) -> pd.DataFrame:
    """What depositors supplied: available liquidity (DeFiLlama's TVL of a lending market) / (1 - utilization);
    NaN where utilization is unknown or 1. Both frames of one panel (the same days and pools)."""
    u = utilization.to_numpy()
    return tvl.div(1 - _where(u < 1, u))


def _rate_curve(apy: pd.DataFrame, utilization: pd.DataFrame) -> dict[str, np.ndarray]:
    """The pool's own rate curve, read from its trailing history of APY against utilization.

    - apy_util_slope: least-squares slope of APY (pp) on utilization over RATE_CURVE_DAYS (half of them
      observed); steep when the pool has been working above its kink, where a utilization move costs most.
    - apy_util_reversion: slope x (REVERSION_DAYS mean utilization - utilization): the APY move if
      utilization went back to its recent level along that slope (negative after a spike above the kink).
    """
    slope = rate_curve_slope(apy, utilization).to_numpy()
    recent = trailing(utilization.to_numpy(), REVERSION_DAYS, 1, "mean")
    return {
        f"apy_util_slope_{RATE_CURVE_DAYS}d": slope,
        f"apy_util_reversion_{RATE_CURVE_DAYS}d": slope * (recent - utilization.to_numpy()),
    }


def rate_curve_slope(apy: pd.DataFrame, utilization: pd.DataFrame) -> pd.DataFrame:
    """APY points per unit of utilization: the least-squares slope of each pool's APY on its utilization over
    the last RATE_CURVE_DAYS (half of them observed); NaN where utilization barely moved. Both frames of one
    panel (the same days and pools)."""
    u = utilization.to_numpy()
    window = (RATE_CURVE_DAYS, RATE_CURVE_DAYS // 2)
    spread, variance = trailing(u, *window, "std"), trailing(u, *window, "var")
    slope = trailing(u, *window, "cov", apy.to_numpy()) / _where(spread > MIN_UTILIZATION_STD, variance)
    return pd.DataFrame(slope, index=utilization.index, columns=utilization.columns)


def _trailing(values: np.ndarray, window: int, how: str) -> np.ndarray:
    """`trailing` over a window that needs about half its days observed (at least two, for a deviation)."""
    return trailing(values, window, max(2, window // 2), how)

"""Per-pool time-series features and cross-sectional features from market history, on the daily grid.

All windows count days and end at the row's own day (trailing); cross-sectional features compare pools on
the same day only. Nothing here looks past the row's day.
"""

from __future__ import annotations

from collections.abc import Sequence

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

    log_tvl = np.log1p(tvl)
    features["tvl_log"] = log_tvl
    for w in changes:
        features[f"tvl_growth_{w}d"] = log_tvl - log_tvl.shift(w)
    for w in windows:
        peak = tvl.rolling(w, min_periods=1).max()
        features[f"tvl_drawdown_{w}d"] = tvl / peak.where(peak > 0) - 1
    features["tvl_flow_vol_30d"] = _rolling(features["tvl_growth_1d"], 30).std()

    log_price = np.log(price)
    features["price_ret_1d"] = log_price - log_price.shift(1)
    features["price_ret_7d"] = log_price - log_price.shift(7)
    for w in (7, 30):
        features[f"price_vol_{w}d"] = _rolling(features["price_ret_1d"], w).std()
    is_stable = panel.per_pool(stablecoin)
    peg_deviation = (price - 1.0).where(is_stable == 1.0)
    features["peg_dev"] = peg_deviation
    for w in (7, 30):
        features[f"peg_dev_max_{w}d"] = peg_deviation.abs().rolling(w, min_periods=1).max()

    features["utilization"] = utilization
    features["utilization_chg_7d"] = utilization - utilization.shift(7)

    seen = apy.notna().cummax()
    features["pool_age_days"] = (seen.cumsum() - 1).where(seen)
    features["apy_rank"] = apy.rank(axis=1, pct=True)
    features["tvl_rank"] = tvl.rank(axis=1, pct=True)
    features["apy_excess_median"] = apy.sub(apy.median(axis=1), axis=0)
    return features


def _rolling(frame: pd.DataFrame, window: int) -> Rolling:
    """A trailing window that needs about half its days observed (at least two, for a deviation)."""
    return frame.rolling(window, min_periods=max(2, window // 2))

"""Model features from a daily-aligned canonical market history, optional news and pool metadata.

`build_features` returns one row per history row, indexed by (timestamp, pool), sorted. A feature at day
``t`` uses only data up to and including ``t`` (market rows with timestamp <= t, news published <= t);
windows are trailing and count days on a gap-free daily grid. With the default windows W = (3, 7, 30):

APY (percent; changes in percentage points):
  apy, apy_base, apy_reward; reward_share = max(reward, 0) / (max(base, 0) + max(reward, 0));
  apy_chg_{1,3,7,30}d = apy(t) - apy(t - w); apy_reward_chg_7d; apy_ewm_{w}d (EWM mean, span w days);
  apy_vol_{w}d (std of apy over w days); apy_z_30d = (apy - 30-day mean) / 30-day std.
TVL: tvl_log = ln(1 + tvl_usd); tvl_growth_{1,3,7,30}d = tvl_log(t) - tvl_log(t - w);
  tvl_drawdown_{w}d = tvl / (max tvl over w days) - 1; tvl_flow_vol_30d (std of daily growth).
Price (NaN without a price column): price_ret_{1,7}d (log returns), price_vol_{7,30}d (std of daily log
  returns); for stablecoin pools (needs pools_meta) peg_dev = price - 1 and peg_dev_max_{7,30}d = max |price - 1|.
Lending (NaN without the utilization column; see `strategy.features.market.utilization_features`):
  utilization (borrowed / supplied), utilization_chg_7d; supply_log, borrow_log = ln(1 + USD) of supplied =
  tvl / (1 - utilization) and borrowed = supplied - tvl; supply_growth_{1,7}d, borrow_growth_{1,7}d (log
  changes: the flows on each side); apy_util_slope_90d = trailing 90-day least-squares slope of apy on
  utilization (the pool's own rate curve); apy_util_reversion_90d = slope x (30-day mean utilization -
  utilization), the APY move if utilization went back to its recent level.
Pool: pool_age_days = days since the pool's first row in this history.
Cross-section of the day: apy_rank, tvl_rank (percentile rank in (0, 1]); apy_excess_median = apy - median apy.
News (NaN without news, or for pools missing from pools_meta): news_count_{1,3,7,30}d (matched items),
  news_risk_count_{1,3,7,30}d (matched items with a risk word), news_incident_count_{1,3,7,30}d (incident
  reports naming the pool's protocol, `strategy.features.news.incident_matches`), news_sentiment_mean_{w}d and
  news_sentiment_min_{w}d (VADER compound of matched items; NaN when none). See `strategy.features.news`.

Rolling deviations need half the window observed (at least 2 days); other windows take what is there.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from strategy.data.checks import TIMESTAMP_DTYPE
from strategy.data.daily import DailyPanel
from strategy.data.errors import DataError
from strategy.data.schema import NEWS_COLUMNS, POOL, POOL_META_COLUMNS, TIMESTAMP
from strategy.features.market import market_features
from strategy.features.news import RISK_TERMS, news_features

DEFAULT_WINDOWS = (3, 7, 30)

__all__ = ["DEFAULT_WINDOWS", "RISK_TERMS", "build_features", "wide_features"]


def build_features(
    history: pd.DataFrame,
    news: pd.DataFrame | None = None,
    pools_meta: pd.DataFrame | None = None,
    *,
    windows: Sequence[int] = DEFAULT_WINDOWS,
) -> pd.DataFrame:
    """Features for every row of ``history`` (canonical, daily-aligned: see `strategy.data.align_to_daily`).

    ``news`` is a canonical news table; matching it to pools needs ``pools_meta`` (pool, project, symbol,
    stablecoin). The columns are the same whatever is given; what cannot be computed is NaN.
    """
    panel = DailyPanel(history)
    return panel.long(wide_features(panel, news, pools_meta, windows=windows))


def wide_features(
    panel: DailyPanel,
    news: pd.DataFrame | None = None,
    pools_meta: pd.DataFrame | None = None,
    *,
    windows: Sequence[int] = DEFAULT_WINDOWS,
) -> dict[str, np.ndarray]:
    """`build_features` as wide (days × pools) arrays by name, on ``panel``'s grid (for `DailyPanel.long`)."""
    if news is None:  # same columns, all unknown: no pool is matchable
        news = pd.DataFrame({c: pd.Series(dtype=TIMESTAMP_DTYPE if c == TIMESTAMP else "str") for c in NEWS_COLUMNS})
        news_pools = pd.DataFrame({c: pd.Series(dtype="str") for c in POOL_META_COLUMNS})
    elif pools_meta is None:
        raise DataError("news features need pools_meta to match items to pools", field="pools_meta")
    else:
        news_pools = pools_meta
    stablecoin = pools_meta.set_index(POOL)["stablecoin"] if pools_meta is not None else None
    features = market_features(panel, stablecoin, windows)
    features |= news_features(panel, news, news_pools, windows)
    return features

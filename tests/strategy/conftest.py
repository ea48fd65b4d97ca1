"""Fixtures for the strategy tests.

Tests that need a market history take `synthetic_or_real`: the team's real dataset from ``../shared/data``
once it is there, until then the synthetic generator's output. Each such test says so in its docstring.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from strategy.data import align_to_daily, load_market_history, load_news, load_pools
from strategy.synthetic import generate_market

# Where the real datasets will be, relative to ../shared/data (see its README); the first that exists is used.
REAL_HISTORY = ("defillama/market_history.parquet", "defillama/market_history.csv", "defillama/charts")
REAL_POOLS = "defillama/pools.json"
REAL_NEWS = "news"
# Tests only need a slice: the pools with the longest histories, over the last days.
MAX_POOLS, MAX_DAYS = 8, 240


@dataclass(frozen=True)
class MarketData:
    history: pd.DataFrame  # canonical, daily-aligned
    pools: pd.DataFrame | None
    news: pd.DataFrame | None
    source: str  # "synthetic" or the real dataset's path


@pytest.fixture(scope="session")
def synthetic_or_real(shared_data: Path) -> MarketData:
    """Real market data when ``../shared/data`` has it (REAL_HISTORY), else a synthetic market of
    MAX_POOLS pools over MAX_DAYS days (seed 7). Real data is cut to the same size."""
    real = next((shared_data / name for name in REAL_HISTORY if (shared_data / name).exists()), None)
    if real is None:
        market = generate_market(n_pools=MAX_POOLS, days=MAX_DAYS, seed=7)
        return MarketData(market.history, market.pools, market.news, "synthetic")
    history = align_to_daily(load_market_history(real).frame)
    longest = history[history["pool"].isin(history["pool"].value_counts().index[:MAX_POOLS])]
    recent = longest[longest["timestamp"] > longest["timestamp"].max() - pd.Timedelta(days=MAX_DAYS)]
    pools_file, news_dir = shared_data / REAL_POOLS, shared_data / REAL_NEWS
    pools = load_pools(pools_file) if pools_file.exists() else None
    news = load_news(news_dir).frame if news_dir.exists() and pools is not None else None
    return MarketData(recent.reset_index(drop=True), pools, news, str(real))

"""Fixtures for the strategy tests.

Tests that need a market history take `synthetic_or_real`: the team's real dataset from ``../shared/data``
once it is there, until then the synthetic generator's output. Each such test says so in its docstring.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pytest

from strategy.data import align_to_daily, load_market_history, load_news, load_pools
from strategy.synthetic import generate_market
from tests.shared_data import real_dataset

# Tests only need a slice: the pools with the longest histories, over the last days.
MAX_POOLS, MAX_DAYS = 8, 240
# Real data: its last 240 days hold two pools and hardly an event, so tests read the last 800 (all eight pools).
MAX_REAL_DAYS = 800


@dataclass(frozen=True)
class MarketData:
    history: pd.DataFrame  # canonical, daily-aligned
    pools: pd.DataFrame | None
    news: pd.DataFrame | None
    source: str  # "synthetic" or the real dataset's path


@pytest.fixture(scope="session")
def synthetic_or_real() -> MarketData:
    """Real market data when ``../shared/data`` has it (`tests.shared_data.real_dataset`), else a synthetic
    market of MAX_POOLS pools over MAX_DAYS days (seed 2: adverse events all through it, the last weeks too).
    Real data is cut to MAX_REAL_DAYS."""
    real = real_dataset()
    if real is None:
        market = generate_market(n_pools=MAX_POOLS, days=MAX_DAYS, seed=2)
        return MarketData(market.history, market.pools, market.news, "synthetic")
    history = align_to_daily(load_market_history(real.history).frame)
    longest = history[history["pool"].isin(history["pool"].value_counts().index[:MAX_POOLS])]
    recent = longest[longest["timestamp"] > longest["timestamp"].max() - pd.Timedelta(days=MAX_REAL_DAYS)]
    pools = load_pools(real.pools) if real.pools is not None else None
    news = load_news(real.news).frame if real.news is not None and pools is not None else None
    return MarketData(recent.reset_index(drop=True), pools, news, str(real.history))

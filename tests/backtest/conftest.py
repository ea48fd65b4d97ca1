"""Fixtures for the backtest tests: a small synthetic market, hand-made histories and a replay setup
built without a config file (the defaults of `backtest.settings` and the allocator)."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest

from backtest.engine import Setup
from backtest.market import MarketData, largest_pools, synthetic_market, window_days
from backtest.settings import BacktestSettings, vault_guardrails
from strategy.allocator import AllocatorConfig
from strategy.targets import TargetParams

START = pd.Timestamp("2024-03-01", tz="UTC")
END = pd.Timestamp("2024-05-29", tz="UTC")  # 90 days
CAPITAL = 1_000_000


@pytest.fixture(scope="session")
def market() -> MarketData:
    """A synthetic market of 8 pools, 60 days of history before START, seed 3."""
    return synthetic_market(8, START, END, warmup_days=60, seed=3)


def make_setup(
    market: MarketData, start: pd.Timestamp = START, end: pd.Timestamp = END, rebalance_every: int = 1,
    settings: BacktestSettings | None = None, universe: list[str] | None = None,
) -> Setup:
    """A replay setup with default costs and guardrails over the largest pools at `start`."""
    settings = settings or BacktestSettings()
    days = window_days(market, start, end)
    pools = universe or largest_pools(market, days[0], settings.max_markets)
    allocator = AllocatorConfig(horizon_days=7, gas_cost=float(settings.gas_cost(1)),
                                slippage_bps=settings.slippage_bps)
    return Setup(market, days, vault_guardrails(settings, pools), allocator, TargetParams(), settings,
                 CAPITAL * settings.unit, rebalance_every)


@pytest.fixture
def setup_of() -> Callable[..., Setup]:
    return make_setup


def history_frame(rows: dict[str, list[tuple[float, float, float]]], start: str = "2024-01-01") -> pd.DataFrame:
    """A canonical daily history from {pool: [(apy, tvl_usd, price), ...]} (one tuple per day, None = no row)."""
    records = []
    for pool, days in rows.items():
        for offset, values in enumerate(days):
            if values is None:
                continue
            apy, tvl, price = values
            records.append({"timestamp": pd.Timestamp(start, tz="UTC") + pd.Timedelta(days=offset), "pool": pool,
                            "apy": apy, "apy_base": apy, "apy_reward": 0.0, "tvl_usd": tvl, "price": price,
                            "utilization": float("nan")})
    frame = pd.DataFrame(records)
    frame["timestamp"] = frame["timestamp"].astype("datetime64[us, UTC]")
    return frame.sort_values(["pool", "timestamp"], ignore_index=True)


def meta_frame(stable: dict[str, bool]) -> pd.DataFrame:
    """Pool metadata flagging which pools are stablecoin pools."""
    return pd.DataFrame({"pool": list(stable), "chain": "Ethereum", "project": "test-lend", "symbol": "ZUSD",
                         "stablecoin": list(stable.values()), "underlying_tokens": [[] for _ in stable]})

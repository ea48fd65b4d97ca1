"""Fixtures for the backtest tests: a small synthetic market, hand-made histories and a replay setup
built without a config file (the defaults of `backtest.settings` and the allocator)."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest

from backtest.engine import Setup
from backtest.market import (
    MarketData,
    default_universe,
    investable_pools,
    synthetic_market,
    window_days,
)
from backtest.settings import vault_guardrails
from config import BacktestSettings
from strategy.allocator import AllocatorConfig
from strategy.costs import ExecutionCosts, allocator_config
from strategy.data.schema import POOL, TIMESTAMP
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
    settings: BacktestSettings | None = None, universe: list[str] | None = None, costs: ExecutionCosts | None = None,
) -> Setup:
    """A replay setup with default costs and guardrails over the default universe (as `backtest.run`)."""
    settings, costs = settings or BacktestSettings(), costs or ExecutionCosts()
    days = window_days(market, start, end)
    investable = investable_pools(market, settings.asset_symbol)
    pools = universe or default_pools(market, start, end, settings)
    allocator = allocator_config(AllocatorConfig(horizon_days=7), costs, settings.gas_price_wei,
                                 settings.asset_decimals)
    return Setup(market, days, vault_guardrails(settings, pools), allocator, costs, TargetParams(), settings,
                 CAPITAL * settings.unit, rebalance_every, investable)


def default_pools(market: MarketData, start: pd.Timestamp, end: pd.Timestamp,
                  settings: BacktestSettings | None = None) -> list[str]:
    """The pools a run over [start, end] lists without a market list, in its order (`backtest.run.build_setup`)."""
    settings = settings or BacktestSettings()
    return default_universe(market, window_days(market, start, end), settings.max_markets,
                            investable_pools(market, settings.asset_symbol))


def every_pool(market: MarketData, day: pd.Timestamp) -> list[str]:
    """Every pool with data on `day`, the biggest TVL first (ties by id), whatever its asset: a universe of
    every kind of pool, for tests of the vault's mechanics rather than of which pools it may hold."""
    today = market.history[market.history[TIMESTAMP] == day]
    return today.sort_values(["tvl_usd", POOL], ascending=[False, True])[POOL].tolist()


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

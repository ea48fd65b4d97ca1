"""The data a backtest replays: a daily-aligned market history with optional news and pool metadata, its
point-in-time cuts, the backtest window on the daily grid and the default pool universe."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd

from backtest.errors import BacktestError, UsageError
from strategy.data import align_to_daily, load_market_history, load_news, load_pools
from strategy.data.schema import POOL, TIMESTAMP
from strategy.synthetic import generate_market


@dataclass(frozen=True)
class MarketData:
    """Canonical tables: `history` daily-aligned and sorted by (pool, timestamp); news sorted by timestamp."""

    history: pd.DataFrame
    news: pd.DataFrame | None
    pools: pd.DataFrame | None
    source: str
    _whole: MarketData | None = field(default=None, repr=False, compare=False)  # the data `until` cut from

    def until(self, at: pd.Timestamp) -> MarketData:
        """What was known at `at`: market rows and news items with timestamp <= at (pool metadata is static)."""
        news = None if self.news is None else self.news[self.news[TIMESTAMP] <= at]
        return MarketData(self.history[self.history[TIMESTAMP] <= at], news, self.pools, self.source,
                          self._whole or self)

    def model_features_on(self, day: pd.Timestamp) -> pd.DataFrame:
        """`strategy.models.dataset.model_features` of the pools with a row on `day`, indexed by pool.

        Computed once over the whole data this was cut from, then read by day: a replay asks every day, and
        rebuilding the features from the start each time cost a 2-year ML backtest ~0.35 s a day. That is the
        same answer as building them on this cut because every feature at t uses only data up to t, to the
        last bit (tests/strategy/test_features.py proves it; `vaultbot backtest lookahead` checks decisions).
        """
        if not self.history.empty and day > self.history[TIMESTAMP].max():
            raise ValueError(f"features on {day.date()} asked of data known at {self.history[TIMESTAMP].max().date()}")
        table = (self._whole or self)._model_features
        if day not in table.index.get_level_values(TIMESTAMP):
            return table.iloc[:0].droplevel(TIMESTAMP)
        return table.xs(day, level=TIMESTAMP)

    @cached_property
    def _model_features(self) -> pd.DataFrame:
        from strategy.models.dataset import model_features

        return model_features(self.history, self.news, self.pools)

    def stablecoin_pools(self) -> set[str]:
        """Pools the metadata flags as stablecoin pools (none without metadata)."""
        if self.pools is None:
            return set()
        return set(self.pools.loc[self.pools["stablecoin"].fillna(False).astype(bool), POOL])


def load_market(data: Path, news: Path | None = None, pools: Path | None = None) -> MarketData:
    """Market history (CSV, Parquet or DeFiLlama chart JSON), news (table or feeds) and a DeFiLlama `/pools`
    file, validated by `strategy.data` (a `DataError` names the file, record and field)."""
    for flag, path in (("--data", data), ("--news", news), ("--pools", pools)):
        if path is not None and not path.exists():
            raise BacktestError(f"{flag}: file not found: {path}")
    history = align_to_daily(load_market_history(data).frame)
    news_frame = load_news(news).frame if news is not None else None
    pools_frame = load_pools(pools) if pools is not None else None
    if news_frame is not None and pools_frame is None:
        raise BacktestError("--news needs --pools: news items are matched to pools through the pool metadata")
    return MarketData(history, news_frame, pools_frame, str(data))


def synthetic_market(n_pools: int, start: pd.Timestamp, end: pd.Timestamp, warmup_days: int, seed: int) -> MarketData:
    """A `strategy.synthetic` market from `warmup_days` before `start` to `end` (history to train on first)."""
    first = start - pd.Timedelta(days=warmup_days)
    days = (end - first).days + 1
    if n_pools < 1 or days < 2:
        raise BacktestError("the synthetic market needs at least one pool and two days")
    market = generate_market(n_pools=n_pools, days=days, seed=seed, start=first)
    return MarketData(market.history, market.news, market.pools, f"synthetic(pools={n_pools}, seed={seed})")


def window_days(market: MarketData, start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
    """Every day of [start, end] within the data's span: the grid a backtest steps through."""
    if start > end:
        raise UsageError(f"--start {start.date()} is after --end {end.date()}")
    stamps = market.history[TIMESTAMP]
    if stamps.empty:
        raise BacktestError(f"{market.source}: the market history is empty")
    first, last = max(start, stamps.min()), min(end, stamps.max())
    days = pd.date_range(first, last, freq="D") if first <= last else pd.DatetimeIndex([], tz="UTC")
    if len(days) < 2:
        raise BacktestError(
            f"empty window: the data covers {stamps.min().date()} to {stamps.max().date()}, "
            f"which leaves fewer than 2 days between --start {start.date()} and --end {end.date()}"
        )
    return days


def largest_pools(market: MarketData, day: pd.Timestamp, count: int) -> list[str]:
    """The `count` pools with the most TVL on `day` (ties by pool id), the default vault universe."""
    today = market.history[market.history[TIMESTAMP] == day]
    if today.empty:
        raise BacktestError(f"{market.source}: no pool has data on the first day of the window, {day.date()}")
    ranked = today.sort_values(["tvl_usd", POOL], ascending=[False, True])
    return ranked[POOL].head(count).tolist()


def require_known_pools(market: MarketData, pools: list[str]) -> None:
    """Every named pool must appear in the history."""
    known = set(market.history[POOL])
    unknown = [pool for pool in pools if pool not in known]
    if unknown:
        raise BacktestError(f"unknown pool in [backtest.guardrails.markets]: {unknown[0]} is not in {market.source}"
                            + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""))

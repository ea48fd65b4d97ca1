"""A cycle's model inputs: fetched from the sources, passed through the data gate, aligned and named by hash.

Fetched every cycle: `/pools` (metadata of the pools used), `/chart/{pool}` for each market's pool and each
extra pool, the configured news feeds and coin prices. Only the markets' pools and the coins pass the
gate (`keeper.sources.check_market` / `check_prices`): an extra pool that is stale still feeds the
cross-sectional features, but never stops a cycle. A gate refusal or a source failure raises (the cycle
records it and stops before anything reaches the chain).
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

from keeper.decision import inputs_hash
from keeper.sources import GateLimits, MissingDataError, Sources, check_market, check_prices
from strategy.data import align_to_daily
from strategy.data.schema import POOL, TIMESTAMP

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelInputs:
    """What the model sees at one cycle, daily-aligned, and the hash that names it."""

    history: pd.DataFrame  # canonical, aligned to UTC midnights, markets' pools and extra pools
    news: pd.DataFrame | None
    pools_meta: pd.DataFrame  # /pools rows of the pools in history (may lack some)
    at: pd.Timestamp  # the latest day every market's pool has a row for
    inputs_hash: str


def fetch_history(sources: Sources, pools: Sequence[str]) -> pd.DataFrame:
    """Canonical history of `pools` from `/chart/{pool}`, one after the other."""
    return pd.concat([sources.yields.chart(pool) for pool in pools], ignore_index=True)


def fetch_pools_meta(sources: Sources, pools: Sequence[str]) -> pd.DataFrame:
    """The `/pools` rows of `pools`; a pool DeFiLlama no longer lists is logged (its news cannot match)."""
    listed = sources.yields.pools()
    meta = listed[listed[POOL].isin(pools)].reset_index(drop=True)
    missing = sorted(set(pools) - set(meta[POOL]))
    if missing:
        log.warning("/pools does not list %s; their news features stay empty", ", ".join(missing))
    return meta


def gather_inputs(
    sources: Sources,
    *,
    market_pools: Sequence[str],
    extra_pools: Sequence[str],
    news_feeds: Sequence[str],
    price_coins: Sequence[str],
    price_days: int,
    limits: GateLimits,
    now: datetime,
) -> ModelInputs:
    """Fetches, gates and aligns everything one decision needs (see the module docstring)."""
    pools = list(dict.fromkeys([*market_pools, *extra_pools]))
    history = fetch_history(sources, pools)
    check_market(history[history[POOL].isin(market_pools)], now, required_pools=market_pools, limits=limits)
    if price_coins:
        start = now - timedelta(days=price_days - 1)
        check_prices(sources.prices.chart(price_coins, start=start, span=price_days), now, price_coins, limits)
    news = sources.news.fetch(news_feeds).items if news_feeds else None
    pools_meta = fetch_pools_meta(sources, pools)
    aligned = align_to_daily(history)
    at = decision_day(aligned, market_pools)
    # The snapshot's timestamp is when /pools was fetched, not data: it must not change the hash.
    tables = {"history": aligned, "pools": pools_meta.drop(columns=[TIMESTAMP], errors="ignore")}
    tables |= {"news": news} if news is not None else {}
    return ModelInputs(aligned, news, pools_meta, at, inputs_hash(at, tables))


def decision_day(aligned: pd.DataFrame, market_pools: Sequence[str]) -> pd.Timestamp:
    """The latest day on which every market's pool has a row: forecasts for all of them exist there."""
    last_days = aligned[aligned[POOL].isin(market_pools)].groupby(POOL)[TIMESTAMP].max()
    if last_days.empty:
        raise MissingDataError(f"no history for any market pool ({', '.join(market_pools)})")
    return last_days.min()

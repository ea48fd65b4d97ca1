"""A cycle's model inputs: fetched from the sources, passed through the data gate, aligned and named by hash.

Fetched every cycle: `/pools` (metadata of the pools used), `/chart/{pool}` for each market's pool and each
extra pool, the configured news feeds, the daily prices (DeFiLlama coins) of each pool's single underlying
token over the last `sources.price_history_days` days, and the prices of the `sources.price_coins` the gate
checks. `/chart` carries no price: the token prices are joined into the raw history point in time
(`strategy.data.prices.with_prices`) before it is aligned, so the peg features see them and the inputs hash
covers them; pools with several underlying tokens, or none, keep no price. Training at start joins the
same prices over its whole history (`with_token_prices`).

Only the markets' pools and the `price_coins` pass the gate (`sources.check_market` /
`check_prices`): an extra pool that is stale still feeds the cross-sectional features, but never stops a
cycle. A market's pool whose latest point is older than the gate's `max_age` is unknown (`unknown_pools`):
its feed stopped, so the keeper leaves the market as the backtest does (`strategy.allocator.UNKNOWN_MARKET`)
instead of refusing every cycle while money sits in a market nobody can see; only when every market's pool
is stale is the data refused as stale. A gate refusal or a source failure, the coins API's included, raises
(the cycle records it and stops before anything reaches the chain).
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

import pandas as pd

from sources import GateLimits, MissingDataError, Sources, check_market, check_prices
from sources.gate import stale_series
from strategy.data import align_to_daily
from strategy.data.prices import pool_coins, with_prices
from strategy.data.schema import POOL, TIMESTAMP
from strategy.decision_record import hash_of, input_tables, inputs_document

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelInputs:
    """What the model sees at one cycle, daily-aligned, and the document and hash that name it."""

    history: pd.DataFrame  # canonical, aligned to UTC midnights, markets' pools and extra pools
    news: pd.DataFrame | None
    pools_meta: pd.DataFrame  # /pools rows of the pools in history (may lack some)
    at: pd.Timestamp  # the latest day every market's pool that is not unknown has a row for
    unknown_pools: tuple[str, ...] = ()  # markets' pools whose feed is stale: to be left

    @cached_property
    def document(self) -> dict[str, Any]:
        """`strategy.decision_record.inputs_document` of the tables: what a decision bundle holds, built once."""
        return inputs_document(self.at, input_tables(self.history, self.news, self.pools_meta))

    @cached_property
    def inputs_hash(self) -> str:
        return hash_of(self.document)


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


def with_token_prices(sources: Sources, history: pd.DataFrame, pools_meta: pd.DataFrame, start: datetime,
                      days: int) -> pd.DataFrame:
    """`history` with `price` joined from the daily prices of its pools' single tokens over `days` days from
    `start`; nothing is fetched when no pool has a single token (`price` is then empty, but always there)."""
    return priced(history, pools_meta, token_prices(sources, pools_meta, start, days))


def token_prices(sources: Sources, pools_meta: pd.DataFrame, start: datetime, days: int) -> pd.DataFrame | None:
    """The daily prices of the pools' single tokens over `days` days from `start`; None, and nothing fetched,
    when no pool has a single token."""
    coins = sorted(set(pool_coins(pools_meta).values()))
    if not coins:
        return None
    prices = sources.prices.daily(coins, start, days)
    unpriced = sorted(set(coins) - set(prices["coin"]))
    if unpriced:
        log.warning("DeFiLlama coins has no prices for %s; their pools' peg features stay empty", ", ".join(unpriced))
    return prices


def priced(history: pd.DataFrame, pools_meta: pd.DataFrame, prices: pd.DataFrame | None) -> pd.DataFrame:
    """`history` with `price` joined from `token_prices` (empty, but always there, without any)."""
    if prices is None:
        return history if "price" in history else history.assign(price=float("nan"))
    return with_prices(history, pools_meta, prices)


def recent_token_prices(sources: Sources, history: pd.DataFrame, pools_meta: pd.DataFrame, at: pd.Timestamp,
                        days: int) -> pd.DataFrame:
    """`history` with token prices joined into the rows of its last `days` days up to `at` (daily labels, as
    `align_to_daily` gives them); older rows are left unpriced.

    A row labelled day D holds a point from (D - 1 day, D] and takes the price at or before it; a daily price
    point can fall at any hour of its own day, so prices are fetched from two days before the window's first
    day. The window is fixed by the data, not the clock: the same requests all day (the inputs hash does not
    move), and no first day left unpriced, whatever the hours of the points and of the prices.
    """
    return recently_priced(history, pools_meta, at, days, recent_prices(sources, pools_meta, at, days))


def recent_prices(sources: Sources, pools_meta: pd.DataFrame, at: pd.Timestamp, days: int) -> pd.DataFrame | None:
    """The token prices `recent_token_prices` joins: from two days before its window's first day."""
    return token_prices(sources, pools_meta, _first_recent_day(at, days) - pd.Timedelta(days=2), days + 2)


def recently_priced(history: pd.DataFrame, pools_meta: pd.DataFrame, at: pd.Timestamp, days: int,
                    prices: pd.DataFrame | None) -> pd.DataFrame:
    """`history` with `recent_prices` joined into the rows of the last `days` days up to `at`."""
    recent = (history[TIMESTAMP].dt.ceil("D") >= _first_recent_day(at, days)).to_numpy()
    return pd.concat([history[~recent], priced(history[recent], pools_meta, prices)], ignore_index=True)


def _first_recent_day(at: pd.Timestamp, days: int) -> pd.Timestamp:
    return at - pd.Timedelta(days=days - 1)


def history_days(history: pd.DataFrame) -> tuple[pd.Timestamp, int]:
    """The UTC midnight of `history`'s first day and the number of days up to and including its last."""
    if history.empty:
        raise MissingDataError("no /chart history for any pool")
    first, last = history[TIMESTAMP].min().floor("D"), history[TIMESTAMP].max().floor("D")
    return first, (last - first).days + 1


def gather_inputs(
    sources: Sources,
    *,
    market_pools: Sequence[str],
    extra_pools: Sequence[str],
    news_feeds: Sequence[str],
    price_coins: Sequence[str],
    price_days: int,
    price_history_days: int,
    limits: GateLimits,
    now: datetime,
    recall_news: Callable[[pd.DataFrame, pd.Timestamp], pd.DataFrame] | None = None,
) -> ModelInputs:
    """Fetches, gates and aligns everything one decision needs (see the module docstring); the very inputs of
    the last call when they are built from the same answers with the same pools unknown (`Answers.derived`), so
    that their document and features are not built again. `recall_news(items, at)`: the feeds' items with those
    they served before (`journal.news`), for the decision day `at`."""
    answers = sources.session.answers
    pools = list(dict.fromkeys([*market_pools, *extra_pools]))
    with answers.recording() as read:
        pools_meta = fetch_pools_meta(sources, pools)  # first: it names the tokens whose prices are joined
        history = fetch_history(sources, pools)
        live, unknown = gate_markets(history, market_pools, now, limits)
    if price_coins:  # checked, not held by the inputs: the clock moves their request on every call
        start = now - timedelta(days=price_days - 1)
        check_prices(sources.prices.chart(price_coins, start=start, span=price_days), now, price_coins, limits)
    with answers.recording() as read_next:
        news = sources.news.fetch(news_feeds).items if news_feeds else None
        at = decision_day(align_to_daily(history), live)
        prices = recent_prices(sources, pools_meta, at, price_history_days)
    if news is not None and recall_news is not None:
        news = recall_news(news, at)
    recalled = None if news is None else len(news)  # what was served before only adds to what the answers hold
    key = (tuple(read + read_next), tuple(pools), tuple(live), tuple(unknown), price_history_days, recalled)
    return answers.derived(key, lambda: ModelInputs(
        align_to_daily(recently_priced(history, pools_meta, at, price_history_days, prices)), news, pools_meta, at,
        tuple(unknown)))


def gate_markets(history: pd.DataFrame, market_pools: Sequence[str], now: datetime,
                 limits: GateLimits) -> tuple[list[str], list[str]]:
    """The markets' pools that are live and those that are unknown (stale); the gate on the live ones."""
    markets_history = history[history[POOL].isin(market_pools)]
    unknown = stale_series(markets_history, POOL, now, limits)
    live = [pool for pool in market_pools if pool not in unknown]
    if not live:  # every market's feed stopped: the data is stale, and the gate below says so
        live, unknown = list(market_pools), []
    elif unknown:
        log.warning("no fresh data for pool(s) %s: their markets are unknown and will be left", ", ".join(unknown))
    check_market(markets_history[markets_history[POOL].isin(live)], now, required_pools=live, limits=limits)
    return live, unknown


def decision_day(aligned: pd.DataFrame, market_pools: Sequence[str]) -> pd.Timestamp:
    """The latest day on which every market's pool has a row: forecasts for all of them exist there."""
    last_days = aligned[aligned[POOL].isin(market_pools)].groupby(POOL)[TIMESTAMP].max()
    if last_days.empty:
        raise MissingDataError(f"no history for any market pool ({', '.join(market_pools)})")
    return last_days.min()

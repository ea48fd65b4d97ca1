"""A stand-in for DeFiLlama on devnet: `strategy.synthetic` market data served in DeFiLlama's shapes.

`SyntheticLlama.generate(seed, days, pools)` picks `pools` stablecoin lending pools of a synthetic market
(deterministic by seed) of `days` days of history and `FUTURE_DAYS` more still to come, whose data covers
every day and passes the keeper's data gate on the day it starts on and on the last. A `SyntheticLlama` serves the
market as it stood on one of its days (`day`; `on(day)` moves it): only what happened by then. Its payloads
(`/pools`, `/chart/{pool}`, the coins API's `/chart/{chain:address,...}?start=&span=&period=1d` with the price
of every single-token pool's token, and an RSS feed of the market's news at `/news.xml`) move the timestamps
so that that day's point lies an hour before the current hour: the data stays fresh whatever day is served.
`serve_synthetic_llama` serves them on 127.0.0.1, for one day or, on each request, for the day a callable
names (`devnet.synthetic_sources` names the day the devnet's chain clock is on).

The keeper uses it when its config has a `[sources.synthetic]` table (devnet only): the yields and coins
base URLs and the news feed then point at this server. Tests build their DeFiLlama answers from the same
payloads.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from functools import cached_property
from typing import Any
from urllib.parse import parse_qsl, unquote
from xml.sax.saxutils import escape

import pandas as pd

from sources.gate import DataGateError, check_market
from strategy.data.prices import pool_coins
from strategy.data.schema import POOL, TIMESTAMP
from strategy.synthetic import PROTOCOLS, SyntheticMarket, generate_market
from vaultbot.wsgi import StartResponse, WsgiServer, serve_wsgi

NEWS_PATH = "/news.xml"
# Market days generated beyond the history a devnet starts with: its chain clock can run this far ahead (the
# demo moves it on a day or more per cycle) before the market stands still on its last day.
FUTURE_DAYS = 365
# Candidates drawn to find enough well-behaved lending pools.
_CANDIDATES_PER_POOL = 12


@dataclass(frozen=True)
class SyntheticLlama:
    """The chosen pools of a synthetic market as it stood on `day`, and their DeFiLlama payloads at any "now"."""

    market: SyntheticMarket  # every generated day, those after `day` too
    pool_ids: tuple[str, ...]
    day: pd.Timestamp  # the market day served: what happened by then is history, the rest has not happened yet

    @classmethod
    def generate(cls, seed: int = 7, days: int = 730, pools: int = 4,
                 future_days: int = FUTURE_DAYS) -> "SyntheticLlama":
        """The market on the last of `days` days of history, with `future_days` more to come."""
        if pools < 1:
            raise ValueError(f"pools must be at least 1, got {pools}")
        market = generate_market(n_pools=_CANDIDATES_PER_POOL * pools, days=days + future_days, seed=seed)
        start = market.history[TIMESTAMP].min() + pd.Timedelta(days=days - 1)
        chosen = _well_behaved_lending_pools(market, (start, market.history[TIMESTAMP].max()))
        if len(chosen) < pools:
            raise ValueError(f"synthetic market (seed {seed}) has only {len(chosen)} usable lending pools, "
                             f"{pools} wanted; try another seed")
        return cls(market, tuple(chosen[:pools]), start)

    def on(self, day: datetime) -> "SyntheticLlama":
        """The market as it stood on `day` (a day before the first or after the last generated one: that one)."""
        days = self.market.history[TIMESTAMP]
        return replace(self, day=min(max(pd.Timestamp(day).floor("D"), days.min()), days.max()))

    @cached_property
    def _past(self) -> pd.DataFrame:
        """The market's history up to `day`, timestamps as generated."""
        return self.market.history[self.market.history[TIMESTAMP] <= self.day]

    def history(self, now: datetime) -> pd.DataFrame:
        """Canonical history of the chosen pools up to `day`, which lies an hour before the current hour."""
        rows = self._past[self._past[POOL].isin(self.pool_ids)]
        return rows.assign(**{TIMESTAMP: rows[TIMESTAMP] + self._shift(now)})

    def news(self, now: datetime) -> pd.DataFrame:
        news = self.market.news.assign(**{TIMESTAMP: self.market.news[TIMESTAMP] + self._shift(now)})
        return news[news[TIMESTAMP] <= pd.Timestamp(now)]

    def _shift(self, now: datetime) -> pd.Timedelta:
        return pd.Timestamp(now).floor("h") - pd.Timedelta(hours=1) - self.day

    @cached_property
    def _latest(self) -> pd.DataFrame:
        """Each chosen pool's point on `day`, by pool."""
        return self._past[self._past[POOL].isin(self.pool_ids)].groupby(POOL).tail(1).set_index(POOL)

    def apys(self) -> dict[str, float]:
        """Each chosen pool's APY (percent) on `day`, as `/pools` serves it."""
        apy = self._latest["apy"]
        return {pool: float(apy[pool]) for pool in self.pool_ids}

    def pools_payload(self, now: datetime) -> dict[str, Any]:
        """`GET /pools`: the chosen pools as of their point on `day`."""
        latest = self._latest
        meta = self.market.pools.set_index(POOL)
        data = [
            {
                "pool": pool, "chain": meta.at[pool, "chain"], "project": meta.at[pool, "project"],
                "symbol": meta.at[pool, "symbol"], "tvlUsd": float(latest["tvl_usd"][pool]),
                "apy": float(latest["apy"][pool]), "apyBase": float(latest["apy_base"][pool]),
                "apyReward": float(latest["apy_reward"][pool]), "apyMean30d": None,
                "stablecoin": bool(meta.at[pool, "stablecoin"]), "ilRisk": "no", "exposure": "single",
                "underlyingTokens": list(meta["underlying_tokens"][pool]), "rewardTokens": [], "poolMeta": None,
            }
            for pool in self.pool_ids
        ]
        return {"status": "success", "data": data}

    def chart_payload(self, pool: str, now: datetime) -> dict[str, Any]:
        """`GET /chart/{pool}`: one point a day, ISO timestamps with milliseconds as DeFiLlama writes them."""
        if pool not in self.pool_ids:
            raise KeyError(pool)
        rows = self.history(now)
        rows = rows[rows[POOL] == pool]
        data = [
            {"timestamp": ts.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "tvlUsd": tvl, "apy": apy, "apyBase": base,
             "apyReward": reward, "il7d": None, "apyBase7d": None}
            for ts, tvl, apy, base, reward in zip(rows[TIMESTAMP], rows["tvl_usd"], rows["apy"], rows["apy_base"],
                                                  rows["apy_reward"], strict=True)
        ]
        return {"status": "success", "data": data}

    @cached_property
    def _coin_prices(self) -> pd.DataFrame:
        """(timestamp, coin, symbol, price) of every single-token pool's token up to `day`, unshifted; a token priced
        by several pools (or chains) has the same price in each."""
        coins = pool_coins(self.market.pools)
        rows = self._past[self._past[POOL].isin(coins)]
        symbols = self.market.pools.set_index(POOL)["symbol"]
        prices = pd.DataFrame({TIMESTAMP: rows[TIMESTAMP], "coin": rows[POOL].map(coins),
                               "symbol": rows[POOL].map(symbols), "price": rows["price"]})
        return prices.drop_duplicates(["coin", TIMESTAMP]).sort_values(["coin", TIMESTAMP], ignore_index=True)

    def coins_chart_payload(self, coins: Sequence[str], start: datetime, span: int, now: datetime) -> dict[str, Any]:
        """Coins `GET /chart/{coins}?start=&span=&period=1d`: each known coin's daily points from `start` for
        `span` days (unknown coins are left out, as DeFiLlama does); unix-second timestamps."""
        prices = self._coin_prices.assign(**{TIMESTAMP: self._coin_prices[TIMESTAMP] + self._shift(now)})
        first = pd.Timestamp(start)
        window = prices[prices["coin"].isin(coins) & (prices[TIMESTAMP] >= first)
                        & (prices[TIMESTAMP] < first + pd.Timedelta(days=span))]
        return {"coins": {
            coin: {"symbol": rows["symbol"].iloc[0], "decimals": 18, "confidence": 0.99,
                   "prices": [{"timestamp": int(ts.timestamp()), "price": float(price)}
                              for ts, price in zip(rows[TIMESTAMP], rows["price"], strict=True)]}
            for coin, rows in window.groupby("coin", sort=True)
        }}

    def news_feed(self, now: datetime) -> bytes:
        """RSS 2.0 with every news item of the market published by `now`."""
        items = "".join(
            f"<item><title>{escape(title)}</title><link>{escape(url)}</link>"
            f"<pubDate>{format_datetime(ts.to_pydatetime(), usegmt=True)}</pubDate>"
            f"<description>{escape(summary)}</description></item>"
            for ts, title, url, summary in zip(*(self.news(now)[c] for c in (TIMESTAMP, "title", "url", "summary")),
                                               strict=True)
        )
        return (
            '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>synthetic DeFi news</title>'
            f"<link>https://news.example/</link><description>strategy.synthetic</description>{items}</channel></rss>"
        ).encode()


def llama_app(current: Callable[[], SyntheticLlama],
              clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Callable[..., Iterable[bytes]]:
    """Serves `/pools`, `/chart/{pool}`, the coins `/chart/{coins}` and `/news.xml` of the market `current()`
    names, as of `clock()`."""
    import json

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path, now, llama = unquote(environ.get("PATH_INFO", "")), clock(), current()
        if path == "/pools":
            return _respond(start_response, "application/json", json.dumps(llama.pools_payload(now)).encode())
        if is_coins_chart(path):
            try:
                coins, start, span = coins_chart_request(path, dict(parse_qsl(environ.get("QUERY_STRING", ""))))
            except ValueError as error:
                return _respond(start_response, "text/plain", f"{error}\n".encode(), "400 Bad Request")
            body = json.dumps(llama.coins_chart_payload(coins, start, span, now)).encode()
            return _respond(start_response, "application/json", body)
        if path.startswith("/chart/") and path.removeprefix("/chart/") in llama.pool_ids:
            body = json.dumps(llama.chart_payload(path.removeprefix("/chart/"), now)).encode()
            return _respond(start_response, "application/json", body)
        if path == NEWS_PATH:
            return _respond(start_response, "application/rss+xml", llama.news_feed(now))
        return _respond(start_response, "text/plain", f"no such path {path}\n".encode(), "404 Not Found")

    return app


def is_coins_chart(path: str) -> bool:
    """A coins `/chart/{chain:address,...}` path (pool ids of the yields `/chart/{pool}` have no colon)."""
    return path.startswith("/chart/") and ":" in path


def coins_chart_request(path: str, params: Mapping[str, str]) -> tuple[list[str], datetime, int]:
    """The coins, start and span of a coins chart request; ValueError names a bad or unsupported parameter."""
    coins = [coin for coin in path.removeprefix("/chart/").split(",") if coin]
    if params.get("period", "1d") != "1d":
        raise ValueError(f"period {params['period']!r} is not served; only 1d")
    try:
        start, span = int(params["start"]), int(params["span"])
    except (KeyError, ValueError) as error:
        raise ValueError(f"start and span must be integers (unix seconds, points): {error}") from None
    if span < 1:
        raise ValueError(f"span must be at least 1, got {span}")
    return coins, datetime.fromtimestamp(start, UTC), span


def serve_synthetic_llama(llama: SyntheticLlama | Callable[[], SyntheticLlama], host: str = "127.0.0.1",
                          port: int = 0) -> WsgiServer:
    """Serves `llama`, or on each request the market the callable `llama` names."""
    current = llama if callable(llama) else lambda: llama
    return serve_wsgi(llama_app(current), host, port, name="synthetic-llama")


def _respond(start_response: StartResponse, content_type: str, body: bytes, status: str = "200 OK") -> list[bytes]:
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def _well_behaved_lending_pools(market: SyntheticMarket, days: Sequence[pd.Timestamp]) -> list[str]:
    """Stablecoin lending pools with a row every day whose step to each of `days` passes the default data gate."""
    meta = market.pools
    lending = meta[meta["project"].map(PROTOCOLS).eq("lending") & meta["stablecoin"]][POOL]
    rows_per_pool = market.history.groupby(POOL).size()
    every_day = market.history[TIMESTAMP].nunique()
    chosen = []
    for pool in lending:
        if rows_per_pool.get(pool, 0) != every_day:
            continue
        rows = market.history[market.history[POOL] == pool]
        try:
            for day in days:
                tail = rows[rows[TIMESTAMP] <= day].tail(2)
                check_market(tail, day.to_pydatetime() + timedelta(hours=1))
        except DataGateError:
            continue
        chosen.append(pool)
    return chosen

"""Recording DeFiLlama yields and news feeds to disk, in the layout the data loaders read, so that backtests
and model evaluation can run on real history (and tests can replay real answers):

    DIR/market_history.parquet  the charts as one canonical table, with the coin prices of the pools'
                                single underlying tokens joined as the keeper joins them (--data)
    DIR/pools.json          the /pools answer as served         (--pools DIR/pools.json)
    DIR/charts/<pool>.json  each chosen pool's /chart answer     (--data DIR/charts: the same, without prices)
    DIR/news/<feed>.xml     each feed as served                  (--news DIR/news)
    DIR/manifest.json       when and from where, the selection, rows and days per pool, and what failed

Every answer passes the parser the keeper uses before it is written, so a malformed answer is a reported
failure, never a file; files are written whole or not at all (temporary file, then rename). One pool or
feed failing does not stop the others: it is listed in the manifest, and a re-run fetches it again.
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TypeVar

import pandas as pd

from sources import SourceError, Sources
from sources.inputs import history_days, with_token_prices
from strategy.data.schema import POOL, TIMESTAMP
from strategy.data.universe import is_stablecoin_lending

POOLS_FILE, CHARTS_DIR, NEWS_DIR, MANIFEST_FILE = "pools.json", "charts", "news", "manifest.json"
TABLE_FILE = "market_history.parquet"
PRICES_KEY = "coin prices"  # under which a failure of the coins API is listed
Fetched = TypeVar("Fetched")


class SelectionError(ValueError):
    """The pool selection matches nothing, or names pools DeFiLlama does not list."""


@dataclass(frozen=True)
class PoolSelection:
    """Which pools to record: the `top` by TVL among those passing every given filter, or exactly `pools`.

    Filters compare case-insensitively; an empty tuple does not filter.
    """

    chains: tuple[str, ...] = ()
    projects: tuple[str, ...] = ()
    symbols: tuple[str, ...] = ()
    stablecoin_only: bool = True  # only stablecoin lending pools (`strategy.data.universe`), never an LP pair
    min_tvl_usd: float = 0.0
    top: int = 20
    pools: tuple[str, ...] = ()  # explicit pool ids; the filters are then ignored

    def choose(self, listed: pd.DataFrame) -> list[str]:
        """Pool ids from a parsed /pools table, biggest TVL first (or in the order given)."""
        if self.pools:
            unknown = [pool for pool in self.pools if pool not in set(listed[POOL])]
            if unknown:
                raise SelectionError(f"DeFiLlama /pools does not list pool {unknown[0]}"
                                     + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""))
            return list(dict.fromkeys(self.pools))
        keep = listed["tvl_usd"].fillna(0) >= self.min_tvl_usd
        if self.stablecoin_only:
            keep &= is_stablecoin_lending(listed)
        for column, wanted in (("chain", self.chains), ("project", self.projects), ("symbol", self.symbols)):
            if wanted:
                keep &= listed[column].str.lower().isin([value.lower() for value in wanted])
        chosen = listed[keep].sort_values(["tvl_usd", POOL], ascending=[False, True]).head(self.top)
        if chosen.empty:
            raise SelectionError(f"no pool of the {len(listed)} DeFiLlama lists passes the selection {self}")
        return chosen[POOL].tolist()


@dataclass
class Recording:
    """What a run wrote (paths relative to `directory`) and what failed (URL or pool -> reason)."""

    directory: Path
    started: str
    yields_base_url: str
    selection: dict
    pools: dict[str, dict] = field(default_factory=dict)  # pool -> rows, first_day, last_day, project, symbol
    feeds: dict[str, dict] = field(default_factory=dict)  # feed URL -> file, items
    table: dict | None = None  # file, rows, rows with a price, pools with a price
    failures: dict[str, str] = field(default_factory=dict)

    def manifest(self) -> dict:
        document = asdict(self)
        document["directory"] = str(self.directory)
        return document


# What a pool id may be to name its chart's file: DeFiLlama's are UUIDs; no separator, no leading dot.
_SAFE_POOL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,199}")


def record(sources: Sources, directory: Path, selection: PoolSelection, feeds: Sequence[str] = (),
           on_step: Callable[[str], None] | None = None) -> Recording:
    """Fetch /pools, the chosen pools' charts and `feeds` into `directory` (see the module docstring).

    Raises SourceError when /pools itself cannot be read and SelectionError when the selection is empty or
    names unknown pools (nothing is written then); a failing chart or feed is recorded in `failures`.
    """
    listed, body = sources.yields.pools_with_body()
    chosen = selection.choose(listed)
    recording = Recording(directory, datetime.now(UTC).isoformat(timespec="seconds"), sources.yields.base_url,
                          asdict(selection))
    _write(directory / POOLS_FILE, body)
    meta, charts = listed.set_index(POOL), []
    for pool in chosen:
        if not _SAFE_POOL_ID.fullmatch(pool):  # it names a file: "../../x" or "/etc/x" would write elsewhere
            recording.failures[pool] = f"pool id {pool[:80]!r} is not a plain file name; not recorded"
            continue
        fetched = _attempt(recording, pool, f"chart {pool}", partial(sources.yields.chart_with_body, pool), on_step)
        if fetched is None:
            continue
        chart, body = fetched
        charts.append(chart)
        _write(directory / CHARTS_DIR / f"{pool}.json", body)
        recording.pools[pool] = {
            "project": meta.at[pool, "project"], "symbol": meta.at[pool, "symbol"], "chain": meta.at[pool, "chain"],
            "rows": len(chart),
            "first_day": None if chart.empty else chart[TIMESTAMP].min().date().isoformat(),
            "last_day": None if chart.empty else chart[TIMESTAMP].max().date().isoformat(),
        }
    history = pd.concat(charts, ignore_index=True) if charts else None
    if history is not None and not history.empty:  # charts of no point make no table, and need no prices
        _record_table(recording, sources, history, listed, on_step)
    for url in feeds:
        fetched = _attempt(recording, url, f"feed {url}", partial(sources.news.feed, url), on_step)
        if fetched is None:
            continue
        items, body = fetched
        name = feed_file_name(url, taken=[entry["file"] for entry in recording.feeds.values()])
        _write(directory / NEWS_DIR / name, body)
        recording.feeds[url] = {"file": f"{NEWS_DIR}/{name}", "items": len(items)}
    _write(directory / MANIFEST_FILE, json.dumps(recording.manifest(), indent=1).encode())
    return recording


def _record_table(recording: Recording, sources: Sources, history: pd.DataFrame, listed: pd.DataFrame,
                  on_step: Callable[[str], None] | None) -> None:
    """`TABLE_FILE`: the recorded charts with their pools' coin prices (`sources.inputs.with_token_prices`)."""
    meta = listed[listed[POOL].isin(set(history[POOL]))]
    start, days = history_days(history)
    priced = _attempt(recording, PRICES_KEY, "coin prices",
                      partial(with_token_prices, sources, history, meta, start.to_pydatetime(), days), on_step)
    if priced is None:
        return
    table = io.BytesIO()
    priced.to_parquet(table, index=False)
    _write(recording.directory / TABLE_FILE, table.getvalue())
    with_price = priced["price"].notna()
    recording.table = {"file": TABLE_FILE, "rows": len(priced), "priced_rows": int(with_price.sum()),
                       "priced_pools": int(priced.loc[with_price, POOL].nunique())}


def _attempt(recording: Recording, key: str, step: str, fetch: Callable[[], Fetched],
             on_step: Callable[[str], None] | None) -> Fetched | None:
    """`fetch()`, or None with the failure noted under `key`: one source failing does not stop the others."""
    if on_step is not None:
        on_step(step)
    try:
        return fetch()
    except SourceError as error:
        recording.failures[key] = str(error)
        return None


def feed_file_name(url: str, taken: Sequence[str] = ()) -> str:
    """A file name for a feed (the loader names the news source after it): host and path as a slug, .xml."""
    slug = re.sub(r"[^a-z0-9]+", "-", url.lower().split("://", 1)[-1]).strip("-")[:80] or "feed"
    name, counter = f"{slug}.xml", 2
    while f"{NEWS_DIR}/{name}" in taken:
        name, counter = f"{slug}-{counter}.xml", counter + 1
    return name


def _write(path: Path, body: bytes) -> None:
    """`body` at `path`, whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    unfinished = path.with_name(path.name + ".partial")
    unfinished.write_bytes(body)
    os.replace(unfinished, path)

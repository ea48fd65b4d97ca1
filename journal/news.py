"""The news items the keeper has been served, kept in its journal.

A feed serves its latest items only (a real one some 10 to 50, a day or two of news), while the news features
count a pool's items over windows of up to 30 days (`strategy.features.DEFAULT_WINDOWS`) and a model trains on
every day it has. Without a memory the keeper would see a day of news where its model learned a month's, and
train on news for its last day or two only. So every item served is kept (`NewsItem`: once, by its feed and
link, as feed readers tell items apart: a title or a date edited later is the same story; an item without a link
by its time and title), and a cycle reads the items its feeds serve with
those they served before within `RECALLED_DAYS` of its decision day (what the features can read, twice over:
a decision bundle holds its inputs, and must not grow with the keeper's age); training reads them all.

A feed's newest `MAX_KEPT_PER_FEED` items (by their time) are kept, its older ones dropped, as feed readers keep
so many articles per feed: years of a real feed, while a hostile one serving thousands of new items every cycle
cannot grow the journal, or what training reads, without bound.

While every item kept is still served (a keeper's first cycle, or a feed that serves its whole history) a cycle
reads exactly what its feeds serve, as before this memory existed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Hashable, Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from journal.db import DamagedRow, KeeperDB, NewsItem
from strategy.data import validate_news
from strategy.data.news import MAX_FEED_ITEMS
from strategy.data.schema import NEWS_COLUMNS, TIMESTAMP
from strategy.features import DEFAULT_WINDOWS

RECALLED_DAYS = 2 * max(DEFAULT_WINDOWS)
# The most items of one feed a cycle recalls, the newest: a real feed serves some 10 a day (600 in RECALLED_DAYS),
# while a hostile one may serve MAX_FEED_ITEMS new ones every cycle, which would make each cycle's news (and its
# sentiment scoring) grow cycle after cycle.
MAX_RECALLED_PER_FEED = MAX_FEED_ITEMS
# The most items of one feed kept, the newest: 100,000 is over 5 years of a feed serving 50 a day (a real one serves
# some 10), so no normal feed loses an item; a hostile one holds at most some 200 MB of text (2,000 characters an item).
MAX_KEPT_PER_FEED = 10 * MAX_FEED_ITEMS
_DELETED_AT_ONCE = 500  # identities in one DELETE: far below SQLite's limit on an SQL statement's parameters

Identity = tuple[str, str | None, int | None, str | None]  # feed, link; or feed, Unix microseconds and title


class NewsArchive:
    """The items kept in one keeper's journal, held in memory as a canonical news table (oldest first; items of
    one time in the order they were first seen)."""

    def __init__(self, db: KeeperDB) -> None:
        self._db = db
        with db.session() as session:  # inside it, a DamagedRow names the journal
            records = [_record(row_id, item) for row_id, item in
                       session.execute(select(NewsItem.id, NewsItem.item).order_by(NewsItem.id))]
        kept = validate_news(pd.DataFrame(records, columns=list(NEWS_COLUMNS), dtype=object),
                             where="the journal's news items").frame
        newest = _newest_mask(kept, MAX_KEPT_PER_FEED)  # a journal written before the bound may hold more
        with db.session() as session:
            _delete(session, _identities(kept[~newest]))
        self._items = kept[newest].reset_index(drop=True)
        self._seen: set[Identity] = set(_identities(self._items))

    @property
    def items(self) -> pd.DataFrame:
        return self._items

    def keep(self, items: pd.DataFrame) -> None:
        """Keep the canonical news `items` not kept yet (committed before this returns)."""
        self._keep(items, _identities(items))

    def with_kept(self, items: pd.DataFrame, since: pd.Timestamp | None = None) -> pd.DataFrame:
        """`items` with the kept items they lack (those at or after `since`, when given), oldest first; `items`
        itself when it lacks none."""
        return self._with_kept(items, set(_identities(items)), since)

    def recall(self, items: pd.DataFrame, at: pd.Timestamp) -> pd.DataFrame:
        """A cycle's news: keep what the feeds served, and read it with what they served before within
        RECALLED_DAYS of the decision day `at`."""
        identities = _identities(items)  # once: every cycle reads its feeds' items here
        self._keep(items, identities)
        return self._with_kept(items, set(identities), at - pd.Timedelta(days=RECALLED_DAYS))

    def _keep(self, items: pd.DataFrame, identities: list[Identity]) -> None:
        firsts: list[int] = []  # the positions of the stories not kept yet, the first of one served twice
        new: set[Identity] = set()
        for position, identity in enumerate(identities):
            if identity not in self._seen and identity not in new:
                new.add(identity)
                firsts.append(position)
        if not firsts:
            return
        fresh = items.iloc[firsts].reset_index(drop=True)
        combined, order = _ordered([self._items, fresh])
        newest = _newest_mask(combined, MAX_KEPT_PER_FEED)
        was_fresh = order >= len(self._items)
        stored = sorted(order[was_fresh & newest] - len(self._items))  # a story older than a full feed's: never
        dropped = _identities(combined[~was_fresh & ~newest])
        with self._db.session() as session:
            session.add_all(NewsItem(identity=_hashed(identities[firsts[position]]), item=_item_json(record))
                            for position, record in zip(stored, fresh.iloc[stored].to_dict("records"), strict=True))
            _delete(session, dropped)
        self._seen |= {identities[firsts[position]] for position in stored}
        self._seen.difference_update(dropped)
        self._items = combined[newest].reset_index(drop=True)

    def _with_kept(self, items: pd.DataFrame, served: set[Identity], since: pd.Timestamp | None) -> pd.DataFrame:
        kept = self._items if since is None else self._items[self._items[TIMESTAMP] >= since]
        missing = [identity not in served for identity in _identities(kept)]
        if not any(missing):
            return items
        recalled = kept[np.asarray(missing)]
        if since is not None:  # a cycle's (training reads everything kept)
            recalled = _newest_per_feed(recalled, MAX_RECALLED_PER_FEED)
        return _in_order([items, recalled])


def _newest_per_feed(items: pd.DataFrame, most: int) -> pd.DataFrame:
    """The newest `most` of each feed's `items` (oldest first, as kept)."""
    newest = _newest_mask(items, most)
    return items if newest.all() else items[newest]


def _newest_mask(items: pd.DataFrame, most: int) -> np.ndarray:
    """Whether each of `items` (oldest first) is among the newest `most` of its feed."""
    return (items.groupby("source", sort=False).cumcount(ascending=False) < most).to_numpy()


def _delete(session: Session, identities: list[Identity]) -> None:
    """The kept items of these `identities` deleted from the journal."""
    hashes = [_hashed(identity) for identity in identities]
    for start in range(0, len(hashes), _DELETED_AT_ONCE):
        session.execute(delete(NewsItem).where(NewsItem.identity.in_(hashes[start:start + _DELETED_AT_ONCE])))


def _record(row_id: int, item: str) -> dict[str, Any]:
    try:
        record = json.loads(item)
    except json.JSONDecodeError as error:
        raise DamagedRow(NewsItem.__tablename__, row_id, f"item is not JSON ({error})") from None
    if not isinstance(record, dict):
        raise DamagedRow(NewsItem.__tablename__, row_id, "item is not a JSON object")
    return record


def _identities(items: pd.DataFrame) -> list[Identity]:
    microseconds = items[TIMESTAMP].astype("datetime64[us, UTC]").astype("int64").tolist()
    return [(source, link, None, None) if isinstance(link, str) else (source, None, time, title)
            for source, link, time, title in zip(items["source"].tolist(), items["url"].tolist(), microseconds,
                                                 items["title"].tolist(), strict=True)]


def _hashed(identity: Identity) -> str:
    return hashlib.sha256(json.dumps(list(identity)).encode("utf-8")).hexdigest()


def _item_json(record: Mapping[Hashable, Any]) -> str:
    """One item as JSON: its time as UTC ISO text with microseconds, missing text as null."""
    values = {column: (None if record[column] is None or record[column] != record[column] else record[column])
              for column in NEWS_COLUMNS}
    values[TIMESTAMP] = pd.Timestamp(record[TIMESTAMP]).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return json.dumps(values)


def _in_order(tables: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """The tables' items as one table, oldest first, items of one time in the order given (as the news checks
    order a feed's)."""
    return _ordered(tables)[0]


def _ordered(tables: Iterable[pd.DataFrame]) -> tuple[pd.DataFrame, np.ndarray]:
    """`_in_order`, and where each of its items stood in the tables one after another."""
    combined = pd.concat(list(tables), ignore_index=True)
    order = combined[TIMESTAMP].argsort(kind="stable").to_numpy()
    return combined.iloc[order].reset_index(drop=True), order

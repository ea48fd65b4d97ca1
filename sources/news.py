"""News headlines from RSS 2.0 / Atom feeds; one broken feed is logged and skipped, all broken is an error.

Feeds are parsed by `strategy.data.news.parse_feed` (a plain feed with xml.etree, any other with feedparser).
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import pandas as pd
import requests

from sources.http import SourceError, fetch_content_body
from strategy.data.news import parse_feed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NewsBatch:
    """Headlines from the feeds that worked, and why each other feed failed (by URL)."""

    items: pd.DataFrame
    failures: dict[str, str]


class NewsFeeds:
    """Reads any number of feeds through the shared session."""

    def __init__(self, session: requests.Session) -> None:
        self._session = session

    def feed(self, url: str) -> tuple[pd.DataFrame, bytes]:
        """The headlines of one feed, and its body as served."""
        return fetch_content_body(self._session, url, partial(parse_feed, source=url))

    def fetch(self, feed_urls: Sequence[str]) -> NewsBatch:
        """All headlines of `feed_urls`; raises `SourceError` only when every feed fails."""
        if not feed_urls:
            raise ValueError("feed_urls must name at least one feed")
        frames: list[pd.DataFrame] = []
        failures: dict[str, str] = {}
        for url in feed_urls:
            try:
                frames.append(self.feed(url)[0])
            except SourceError as exc:
                log.warning("skipping news feed: %s", exc)
                failures[url] = exc.reason
        if not frames:
            raise SourceError(", ".join(feed_urls), f"all {len(feed_urls)} news feed(s) failed")
        if failures:
            log.warning("%d of %d news feed(s) failed", len(failures), len(feed_urls))
        return NewsBatch(items=pd.concat(frames, ignore_index=True), failures=failures)

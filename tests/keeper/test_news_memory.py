"""The keeper's memory of news (`journal.news`): what a feed stopped serving is still read within the features'
reach, kept in the journal across restarts, on SQLite and PostgreSQL."""

from collections.abc import Iterator
from datetime import datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import pandas as pd
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

import journal.news
from devnet.llama_server import SyntheticLlama
from journal.db import KeeperDB, sqlite_url
from journal.news import RECALLED_DAYS, NewsArchive
from sources import Sources
from sources.inputs import ModelInputs, gather_inputs
from strategy.data import validate_news
from strategy.data.news import parse_feed
from strategy.data.schema import TIMESTAMP
from tests.keeper.llama_payloads import serve_llama, utc_now
from tests.keeper.postgres import database_url, postgres, postgres_url
from tests.keeper.test_cycle_inputs import DEFAULT_LIMITS, sources_of
from tests.shared_data import recorded_answer

FEED_PATH = "/latest.xml"  # a feed of the latest items only, as real ones are


@pytest.fixture(scope="module")
def llama() -> SyntheticLlama:
    return SyntheticLlama.generate(seed=11, days=120, pools=2)


@pytest.fixture
def sources(httpserver: HTTPServer, tmp_path: Path) -> Iterator[Sources]:
    opened = sources_of(httpserver, tmp_path / "cache", cache_expire_seconds=0.001)  # each cycle asks again
    yield opened
    opened.close()


def rss(items: list[tuple[str, datetime]]) -> bytes:
    """A plain feed of (title, time) items, each linked by its title's first word."""
    entries = "".join(f"<item><title>{escape(title)}</title><link>https://news.example/{title.split()[0]}</link>"
                      f"<description>{escape(title)} in full</description>"
                      f"<pubDate>{format_datetime(published, usegmt=True)}</pubDate></item>"
                      for title, published in items)
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>latest</title>{entries}'
            "</channel></rss>").encode()


class Feed:
    """What the feed serves now."""

    def __init__(self, server: HTTPServer) -> None:
        self.items: list[tuple[str, datetime]] = []
        server.expect_request(FEED_PATH).respond_with_handler(
            lambda _request: Response(rss(self.items), content_type="application/rss+xml"))
        self.url = server.url_for(FEED_PATH)


def gathered(sources: Sources, llama: SyntheticLlama, feed: Feed, archive: NewsArchive | None) -> ModelInputs:
    return gather_inputs(sources, market_pools=list(llama.pool_ids), extra_pools=[], news_feeds=[feed.url],
                         price_coins=[], price_days=3, price_history_days=60, limits=DEFAULT_LIMITS, now=utc_now(),
                         recall_news=None if archive is None else archive.recall)


def news_of(inputs: ModelInputs) -> pd.DataFrame:
    assert inputs.news is not None  # a feed is read
    return inputs.news


def titles(news: pd.DataFrame) -> list[str]:
    return news["title"].tolist()


def test_a_cycle_reads_what_its_feed_stopped_serving_within_the_features_reach(httpserver, sources, llama,
                                                                               tmp_path) -> None:
    serve_llama(httpserver, llama)
    feed = Feed(httpserver)
    now = utc_now().replace(microsecond=0)
    long_ago = now - timedelta(days=RECALLED_DAYS + 5)
    feed.items = [("Aave governance vote", now - timedelta(hours=30)), ("Old news", long_ago),
                  ("USDC supply grows", now - timedelta(hours=3))]
    archive = NewsArchive(KeeperDB(sqlite_url(tmp_path / "keeper.sqlite")))

    first = gathered(sources, llama, feed, archive)
    served_only = gathered(sources, llama, feed, None)
    # all it keeps is still served: the very table of the feed, and the same inputs hash
    pd.testing.assert_frame_equal(news_of(first), news_of(served_only), check_exact=True)
    assert first.inputs_hash == served_only.inputs_hash

    feed.items = [("Compound market paused", now - timedelta(hours=1))]  # the others fell off the feed
    second = gathered(sources, llama, feed, archive)
    assert titles(news_of(second)) == ["Aave governance vote", "USDC supply grows", "Compound market paused"]
    # a story is its link: served again with its date moved (and its title edited) it is read once, as served
    feed.items = [("Aave governance vote, updated", now - timedelta(minutes=30))]
    moved = news_of(gathered(sources, llama, feed, archive))
    assert titles(moved) == ["USDC supply grows", "Compound market paused", "Aave governance vote, updated"]
    feed.items = [("Compound market paused", now - timedelta(hours=1))]
    assert second.inputs_hash != gathered(sources, llama, feed, None).inputs_hash
    assert titles(news_of(gathered(sources, llama, feed, None))) == ["Compound market paused"]
    # training reads every item ever served, the one beyond the features' reach too
    everything = archive.with_kept(news_of(second))
    assert titles(everything) == ["Old news", "Aave governance vote", "USDC supply grows", "Compound market paused"]
    assert everything[TIMESTAMP].is_monotonic_increasing


def test_the_journal_keeps_the_items_across_a_restart(database_url: str) -> None:
    served = validate_news(pd.DataFrame({
        TIMESTAMP: ["2024-06-01T08:00:00.123456Z", "2024-06-01T08:00:00.123456Z", "2024-05-30T00:00:00Z"],
        "title": ["Ünïcode \x00 title", "Same time, other title", "Earlier"],
        "source": ["https://a.example/feed", "https://a.example/feed", "https://b.example/rss"],
        "url": ["https://a.example/1", None, "https://b.example/3"],
        "summary": [None, "text", "  spaced  "],
    }), where="test").frame
    db = KeeperDB(database_url)
    try:
        archive = NewsArchive(db)
        archive.keep(served.iloc[[0]])
        archive.keep(served)  # the first item again, and two more
        assert len(archive.items) == 3
        reopened = NewsArchive(KeeperDB(database_url))
        pd.testing.assert_frame_equal(reopened.items, archive.items, check_exact=True)
        assert titles(reopened.items) == ["Earlier", "Ünïcode \x00 title", "Same time, other title"]
        assert reopened.with_kept(served) is served  # nothing kept that is not served
    finally:
        db.close()


def test_the_items_of_a_real_feed_are_kept_as_parsed(tmp_path) -> None:
    recorded = recorded_answer("cointelegraph-rss.xml")
    if recorded is None:
        pytest.skip("the recorded real feed is in ../shared/data, absent here")
    items = parse_feed(recorded, "https://cointelegraph.com/rss")
    db = KeeperDB(sqlite_url(tmp_path / "keeper.sqlite"))
    NewsArchive(db).keep(items)
    pd.testing.assert_frame_equal(NewsArchive(db).items, items, check_exact=True)


DAY = pd.Timestamp("2024-06-30", tz="UTC")


def served(feed: str, numbers: range) -> pd.DataFrame:
    """Stories `numbers` of `feed`, story n published n hours after the first (100 hours before DAY)."""
    return validate_news(pd.DataFrame({
        TIMESTAMP: [(DAY - pd.Timedelta(hours=100 - n)).isoformat() for n in numbers],
        "title": [f"{feed} story {n}" for n in numbers], "source": [f"https://{feed}.example/rss"] * len(numbers),
        "url": [f"https://{feed}.example/{n}" for n in numbers], "summary": [None] * len(numbers)}),
        where="test").frame


def test_a_feed_serving_new_items_every_cycle_is_recalled_at_most_its_newest(tmp_path, monkeypatch) -> None:
    # A hostile feed may serve MAX_FEED_ITEMS new stories every cycle: each cycle's news must not grow with them.
    monkeypatch.setattr(journal.news, "MAX_RECALLED_PER_FEED", 3)
    day = DAY
    archive = NewsArchive(KeeperDB(sqlite_url(tmp_path / "keeper.sqlite")))
    archive.recall(served("quiet", range(2)), day)  # a feed under the bound keeps all it served
    for cycle in range(4):
        news = archive.recall(served("flood", range(10 * cycle, 10 * cycle + 10)), day)
    assert titles(news) == ["quiet story 0", "quiet story 1", "flood story 27", "flood story 28", "flood story 29",
                            *(f"flood story {n}" for n in range(30, 40))]
    assert len(archive.with_kept(news)) == 42  # training reads every item kept


def kept_titles(url: str) -> list[str]:
    """The titles of the items in the journal at `url`, read back by a keeper starting on it."""
    db = KeeperDB(url)
    try:
        return titles(NewsArchive(db).items)
    finally:
        db.close()


def journal_rows(url: str) -> int:
    """The news items in the journal at `url`, counted in SQL."""
    db = KeeperDB(url)
    try:
        with db.engine.connect() as connection:
            return connection.exec_driver_sql("SELECT count(*) FROM news_items").scalar_one()
    finally:
        db.close()


def test_a_feed_serving_new_items_every_cycle_keeps_its_newest_only(tmp_path, monkeypatch) -> None:
    # Kept, a hostile feed's stories would grow the journal, and what training reads, cycle after cycle.
    monkeypatch.setattr(journal.news, "MAX_KEPT_PER_FEED", 12)
    url = sqlite_url(tmp_path / "keeper.sqlite")
    archive = NewsArchive(KeeperDB(url))
    archive.recall(served("quiet", range(2)), DAY)  # a feed under the bound keeps all it served
    for cycle in range(4):
        news = archive.recall(served("flood", range(10 * cycle, 10 * cycle + 10)), DAY)
    newest = ["quiet story 0", "quiet story 1", *(f"flood story {n}" for n in range(28, 40))]
    assert titles(archive.with_kept(news)) == newest  # what training reads
    assert kept_titles(url) == newest  # the journal dropped the older ones
    # a dropped story served again is read by that cycle, but older than the feed's kept ones, not kept again
    assert titles(archive.recall(served("flood", range(1)), DAY)) == ["flood story 0", *newest]
    assert kept_titles(url) == newest
    assert journal_rows(url) == len(newest)


def test_a_journal_holding_more_than_the_bound_keeps_the_newest_when_opened(tmp_path, monkeypatch) -> None:
    url = sqlite_url(tmp_path / "keeper.sqlite")
    NewsArchive(KeeperDB(url)).keep(served("flood", range(20)))  # a journal from before the bound
    monkeypatch.setattr(journal.news, "MAX_KEPT_PER_FEED", 5)
    assert kept_titles(url) == [f"flood story {n}" for n in range(15, 20)]
    assert journal_rows(url) == 5

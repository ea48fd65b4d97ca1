"""News items: RSS 2.0 / Atom feeds (via feedparser) and news tables, validated into the canonical news table
(timestamp, title, source, url, summary; see `strategy.data.schema`), sorted by timestamp.

Policy: a document that is not a feed at all, or an item date that cannot be parsed, raises `DataError`.
With ``strict=False`` (default) items without a date or title, dated outside `PLAUSIBLE_TIMESTAMPS`, and exact
repeats (same source, time and title) are dropped and recorded, a title or summary longer than
`MAX_NEWS_TEXT_CHARS` is cut to that length (recorded), and a feed that is not well-formed XML is read as far
as feedparser gets (recorded); ``strict=True`` raises on each of these instead.

A feed is refused (`DataError`) when it holds more than `MAX_FEED_ITEMS` items, counted before it is parsed, or
more than `MAX_FEED_TEXT_CHARS` characters of titles and summaries once cut: the sentiment of each item's
text (VADER, in `strategy.features.news`) takes time that grows with the square of the text's length (0.5 s
for 10,000 characters, 43 s for 100,000), and a feed's items are each read on every cycle that serves them.
"""

from __future__ import annotations

import calendar
import html
import re
from collections.abc import Sequence

import feedparser
import pandas as pd

from strategy.data.checks import RecordChecker
from strategy.data.errors import DataError
from strategy.data.market import Validated
from strategy.data.plain_feeds import entry_count, plain_entries
from strategy.data.schema import NEWS_COLUMNS, NEWS_REQUIRED, TIMESTAMP

MAX_FEED_ITEMS = 10_000  # items of one feed; real feeds hold tens, the devnet's some 2,000
MAX_NEWS_TEXT_CHARS = 1_000  # characters of a title, and of a summary, as plain text; longer ones are cut
MAX_FEED_TEXT_CHARS = 1_000_000  # characters of all the titles and summaries of one feed, once cut


def parse_feed(content: bytes | str, source: str, *, where: str | None = None, strict: bool = False) -> pd.DataFrame:
    """Canonical news rows from the text of an RSS 2.0 or Atom feed; ``source`` names the feed."""
    return feed_news(content, source, where=where, strict=strict).frame


def feed_news(content: bytes | str, source: str, *, where: str | None = None, strict: bool = False) -> Validated:
    """`parse_feed` with its `RepairReport`: a plain feed read with xml.etree (`plain_entries`, the same entries
    as feedparser's, some 50 times faster), any other with feedparser."""
    where = where or f"feed {source}"
    # Bytes, so that feedparser never takes the text for a URL or a file name to open.
    data = content.encode("utf-8") if isinstance(content, str) else content
    items = entry_count(data)
    if items > MAX_FEED_ITEMS:
        raise DataError(f"feed holds {items:,} items, more than the {MAX_FEED_ITEMS:,} allowed (MAX_FEED_ITEMS); "
                        "not read", where=where)
    entries = plain_entries(data, counted=items)
    if entries is None:
        return feedparser_news(data, source, where=where, strict=strict)
    frame = pd.DataFrame([(entry.time, entry.title, source, entry.link, entry.summary) for entry in entries],
                         columns=list(NEWS_COLUMNS), dtype=object)
    checker = _checker(frame, where, strict)
    return Validated(_feed_text_bounded(_check_news(checker), where), checker.report)


def feedparser_news(content: bytes, source: str, *, where: str, strict: bool = False) -> Validated:
    """`feed_news` through feedparser, whatever the feed."""
    feed = feedparser.parse(content)
    problem = feed.get("bozo_exception")
    if not feed.get("version") and not feed.entries:
        raise DataError(f"not an RSS or Atom feed ({problem or 'no feed elements'})", where=where)
    records = [
        {
            TIMESTAMP: _entry_time(entry),
            "title": entry.get("title"),
            "source": source,
            "url": entry.get("link"),
            "summary": entry.get("summary"),
        }
        for entry in feed.entries
    ]
    checker = _checker(pd.DataFrame(records, columns=list(NEWS_COLUMNS), dtype=object), where, strict)
    if feed.bozo and not isinstance(problem, feedparser.CharacterEncodingOverride):
        if strict:
            raise DataError(f"feed is not well-formed: {problem}", where=where)
        checker.report.record(where, f"read what could be read of a feed that is not well-formed ({problem})",
                              None, [f"all {len(checker.frame)} items"])
    return Validated(_feed_text_bounded(_check_news(checker), where), checker.report)


def _checker(frame: pd.DataFrame, where: str, strict: bool) -> RecordChecker:
    """The checker of a feed's rows, labelled by item, their summaries as plain text."""
    frame["summary"] = _plain_text(frame["summary"])
    return RecordChecker(frame, where=where, strict=strict, row_labels=[f"item {i + 1}" for i in range(len(frame))])


def validate_news(
    frame: pd.DataFrame, *, where: str = "<frame>", strict: bool = False, row_labels: Sequence[str] | None = None
) -> Validated:
    """Check a news table (canonical column names; ``summary`` optional) and return it canonical."""
    checker = RecordChecker(frame, where=where, strict=strict, row_labels=row_labels)
    checker.require_columns(NEWS_REQUIRED)
    checker.add_missing_columns(["summary"])
    return Validated(_check_news(checker), checker.report)


def _feed_text_bounded(news: pd.DataFrame, where: str) -> pd.DataFrame:
    """`news`, or `DataError` when its titles and summaries hold more than `MAX_FEED_TEXT_CHARS` characters."""
    chars = int(news["title"].str.len().sum() + news["summary"].str.len().sum())
    if chars > MAX_FEED_TEXT_CHARS:
        raise DataError(f"feed's titles and summaries hold {chars:,} characters, more than the "
                        f"{MAX_FEED_TEXT_CHARS:,} allowed (MAX_FEED_TEXT_CHARS)", where=where)
    return news


def _check_news(checker: RecordChecker) -> pd.DataFrame:
    checker.parse_timestamps(TIMESTAMP)
    checker.drop_implausible_times(TIMESTAMP)
    for column in ("title", "source", "url", "summary"):
        checker.clean_text(column)
    for column in ("title", "summary"):
        checker.cut_longer_than(column, MAX_NEWS_TEXT_CHARS)
    checker.drop_missing([TIMESTAMP, "title", "source"])
    identity = ["source", TIMESTAMP, "title"]
    checker.drop_duplicates(identity, compare=identity)
    return checker.result(NEWS_COLUMNS).sort_values(TIMESTAMP, kind="stable", ignore_index=True)


def _entry_time(entry: feedparser.FeedParserDict) -> int | str | None:
    """Unix seconds of the item's date (published, else updated), or the raw text when unparseable."""
    for key in ("published", "updated"):
        if entry.get(f"{key}_parsed"):
            return calendar.timegm(entry[f"{key}_parsed"])  # feedparser gives UTC struct_time
        if entry.get(key):
            return entry[key]
    return None


def _plain_text(markup: pd.Series) -> pd.Series:
    """Tags removed, entities decoded, whitespace collapsed (feed summaries are HTML); missing → ""."""
    text = markup.fillna("").astype("str")
    if text.str.contains("[<&]", regex=True).any():  # no tag and no entity in it (a plain feed): nothing to undo
        text = text.str.replace(r"<[^>]+>", " ", regex=True).map(html.unescape)
    text = text.astype("str")
    if not _single_spaced(text.tolist()):  # else each `\s+` is one space already: the same texts, a pass saved
        text = text.str.replace(r"\s+", " ", regex=True)
    return text.str.strip()


_ASCII_SPACES = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f"  # what `\s` matches in ASCII besides the space


def _single_spaced(texts: list[str]) -> bool:
    """Whether no text holds whitespace but single spaces: whitespace as Python's regular expressions tell it
    (every character `str.isspace` takes; RE2's, which pyarrow's string methods use, are among them)."""
    joined = "\0".join(texts)  # NUL is no whitespace: no two spaces meet across texts
    if "  " in joined:
        return False
    if joined.isascii():
        return not any(space in joined for space in _ASCII_SPACES)
    return re.search(r"[^\S ]", joined) is None

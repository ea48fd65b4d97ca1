"""RSS 2.0 / Atom feeds and news tables into the canonical news table, and what bad input produces."""

import html
from datetime import UTC, datetime

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pandas.testing import assert_series_equal

from devnet.llama_server import SyntheticLlama
from strategy.data import DataError, load_news
from strategy.data.news import _plain_text, parse_feed
from strategy.data.plain_feeds import plain_entries
from tests.shared_data import recorded_answer

RSS = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel>
  <title>DeFi wire</title><link>https://wire.example</link><description>news</description>
  <item>
    <title>Aave pauses USDC market after oracle glitch</title>
    <link>https://wire.example/2024/03/aave-pause</link>
    <pubDate>Fri, 01 Mar 2024 14:30:00 +0100</pubDate>
    <description>&lt;p&gt;Governance &amp;amp; risk teams &lt;b&gt;paused&lt;/b&gt; the market.&lt;/p&gt;</description>
  </item>
  <item>
    <title>Curve launches new pool</title>
    <link>https://wire.example/2024/02/curve</link>
    <pubDate>Thu, 29 Feb 2024 08:00:00 GMT</pubDate>
  </item>
</channel></rss>"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Chain daily</title><id>urn:chain-daily</id><updated>2024-03-02T10:00:00Z</updated>
  <entry>
    <title>USDC depeg fears ease</title><id>urn:1</id>
    <link href="https://daily.example/usdc"/>
    <updated>2024-03-02T10:00:00Z</updated>
    <summary>Stablecoin back at one dollar.</summary>
  </entry>
</feed>"""


def test_rss_items_become_canonical_rows_sorted_by_time():
    frame = parse_feed(RSS, "wire", strict=True)
    assert list(frame.columns) == ["timestamp", "title", "source", "url", "summary"]
    assert frame["title"].tolist() == ["Curve launches new pool", "Aave pauses USDC market after oracle glitch"]
    assert frame["timestamp"].tolist() == [pd.Timestamp("2024-02-29T08:00:00Z"), pd.Timestamp("2024-03-01T13:30:00Z")]
    assert (frame["source"] == "wire").all()
    assert frame["url"].tolist() == ["https://wire.example/2024/02/curve", "https://wire.example/2024/03/aave-pause"]
    assert frame["summary"].iloc[1] == "Governance & risk teams paused the market."  # tags and entities gone
    assert pd.isna(frame["summary"].iloc[0])


def test_atom_entries_and_text_input():
    frame = parse_feed(ATOM, "chain-daily", strict=True)
    assert frame[["title", "url", "summary"]].iloc[0].tolist() == [
        "USDC depeg fears ease", "https://daily.example/usdc", "Stablecoin back at one dollar."]
    assert frame["timestamp"].iloc[0] == pd.Timestamp("2024-03-02T10:00:00Z")


def test_text_that_looks_like_a_url_is_not_fetched():
    with pytest.raises(DataError, match="feed x: not an RSS or Atom feed"):
        parse_feed("https://example.invalid/feed.xml", "x")


@pytest.mark.parametrize(("content", "strict", "message"), [
    (b"<html><body><p>Not a feed</p></body></html>", False, "not an RSS or Atom feed"),
    (b"", False, "not an RSS or Atom feed"),
    (RSS.replace(b"Thu, 29 Feb 2024 08:00:00 GMT", b"last thursday"), False,
     "item 2, field 'timestamp': unparseable timestamp 'last thursday'"),
    (RSS.replace(b"<pubDate>Thu, 29 Feb 2024 08:00:00 GMT</pubDate>", b""), True,
     "item 2, field 'timestamp': missing value"),
    (RSS.replace(b"<title>Curve launches new pool</title>", b""), True, "item 2, field 'title': missing value"),
    (RSS[: RSS.index(b"<item>", RSS.index(b"</item>"))], True, "feed is not well-formed"),
])
def test_bad_feeds_raise_naming_the_item(content, strict, message):
    with pytest.raises(DataError) as caught:
        parse_feed(content, "wire", strict=strict)
    assert str(caught.value).startswith("feed wire") and message in str(caught.value)


def test_lenient_feed_parsing_drops_undated_items_and_reads_truncated_feeds():
    undated = parse_feed(RSS.replace(b"<pubDate>Thu, 29 Feb 2024 08:00:00 GMT</pubDate>", b""), "wire")
    assert undated["title"].tolist() == ["Aave pauses USDC market after oracle glitch"]
    truncated = RSS[: RSS.index(b"</channel>")]
    assert len(parse_feed(truncated, "wire")) == 2


def test_load_news_from_a_directory_of_feeds(tmp_path):
    (tmp_path / "wire.xml").write_bytes(RSS)
    (tmp_path / "chain-daily.atom").write_text(ATOM)
    frame, report = load_news(tmp_path, strict=True)
    assert not report
    assert frame["source"].tolist() == ["wire", "wire", "chain-daily"]
    assert frame["timestamp"].is_monotonic_increasing


def test_load_news_csv_names_the_bad_line(tmp_path):
    path = tmp_path / "news.csv"
    path.write_text("timestamp,title,source,url\n2024-03-01T10:00:00Z,Fine,wire,https://a\nnot a date,Bad,wire,https://b\n")
    with pytest.raises(DataError) as caught:
        load_news(path)
    assert (caught.value.where, caught.value.row, caught.value.field) == (str(path), "line 3", "timestamp")


def test_load_news_csv_drops_repeats_and_reports_them(tmp_path):
    path = tmp_path / "news.csv"
    row = "2024-03-01T10:00:00Z,Aave exploit,wire,https://a"
    path.write_text(f"timestamp,title,source,url,summary\n{row},\n{row},again\n")
    frame, report = load_news(path)
    assert len(frame) == 1 and report.repairs[0].rows == ("line 3",)
    with pytest.raises(DataError, match="line 3, field 'source': exact duplicate"):
        load_news(path, strict=True)


def test_load_news_requires_the_canonical_columns(tmp_path):
    path = tmp_path / "news.csv"
    path.write_text("timestamp,title,url\n2024-03-01T10:00:00Z,Fine,https://a\n")
    with pytest.raises(DataError, match="field 'source': missing column"):
        load_news(path)


def always_collapsed(markup: pd.Series) -> pd.Series:
    """`_plain_text` as it was: every text's whitespace runs replaced, whatever they are."""
    text = markup.fillna("").astype("str")
    if text.str.contains("[<&]", regex=True).any():
        text = text.str.replace(r"<[^>]+>", " ", regex=True).map(html.unescape)
    return text.astype("str").str.replace(r"\s+", " ", regex=True).str.strip()


SPACED_TEXT = st.text(alphabet=st.sampled_from(list("ab <&;é") + ["\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x1f",
                                                                  "\x85", "\xa0", "\u2028", "\u3000", "\x00"]),
                      max_size=12)


@given(st.lists(st.none() | SPACED_TEXT, max_size=6))
def test_summaries_are_plain_text_as_when_every_whitespace_run_was_replaced(summaries):
    markup = pd.Series(summaries, dtype=object)
    assert_series_equal(_plain_text(markup), always_collapsed(markup))


def test_the_devnet_and_recorded_feeds_summaries_are_plain_text_as_before():
    """Uses ../shared/data/recorded when it is there."""
    feeds = [SyntheticLlama.generate(seed=7, days=730, pools=4).news_feed(datetime(2026, 1, 1, tzinfo=UTC))]
    feeds += [body for body in [recorded_answer("cointelegraph-rss.xml")] if body is not None]
    for feed in feeds:
        markup = pd.Series([entry.summary for entry in plain_entries(feed) or []], dtype=object)
        assert len(markup) and _plain_text(markup).tolist() == always_collapsed(markup).tolist()

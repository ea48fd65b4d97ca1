"""Answers that arrive whole and within the body limit, but are built to cost the keeper what no real answer
does: a coins answer naming thousands of coins or a key of a megabyte, a value of a megabyte in an error
message, a pool whose symbol would make thousands of news keywords, a token that makes no coins key, a feed of
more items or more text than any real one, a title of megabytes, news dated a thousand years ago.

Each is refused with one short reason, or repaired and recorded, within bounds (`MAX_*` constants of
`strategy.data`), and never reaches the parts whose cost grows with it (a frame per coin, a label repeating
the key, a keyword search per word, VADER's quadratic sentiment, a daily grid over the centuries).
The feeds are served by a real local server (pytest-httpserver on 127.0.0.1) through the keeper's session,
which keeps no body of the answers it remembers between cycles (a digest).
"""

import gc
import json
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from pytest_httpserver import HTTPServer

from sources import HttpSettings, PayloadError, Sources, SourcesConfig, open_sources
from sources.http import fetch_json
from strategy.data.defillama import MAX_POOL_TEXT_CHARS, parse_chart, parse_coin_chart, parse_pools
from strategy.data.errors import SHOWN_CHARS, DataError
from strategy.data.news import MAX_FEED_ITEMS, MAX_FEED_TEXT_CHARS, MAX_NEWS_TEXT_CHARS, feed_news
from strategy.data.prices import MAX_COIN_ID_CHARS, pool_coins
from strategy.features.news import pool_keywords
from tests.keeper.test_sources import module_server, server

MEGABYTE = 2**20
PUBLISHED = "Sat, 01 Jun 2024 08:00:00 GMT"


def rss(items: list[str]) -> bytes:
    return ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>desk</title>'
            + "".join(items) + "</channel></rss>").encode()


def item(title: str, n: int, *, summary: str = "s", published: str = PUBLISHED) -> str:
    return (f"<item><title>{title}</title><link>https://news.example/{n}</link><pubDate>{published}</pubDate>"
            f"<description>{summary}</description></item>")


def pool(pool_id: str, **fields: object) -> dict:
    return {"pool": pool_id, "chain": "Ethereum", "project": "aave-v3", "symbol": "USDC", "tvlUsd": 1e8,
            "apy": 4.0, "underlyingTokens": ["0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"]} | fields


def coins(entries: dict[str, int]) -> dict:
    """A coins /chart payload: each coin with that many daily prices."""
    return {"coins": {coin: {"symbol": "USDC", "prices": [{"timestamp": 1_700_000_000 + 86_400 * i, "price": 1.0}
                                                          for i in range(points)]}
                      for coin, points in entries.items()}}


def timed(parse: object, *args: object) -> float:
    started = time.perf_counter()
    parse(*args)  # type: ignore[operator]
    return time.perf_counter() - started


# -- DeFiLlama ------------------------------------------------------------------------------------------


def test_a_coins_answer_naming_thousands_of_coins_costs_what_as_many_prices_of_one_coin_cost() -> None:
    many = coins({f"ethereum:0x{i:040x}": 1 for i in range(2_000)})
    one = coins({"ethereum:0x1": 2_000})
    timed(parse_coin_chart, one)  # warm
    # A frame per coin took some 2 ms each (2,000 empty coins: 3.6 s, a million in the body limit: an hour).
    assert timed(parse_coin_chart, many) < 20 * timed(parse_coin_chart, one) + 0.05


def test_a_coin_key_of_a_megabyte_is_not_repeated_in_each_label_or_the_error() -> None:
    payload = coins({"ethereum:0x" + "a" * MEGABYTE: 300})
    payload["coins"]["ethereum:0x" + "a" * MEGABYTE]["prices"][-1]["price"] = "high"
    with pytest.raises(DataError, match="expected a number") as error:
        parse_coin_chart(payload)
    # Each price's label held the whole key (300 MiB here; a 32 MiB key and its prices: terabytes).
    assert len(str(error.value)) < 4 * SHOWN_CHARS


@pytest.mark.parametrize("record", [
    {"timestamp": "2024-06-01" + "x" * MEGABYTE, "tvlUsd": 1e8, "apy": 4.0},
    {"timestamp": "2024-06-01", "tvlUsd": ["x" * MEGABYTE] * 10, "apy": 4.0},
])
def test_an_error_names_a_value_of_a_megabyte_in_a_few_characters(record: dict) -> None:
    with pytest.raises(DataError) as error:
        parse_chart("p", {"status": "success", "data": [record]})
    assert len(str(error.value)) < 4 * SHOWN_CHARS


def test_a_status_of_a_megabyte_is_named_in_a_few_characters() -> None:
    with pytest.raises(DataError, match="status is") as error:
        parse_pools({"status": "x" * MEGABYTE, "data": []})
    assert len(str(error.value)) < 4 * SHOWN_CHARS


def test_a_pool_whose_texts_are_longer_than_any_real_one_is_dropped_and_recorded(caplog) -> None:
    # A symbol of 3,000 words would be 3,000 news keywords, each searched in every item (0.75 ms per keyword
    # for 50 items; a symbol filling the body: millions of them).
    symbol = "-".join(f"t{i:04d}" for i in range(3_000))
    listed = parse_pools({"status": "success", "data": [
        pool("junk", symbol=symbol), pool("meta", poolMeta="m" * (MAX_POOL_TEXT_CHARS + 1)), pool("fine")]})
    assert listed["pool"].tolist() == ["fine"]
    assert "symbol longer than 1,000 characters" in caplog.text
    assert len(pool_keywords(listed)) < 10
    with pytest.raises(DataError, match="longer than 1,000 characters"):
        parse_pools({"status": "success", "data": [pool("junk", symbol=symbol)]}, strict=True)


@pytest.mark.parametrize("token", ["0xabc,0xdef", "0xabc:0xdef", " ", "0x" + "a" * MAX_COIN_ID_CHARS])
def test_a_token_that_makes_no_coins_key_leaves_its_pool_unpriced(token: str) -> None:
    # Such a key made the coins source raise ValueError: the cycle failed as an internal error, traceback logged.
    listed = parse_pools({"status": "success", "data": [pool("odd", underlyingTokens=[token]), pool("fine")]})
    assert pool_coins(listed) == {"fine": "ethereum:0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"}


# -- news feeds -----------------------------------------------------------------------------------------


def test_a_feed_of_more_items_than_allowed_is_refused_before_it_is_parsed() -> None:
    feed = rss([f"<item><title>t{i}</title></item>" for i in range(MAX_FEED_ITEMS + 1)])
    with pytest.raises(DataError, match="10,001 items, more than the 10,000 allowed"):
        feed_news(feed, "desk")


def test_a_title_and_a_summary_longer_than_allowed_are_cut_and_recorded() -> None:
    # VADER's sentiment grows with the square of the text: 43 s for 100,000 characters.
    news = feed_news(rss([item("hack " * 20_000, 1, summary="calm " * 20_000), item("fine", 2)]), "desk")
    assert news.frame["title"].str.len().max() == MAX_NEWS_TEXT_CHARS
    assert news.frame["summary"].str.len().max() == MAX_NEWS_TEXT_CHARS
    assert news.report.counts() == {"cut title to 1,000 characters": 1, "cut summary to 1,000 characters": 1}
    with pytest.raises(DataError, match="longer than 1,000 characters"):
        feed_news(rss([item("hack " * 20_000, 1)]), "desk", strict=True)


def test_a_feed_of_more_text_than_allowed_is_refused() -> None:
    count = MAX_FEED_TEXT_CHARS // (2 * MAX_NEWS_TEXT_CHARS) + 1
    feed = rss([item(f"{i:08d}" + "t" * 992, i, summary="s" * MAX_NEWS_TEXT_CHARS) for i in range(count)])
    with pytest.raises(DataError, match="more than the 1,000,000 allowed"):
        feed_news(feed, "desk")


@pytest.mark.parametrize("published", ["Sat, 01 Jun 1000 08:00:00 GMT", "Sat, 01 Jun 2200 08:00:00 GMT"])
def test_news_dated_outside_any_market_is_dropped_and_recorded(published: str) -> None:
    # An item of the year 1000 stretched the news features' daily grid over a thousand years (18 s, 1.3 GB for
    # 20 pools; more with more pools).
    news = feed_news(rss([item("old", 1, published=published), item("fine", 2)]), "desk")
    assert news.frame["title"].tolist() == ["fine"]
    assert news.frame["timestamp"].min() >= pd.Timestamp("2009-01-03", tz="UTC")
    assert news.report.total == 1


# -- through the keeper's session ---------------------------------------------------------------------------


@pytest.fixture
def sources(server: HTTPServer, tmp_path: Path) -> Iterator[Sources]:
    settings = HttpSettings(retries=0, cache_dir=tmp_path / "cache")
    base = server.url_for("").rstrip("/")
    opened = open_sources(SourcesConfig(yields_base_url=base, coins_base_url=base, http=settings))
    yield opened
    opened.close()


def test_a_feed_too_big_to_read_is_skipped_with_its_reason_and_the_others_are_read(server, sources) -> None:
    server.expect_request("/flood.xml").respond_with_data(
        rss([f"<item><title>t{i}</title></item>" for i in range(MAX_FEED_ITEMS + 1)]))
    server.expect_request("/desk.xml").respond_with_data(rss([item("Aave v3 raises caps", 1)]))
    batch = sources.news.fetch([server.url_for("/flood.xml"), server.url_for("/desk.xml")])
    assert batch.items["title"].tolist() == ["Aave v3 raises caps"]
    [reason] = batch.failures.values()
    assert "more than the 10,000 allowed (MAX_FEED_ITEMS)" in reason


def test_a_coins_answer_with_a_key_of_a_megabyte_is_one_short_payload_error(server, sources) -> None:
    payload = coins({"ethereum:0x" + "a" * MEGABYTE: 3})
    payload["coins"]["ethereum:0x" + "a" * MEGABYTE]["prices"][0]["price"] = True
    server.expect_request("/chart/ethereum:0x1").respond_with_data(json.dumps(payload))
    with pytest.raises(PayloadError, match="expected a number") as error:
        sources.prices.chart(["ethereum:0x1"], pd.Timestamp("2024-06-01", tz="UTC").to_pydatetime(), 3)
    assert len(str(error.value)) < 4 * SHOWN_CHARS + 200


def test_the_answers_kept_between_cycles_hold_no_body(server, sources) -> None:
    # A small answer in megabytes of whitespace is valid JSON: its body was kept whole, for each of the URLs a
    # cycle reads (some 20: over a GiB at the 64 MiB body limit), until the URL answered something else.
    padding = " " * (4 * MEGABYTE)
    urls = [server.url_for(f"/chart/pool-{i}") for i in range(3)]
    for i in range(3):
        server.expect_request(f"/chart/pool-{i}").respond_with_data(padding + json.dumps({"status": "ok"}) + padding)
    tracemalloc.start()
    try:
        for url in urls:
            fetch_json(sources.session, url, as_is)
        gc.collect()
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held < 2 * MEGABYTE


def as_is(payload: object, where: str) -> object:
    return payload

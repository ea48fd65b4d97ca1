"""The keeper's HTTP data sources against a real local server (pytest-httpserver on 127.0.0.1).

Payloads are the recorded API answers under shared/data/recorded/ when those files exist, otherwise
payloads built here in the shapes documented in shared/data/README.md.
"""

import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from sources import (
    HttpSettings,
    PayloadError,
    SourceError,
    Sources,
    SourcesConfig,
    StaleDataError,
    build_session,
    check_market,
    open_sources,
)
from sources.http import JSON_DENSITY, RETRY_STATUSES, fetch_json
from strategy.data.defillama import parse_chart, parse_coin_chart, parse_pools
from strategy.data.errors import DataError
from strategy.data.news import parse_feed
from strategy.safe_json import json_values
from tests.keeper.test_sources_freshness import DAI_POOL, NOW, USDC_COIN, USDC_POOL
from tests.shared_data import recorded_answer

DAI_COIN = "ethereum:0x6b175474e89094c44da98b954eedeac495271d0f"
RETRIES = 2


# -- payloads -------------------------------------------------------------------------------------------


def pools_body() -> bytes:
    pools = [
        {
            "pool": USDC_POOL, "chain": "Ethereum", "project": "aave-v3", "symbol": "USDC", "tvlUsd": 1.2e9,
            "apy": 4.1, "apyBase": 3.9, "apyReward": 0.2, "apyMean30d": 4.0, "stablecoin": True, "ilRisk": "no",
            "exposure": "single", "underlyingTokens": [USDC_COIN.split(":")[1]], "rewardTokens": [], "poolMeta": None,
            "predictions": {"predictedClass": "Stable/Up"},  # extra fields appear over time
        },
        {
            "pool": DAI_POOL, "chain": "Ethereum", "project": "compound-v3", "symbol": "DAI", "tvlUsd": 3.4e8,
            "apy": 5.2, "apyBase": 5.2, "apyReward": None, "apyMean30d": None, "stablecoin": True, "ilRisk": "no",
            "exposure": "single", "underlyingTokens": [DAI_COIN.split(":")[1]], "rewardTokens": None, "poolMeta": "v3",
        },
    ]
    return json.dumps({"status": "success", "data": pools}).encode()


def chart_body(last: datetime = NOW - timedelta(hours=2), days: int = 30) -> bytes:
    """About one point a day, as DeFiLlama serves them (ISO timestamps with milliseconds)."""
    points = []
    for day in range(days):
        ts = last - timedelta(days=days - 1 - day)
        apy = 2.5 + 0.01 * day
        points.append(
            {"timestamp": ts.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "tvlUsd": 1.0e8 + 1.0e5 * day, "apy": apy,
             "apyBase": apy, "apyReward": None, "il7d": None, "apyBase7d": None}
        )
    return json.dumps({"status": "success", "data": points}).encode()


def coins_body(start: datetime = NOW - timedelta(days=2), span: int = 3) -> bytes:
    def prices(base: float) -> list[dict]:
        return [{"timestamp": int(start.timestamp()) + 86_400 * i, "price": base + 0.0001 * i} for i in range(span)]

    coins = {
        USDC_COIN: {"symbol": "USDC", "decimals": 6, "confidence": 0.99, "prices": prices(1.0)},
        DAI_COIN: {"symbol": "DAI", "decimals": 18, "confidence": 0.99, "prices": prices(0.9998)},
    }
    return json.dumps({"coins": coins}).encode()


def rss_body() -> bytes:
    return b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>DeFi desk</title><link>https://news.example/</link><description>d</description>
<item><title>Aave v3 raises USDC supply cap</title><link>https://news.example/aave-cap</link>
<pubDate>Sat, 01 Jun 2024 08:00:00 GMT</pubDate><description>&lt;p&gt;Governance passed.&lt;/p&gt;</description></item>
<item><title>Compound v3 pauses DAI market</title><link>https://news.example/comp-dai</link>
<pubDate>Fri, 31 May 2024 22:15:00 GMT</pubDate><description>Temporary.</description></item>
</channel></rss>"""


def atom_body() -> bytes:
    return b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Stablecoin watch</title><id>urn:sw</id>
<updated>2024-06-01T09:00:00Z</updated>
<entry><title>USDC holds its peg</title><id>urn:sw:1</id><link href="https://sw.example/1"/>
<updated>2024-06-01T09:00:00Z</updated><summary>Calm markets.</summary></entry>
</feed>"""


def recorded_or(name: str, build: Callable[[], bytes]) -> bytes:
    """The recorded real answer `name` when there is one (`tests.shared_data.recorded_answer`), else the built one."""
    recorded = recorded_answer(name)
    return build() if recorded is None else recorded


# -- fixtures -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def module_server() -> Iterator[HTTPServer]:
    server = HTTPServer(host="127.0.0.1")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def server(module_server: HTTPServer) -> Iterator[HTTPServer]:
    yield module_server
    module_server.clear()


@pytest.fixture
def settings(tmp_path: Path) -> HttpSettings:
    """Tiny backoff and no Retry-After wait, so that retries cost no time in tests."""
    return HttpSettings(
        connect_timeout=2.0, read_timeout=2.0, retries=RETRIES, backoff_factor=0.0, retry_after_max=0,
        cache_dir=tmp_path / "cache", cache_expire_seconds=60.0,
    )


@pytest.fixture
def sources(server: HTTPServer, settings: HttpSettings) -> Iterator[Sources]:
    base = server.url_for("/").rstrip("/")
    config = SourcesConfig(yields_base_url=f"{base}/yields", coins_base_url=f"{base}/coins", http=settings)
    opened = open_sources(config)
    yield opened
    opened.close()


def statuses(server: HTTPServer) -> list[int]:
    return [response.status_code for _, response in server.log]


def as_is(payload: object, where: str) -> object:
    """A parser that accepts any JSON, to exercise the HTTP layer on its own."""
    return payload


# -- configuration --------------------------------------------------------------------------------------


def test_base_urls_must_be_http_urls():
    with pytest.raises(ValidationError, match="expected an http\\(s\\) URL .* got 'ftp://yields.example'"):
        SourcesConfig(yields_base_url="ftp://yields.example")


def test_trailing_slash_of_a_base_url_is_dropped():
    assert SourcesConfig(coins_base_url="http://127.0.0.1:9/coins/").coins_base_url == "http://127.0.0.1:9/coins"


@pytest.mark.parametrize("field", ["connect_timeout", "read_timeout", "cache_expire_seconds"])
def test_timeouts_and_expiry_must_be_positive(field):
    with pytest.raises(ValidationError, match=field):
        HttpSettings(**{field: 0})


def test_cache_goes_under_vaultbots_cache_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("VAULTBOT_CACHE", str(tmp_path))
    assert HttpSettings().cache_dir == tmp_path / "http"


def test_retry_policy_honours_retry_after_up_to_the_cap(settings):
    retry = build_session(settings.model_copy(update={"retry_after_max": 60})).get_adapter("http://x/").max_retries
    assert retry.respect_retry_after_header
    assert retry.parse_retry_after("7") == 7
    assert retry.parse_retry_after("3600") == 60


# -- transport: retries, time-outs, connection failures -------------------------------------------------


def test_requests_name_vaultbot_in_the_user_agent(server, settings):
    server.expect_request("/ua").respond_with_json({"ok": True})
    fetch_json(build_session(settings), server.url_for("/ua"), as_is)
    assert server.log[0][0].headers["User-Agent"].startswith("vaultbot-keeper/")


@pytest.mark.parametrize("status", sorted(RETRY_STATUSES))
def test_transient_error_is_retried_and_succeeds(server, settings, status):
    server.expect_oneshot_request("/flaky").respond_with_data("try again", status=status)
    server.expect_request("/flaky").respond_with_json({"value": 42})
    assert fetch_json(build_session(settings), server.url_for("/flaky"), as_is) == {"value": 42}
    assert statuses(server) == [status, 200]


def test_persistent_500_raises_source_error_after_the_retries(server, settings):
    server.expect_request("/down").respond_with_data("database on fire", status=500)
    with pytest.raises(SourceError) as caught:
        fetch_json(build_session(settings), server.url_for("/down"), as_is)
    error = caught.value
    assert (error.status, error.url) == (500, server.url_for("/down"))
    assert str(error) == f"{server.url_for('/down')}: HTTP 500 INTERNAL SERVER ERROR: database on fire"
    assert statuses(server) == [500] * (RETRIES + 1)


def test_client_error_is_not_retried(server, settings):
    server.expect_request("/missing").respond_with_data("no such pool", status=404)
    with pytest.raises(SourceError, match="HTTP 404") as caught:
        fetch_json(build_session(settings), server.url_for("/missing"), as_is)
    assert caught.value.status == 404
    assert statuses(server) == [404]


def test_429_with_retry_after_within_the_cap_is_waited_for_and_retried(server, settings):
    """A longer Retry-After fails at once (tests/keeper/test_hostile_sources.py)."""
    server.expect_oneshot_request("/limited").respond_with_data("slow down", status=429, headers={"Retry-After": "1"})
    server.expect_request("/limited").respond_with_json([1, 2])
    started = time.monotonic()
    session = build_session(settings.model_copy(update={"retry_after_max": 1}))
    assert fetch_json(session, server.url_for("/limited"), as_is) == [1, 2]
    assert time.monotonic() - started >= 1
    assert statuses(server) == [429, 200]


def retries_logged(caplog: pytest.LogCaptureFixture) -> int:
    """How often urllib3 said it would try again."""
    return sum(record.getMessage().startswith("Retrying") for record in caplog.records)


def test_read_timeout_raises_source_error(settings, caplog):
    """A server that never answers in time; its own server, so that the hanging handler delays no other test."""
    release = threading.Event()

    def hang(request: Request) -> Response:
        release.wait(timeout=10)
        return Response("{}", content_type="application/json")

    slow = HTTPServer(host="127.0.0.1")
    slow.expect_request("/slow").respond_with_handler(hang)
    slow.start()
    try:
        session = build_session(settings.model_copy(update={"read_timeout": 0.2, "retries": 1}))
        caplog.set_level(logging.WARNING, logger="urllib3")
        with pytest.raises(SourceError, match="timed out") as caught:
            fetch_json(session, slow.url_for("/slow"), as_is)
    finally:
        release.set()
        slow.stop()
    assert (caught.value.url, caught.value.status) == (slow.url_for("/slow"), None)
    assert "read timeout=0.2" in caught.value.reason
    assert retries_logged(caplog) == 1


def test_refused_connection_is_retried_then_raises_source_error(settings, caplog):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/pools"  # nothing listens there once the probe is closed
    caplog.set_level(logging.WARNING, logger="urllib3")
    with pytest.raises(SourceError, match="connection failed") as caught:
        fetch_json(build_session(settings), url, as_is)
    assert caught.value.url == url
    assert "Connection refused" in caught.value.reason
    assert retries_logged(caplog) == RETRIES


# -- answers parsed once --------------------------------------------------------------------------------


class Parser:
    """A parser that writes down each payload it parsed, and tags its value with its argument."""

    def __init__(self) -> None:
        self.parsed: list[str] = []

    def __call__(self, payload: object, where: str, tag: str = "") -> dict:
        self.parsed.append(json.dumps(payload))
        return {"tag": tag, "payload": payload}


def test_an_answer_the_same_as_the_last_one_is_not_parsed_again_and_each_fetch_has_its_own_value(server, settings):
    server.expect_request("/same").respond_with_json({"n": [1]})
    session = build_session(settings.model_copy(update={"cache_expire_seconds": 0.001}))  # asked every time
    parse = Parser()
    first = fetch_json(session, server.url_for("/same"), partial(parse, tag="a"))
    first["payload"]["n"].append(99)  # what one caller does to its value reaches no other
    time.sleep(0.01)
    assert fetch_json(session, server.url_for("/same"), partial(parse, tag="a")) == {"tag": "a", "payload": {"n": [1]}}
    assert len(server.log) == 2 and parse.parsed == ['{"n": [1]}']
    assert fetch_json(session, server.url_for("/same"), partial(parse, tag="b"))["tag"] == "b"  # another parser
    assert len(parse.parsed) == 2


def test_an_answer_that_moved_is_parsed_again(server, settings):
    server.expect_oneshot_request("/moving").respond_with_json({"n": 1})
    server.expect_request("/moving").respond_with_json({"n": 2})
    session = build_session(settings.model_copy(update={"cache_expire_seconds": 0.001}))
    parse = Parser()
    assert fetch_json(session, server.url_for("/moving"), parse)["payload"] == {"n": 1}
    time.sleep(0.01)
    assert fetch_json(session, server.url_for("/moving"), parse)["payload"] == {"n": 2}
    assert parse.parsed == ['{"n": 1}', '{"n": 2}']


# -- the on-disk cache ----------------------------------------------------------------------------------


def test_second_call_within_expiry_is_served_from_the_cache(server, settings):
    server.expect_request("/cached").respond_with_json({"n": 1})
    session = build_session(settings)
    first = fetch_json(session, server.url_for("/cached"), as_is)
    second = fetch_json(session, server.url_for("/cached"), as_is)
    assert first == second == {"n": 1}
    assert len(server.log) == 1


def test_cache_lives_on_disk_across_sessions(server, settings):
    server.expect_request("/cached").respond_with_json({"n": 1})
    fetch_json(build_session(settings), server.url_for("/cached"), as_is)
    assert fetch_json(build_session(settings), server.url_for("/cached"), as_is) == {"n": 1}
    assert len(server.log) == 1
    assert (settings.cache_dir / "responses.sqlite").is_file()


def test_expired_answer_is_fetched_again(server, settings):
    server.expect_oneshot_request("/cached").respond_with_json({"n": 1})
    server.expect_request("/cached").respond_with_json({"n": 2})
    session = build_session(settings.model_copy(update={"cache_expire_seconds": 0.3}))
    assert fetch_json(session, server.url_for("/cached"), as_is) == {"n": 1}
    time.sleep(0.6)
    assert fetch_json(session, server.url_for("/cached"), as_is) == {"n": 2}
    assert len(server.log) == 2


def test_error_answers_are_not_cached(server, settings):
    no_retries = settings.model_copy(update={"retries": 0})
    server.expect_oneshot_request("/recovering").respond_with_data("oops", status=503)
    server.expect_request("/recovering").respond_with_json({"ok": True})
    with pytest.raises(SourceError, match="HTTP 503"):
        fetch_json(build_session(no_retries), server.url_for("/recovering"), as_is)
    assert fetch_json(build_session(no_retries), server.url_for("/recovering"), as_is) == {"ok": True}
    assert statuses(server) == [503, 200]


# -- malformed payloads ---------------------------------------------------------------------------------


def test_body_that_is_not_json_raises_payload_error_and_is_not_cached(server, sources):
    server.expect_oneshot_request("/yields/pools").respond_with_data("<html>gateway</html>", content_type="text/html")
    server.expect_request("/yields/pools").respond_with_data(pools_body(), content_type="application/json")
    url = server.url_for("/yields/pools")
    with pytest.raises(PayloadError, match="body is not valid JSON") as caught:
        sources.yields.pools()
    assert isinstance(caught.value, DataError) and isinstance(caught.value, SourceError)
    assert caught.value.url == caught.value.where == url
    assert str(caught.value).startswith(f"{url}: ")
    # Nothing lost: the bad answer was dropped from the cache, so the next call asks the source again.
    assert set(sources.yields.pools()["pool"]) == {USDC_POOL, DAI_POOL}
    assert len(server.log) == 2


def pools_holding(values: int, length: int) -> bytes:
    """`pools_body()` holding `values` JSON values in all (zeros beside its data), spaced out to `length` bytes."""
    head = pools_body()[:-1] + b', "padding": ['
    zeros = values - json_values(head + b"0]}") + 1
    body = head + b",".join([b"0"] * zeros) + b"]"
    return body + b" " * (length - len(body) - 1) + b"}"


PAST = JSON_DENSITY.dense_past + 1  # the shortest body counted
MOST = JSON_DENSITY.max_values or 0
# (values, bytes) at the limits: a value per 4 bytes past 1 MiB, and 2**22 values in all
AT_THE_LIMITS = [(PAST // 4, PAST), (MOST, 5 * MOST)]


@pytest.mark.parametrize(("values", "length", "beyond"), [
    (PAST // 4 + 1, PAST, "more than one per 4 bytes that an answer past 1,048,576 may hold"),
    (MOST + 1, 5 * MOST, "more than the 4,194,304 an answer may hold"),
])
def test_a_body_of_more_values_than_real_ones_hold_raises_payload_error_unparsed_and_is_not_cached(
        server, sources, values, length, beyond):
    # Parsed, 64 MiB of `{},` took 1.6 GB: memory goes by the values, not the bytes
    server.expect_oneshot_request("/yields/pools").respond_with_data(pools_holding(values, length),
                                                                     content_type="application/json")
    server.expect_request("/yields/pools").respond_with_data(pools_body(), content_type="application/json")
    url = server.url_for("/yields/pools")
    with pytest.raises(PayloadError) as caught:
        sources.yields.pools()
    assert str(caught.value) == f"{url}: body refused unparsed: {values:,} JSON values in {length:,} bytes, {beyond}"
    assert caught.value.url == url
    assert set(sources.yields.pools()["pool"]) == {USDC_POOL, DAI_POOL}  # dropped from the cache: asked again
    assert len(server.log) == 2


@pytest.mark.parametrize(("values", "length"), AT_THE_LIMITS)
def test_a_body_at_the_limits_of_its_values_is_read(server, sources, values, length):
    body = pools_holding(values, length)
    assert (json_values(body), len(body)) == (values, length)
    server.expect_request("/yields/pools").respond_with_data(body, content_type="application/json")
    assert set(sources.yields.pools()["pool"]) == {USDC_POOL, DAI_POOL}


def test_a_real_pools_answer_the_size_of_defillamas_is_read(server, sources):
    recorded = recorded_answer("defillama-yields-pools.json")
    if recorded is None:
        pytest.skip("no recorded /pools answer in ../shared/data (tests/shared_data.py)")
    # DeFiLlama's /pools: 10-15 MB of some 20,000 pools, compact. The recorded rows, each under an id of its own.
    rows = json.loads(recorded)["data"]
    pools = [{**rows[i % len(rows)], "pool": str(uuid.UUID(int=i))} for i in range(20_000)]
    body = json.dumps({"status": "success", "data": pools}, separators=(",", ":")).encode()
    assert len(body) > JSON_DENSITY.dense_past * 4
    server.expect_request("/yields/pools").respond_with_data(body, content_type="application/json")
    assert len(sources.yields.pools()) == len(pools)


@pytest.mark.parametrize(
    ("payload", "field", "reason"),
    [
        ({"status": "error", "data": "upstream timeout"}, "status", "status is 'error', expected 'success'"),
        ({"status": "success", "data": {"pool": USDC_POOL}}, "data", "expected a list, got dict"),
        ({"status": "success"}, "data", "missing key"),
        (["not", "an", "object"], None, "expected a JSON object, got list"),
    ],
)
def test_wrong_shape_of_pools_raises_payload_error_naming_the_url(server, sources, payload, field, reason):
    server.expect_request("/yields/pools").respond_with_json(payload)
    with pytest.raises(PayloadError) as caught:
        sources.yields.pools()
    error = caught.value
    assert (error.url, error.field, error.reason) == (server.url_for("/yields/pools"), field, reason)


def test_bad_record_in_a_chart_names_the_record_and_field(server, sources):
    points = json.loads(chart_body())
    points["data"][3]["apy"] = "4.2%"
    server.expect_request(f"/yields/chart/{USDC_POOL}").respond_with_json(points)
    with pytest.raises(PayloadError, match=f"chart/{USDC_POOL}, data\\[3\\], field 'apy': expected a number"):
        sources.yields.chart(USDC_POOL)


def test_coin_chart_without_coins_raises_payload_error(server, sources):
    server.expect_request(f"/coins/chart/{USDC_COIN}").respond_with_json({"prices": []})
    with pytest.raises(PayloadError, match="expected a JSON object with a 'coins' object"):
        sources.prices.chart([USDC_COIN], NOW, span=3)


# -- the sources, with realistic payloads --------------------------------------------------------------


def test_pools_are_fetched_and_parsed(server, sources):
    body = recorded_or("defillama-yields-pools.json", pools_body)
    server.expect_request("/yields/pools").respond_with_data(body, content_type="application/json")
    fetched = sources.yields.pools()
    expected = parse_pools(json.loads(body))
    # The snapshot is stamped with the time of parsing; everything else must come through intact.
    assert fetched.drop(columns="timestamp").equals(expected.drop(columns="timestamp"))
    assert len(fetched) > 0


def test_the_pools_snapshot_is_stamped_when_read_though_the_same_answer_is_parsed_once(server, sources):
    server.expect_request("/yields/pools").respond_with_data(pools_body(), content_type="application/json")
    before = pd.Timestamp.now(tz="UTC")
    first = sources.yields.pools()
    between = pd.Timestamp.now(tz="UTC")
    second = sources.yields.pools()
    assert before <= first["timestamp"].min() <= first["timestamp"].max() <= between <= second["timestamp"].min()
    assert list(second.dtypes) == list(parse_pools(json.loads(pools_body())).dtypes)
    assert second.drop(columns="timestamp").equals(first.drop(columns="timestamp"))


def test_chart_is_fetched_and_parsed(server, sources):
    body = recorded_or("defillama-yields-chart.json", chart_body)
    server.expect_request(f"/yields/chart/{USDC_POOL}").respond_with_data(body, content_type="application/json")
    history = sources.yields.chart(USDC_POOL)
    assert history.equals(parse_chart(USDC_POOL, json.loads(body)))
    assert set(history["pool"]) == {USDC_POOL}


def test_empty_pool_id_is_refused_before_any_request(server, sources):
    with pytest.raises(ValueError, match="pool_id must not be empty"):
        sources.yields.chart(" ")
    assert server.log == []


def test_coin_prices_are_fetched_with_start_span_and_period(server, sources):
    start = NOW - timedelta(days=2)
    body = recorded_or("defillama-coins-chart.json", coins_body)
    server.expect_request(
        f"/coins/chart/{USDC_COIN},{DAI_COIN}",
        query_string={"start": str(int(start.timestamp())), "span": "3", "period": "1d"},
    ).respond_with_data(body, content_type="application/json")
    prices = sources.prices.chart([USDC_COIN, DAI_COIN], start, span=3)
    assert prices.equals(parse_coin_chart(json.loads(body)))
    assert len(prices) > 0


@pytest.mark.parametrize(
    ("coins", "start", "span", "message"),
    [
        ([], NOW, 3, "at least one coin"),
        (["0xa0b8"], NOW, 3, "chain:address, got '0xa0b8'"),
        ([USDC_COIN], NOW.replace(tzinfo=None), 3, "timezone-aware"),
        ([USDC_COIN], NOW, 0, "span must be at least 1"),
    ],
)
def test_bad_price_query_is_refused_before_any_request(server, sources, coins, start, span, message):
    with pytest.raises(ValueError, match=message):
        sources.prices.chart(coins, start, span)
    assert server.log == []


def test_fresh_chart_passes_the_gate(server, sources):
    server.expect_request(f"/yields/chart/{USDC_POOL}").respond_with_data(chart_body(), content_type="application/json")
    history = sources.yields.chart(USDC_POOL)
    assert check_market(history, NOW, required_pools=[USDC_POOL]) is history


def test_stale_chart_is_stopped_by_the_gate(server, sources):
    stale = chart_body(last=NOW - timedelta(days=4))
    server.expect_request(f"/yields/chart/{USDC_POOL}").respond_with_data(stale, content_type="application/json")
    reason = f"pool {USDC_POOL}: latest point 2024-05-28T12:00:00\\+00:00 is 96 h old \\(limit 36 h\\)"
    with pytest.raises(StaleDataError, match=reason):
        check_market(sources.yields.chart(USDC_POOL), NOW, required_pools=[USDC_POOL])


# -- news feeds -----------------------------------------------------------------------------------------


def test_rss_and_atom_feeds_are_merged(server, sources):
    server.expect_request("/news/rss").respond_with_data(rss_body(), content_type="application/rss+xml")
    server.expect_request("/news/atom").respond_with_data(atom_body(), content_type="application/atom+xml")
    feeds = [server.url_for("/news/rss"), server.url_for("/news/atom")]
    batch = sources.news.fetch(feeds)
    assert batch.failures == {}
    assert sorted(batch.items["title"]) == sorted(
        [*parse_feed(rss_body(), feeds[0])["title"], *parse_feed(atom_body(), feeds[1])["title"]]
    )
    assert set(batch.items["source"]) == set(feeds)


def test_one_broken_feed_is_logged_counted_and_skipped(server, sources, caplog):
    server.expect_request("/news/rss").respond_with_data(rss_body(), content_type="application/rss+xml")
    server.expect_request("/news/down").respond_with_data("maintenance", status=500)
    not_a_feed = "<html><body>Not a feed</body></html>"
    server.expect_request("/news/html").respond_with_data(not_a_feed, content_type="text/html")
    feeds = [server.url_for("/news/down"), server.url_for("/news/rss"), server.url_for("/news/html")]
    with caplog.at_level(logging.WARNING, logger="sources.news"):
        batch = sources.news.fetch(feeds)
    assert list(batch.items["title"]) == list(parse_feed(rss_body(), feeds[1])["title"])
    assert set(batch.failures) == {feeds[0], feeds[2]}
    assert batch.failures[feeds[0]].startswith("HTTP 500")
    assert "not an RSS or Atom feed" in batch.failures[feeds[2]]
    assert "2 of 3 news feed(s) failed" in caplog.text


def test_all_feeds_failing_is_an_error(server, sources):
    server.expect_request("/news/down").respond_with_data("maintenance", status=502)
    server.expect_request("/news/gone").respond_with_data("gone", status=410)
    with pytest.raises(SourceError, match="all 2 news feed\\(s\\) failed"):
        sources.news.fetch([server.url_for("/news/down"), server.url_for("/news/gone")])


def test_no_feeds_is_a_usage_error(sources):
    with pytest.raises(ValueError, match="at least one feed"):
        sources.news.fetch([])

"""A cycle's inputs from DeFiLlama-shaped answers on a local server: fetched, gated, aligned, hashed."""

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import requests
from pytest_httpserver import HTTPServer
from werkzeug import Request

from devnet.llama_server import NEWS_PATH, SyntheticLlama, serve_synthetic_llama
from sources import (
    GateLimits,
    HttpSettings,
    ImplausibleDataError,
    MissingDataError,
    PayloadError,
    SourceError,
    Sources,
    SourcesConfig,
    StaleDataError,
    open_sources,
)
from sources.inputs import gather_inputs, recent_token_prices
from sources.prices import MAX_COINS_PER_REQUEST, MAX_SPAN_DAYS
from strategy.data import align_to_daily
from strategy.data.defillama import parse_coin_chart, parse_pools
from strategy.data.prices import pool_coins
from strategy.data.schema import POOL, TIMESTAMP
from tests.keeper.llama_payloads import (
    COINS_CHART,
    base_url,
    chart_payload,
    handler_of,
    json_response,
    serve_llama,
    stale_chart,
    utc_now,
)

DEFAULT_LIMITS = GateLimits()


@pytest.fixture(scope="module")
def llama() -> SyntheticLlama:
    return SyntheticLlama.generate(seed=7, days=120, pools=3)


def sources_of(server: HTTPServer, cache_dir: Path, cache_expire_seconds: float = 300.0) -> Sources:
    http = HttpSettings(connect_timeout=2, read_timeout=2, retries=1, backoff_factor=0, retry_after_max=0,
                        cache_dir=cache_dir, cache_expire_seconds=cache_expire_seconds)
    return open_sources(SourcesConfig(yields_base_url=base_url(server), coins_base_url=base_url(server), http=http))


@pytest.fixture
def sources(httpserver: HTTPServer, tmp_path: Path) -> Iterator[Sources]:
    opened = sources_of(httpserver, tmp_path / "cache")
    yield opened
    opened.close()


def gather(sources: Sources, llama: SyntheticLlama, server: HTTPServer, *, markets: int = 2, news: bool = True,
           limits: GateLimits = DEFAULT_LIMITS, now: datetime | None = None):
    return gather_inputs(
        sources, market_pools=list(llama.pool_ids[:markets]), extra_pools=list(llama.pool_ids[markets:]),
        news_feeds=[server.url_for(NEWS_PATH)] if news else [], price_coins=[], price_days=3,
        price_history_days=60, limits=limits, now=now or utc_now(),
    )


def test_fresh_data_gives_aligned_inputs_on_the_latest_common_day(httpserver, sources, llama) -> None:
    serve_llama(httpserver, llama)
    inputs = gather(sources, llama, httpserver)
    assert set(inputs.history[POOL]) == set(llama.pool_ids)  # markets' pools and the extra pool
    assert (inputs.history[TIMESTAMP] == inputs.history[TIMESTAMP].dt.normalize()).all()  # on UTC midnights
    assert inputs.at == inputs.history[TIMESTAMP].max()
    assert inputs.at - pd.Timestamp(utc_now()) <= timedelta(days=1)
    assert sorted(inputs.pools_meta[POOL]) == sorted(llama.pool_ids)
    assert len(inputs.news) > 0 and inputs.news[TIMESTAMP].max() <= pd.Timestamp(utc_now())
    assert inputs.inputs_hash.startswith("0x") and len(inputs.inputs_hash) == 66


def test_the_inputs_hash_names_the_data(httpserver, sources, llama) -> None:
    serve_llama(httpserver, llama)
    with_news = gather(sources, llama, httpserver)
    assert gather(sources, llama, httpserver).inputs_hash == with_news.inputs_hash
    assert gather(sources, llama, httpserver, news=False).inputs_hash != with_news.inputs_hash


def test_stale_market_data_is_refused(httpserver, sources, llama) -> None:
    serve_llama(httpserver, llama, chart=stale_chart(llama, hours=48))
    with pytest.raises(StaleDataError, match="limit 36 h"):
        gather(sources, llama, httpserver)


def test_a_stale_extra_pool_does_not_stop_the_cycle(httpserver, sources, llama) -> None:
    extra = llama.pool_ids[2]
    serve_llama(httpserver, llama, chart=lambda pool, now: chart_payload(
        llama, pool, now - timedelta(hours=72) if pool == extra else now))
    inputs = gather(sources, llama, httpserver)
    assert extra in set(inputs.history[POOL])


def test_an_implausible_point_is_refused(httpserver, sources, llama) -> None:
    def broken(pool: str, now) -> dict:
        payload = chart_payload(llama, pool, now)
        payload["data"][-1]["apy"] = 5000.0  # basis points read as percent: no market pays this
        return payload

    serve_llama(httpserver, llama, chart=broken)
    with pytest.raises(ImplausibleDataError, match="is outside"):
        gather(sources, llama, httpserver)


def test_a_pool_without_points_is_missing_data(httpserver, sources, llama) -> None:
    empty = llama.pool_ids[1]
    serve_llama(httpserver, llama, chart=lambda pool, now: (
        {"status": "success", "data": []} if pool == empty else chart_payload(llama, pool, now)))
    with pytest.raises(MissingDataError, match=empty):
        gather(sources, llama, httpserver)


@pytest.mark.parametrize(("status", "body", "error", "message"), [
    (500, "upstream down", SourceError, "HTTP 500"),
    (200, "<html>maintenance</html>", PayloadError, "not valid JSON"),
    (200, '{"status": "error", "data": []}', PayloadError, "status is 'error'"),
    (200, '{"status": "success", "data": [{"timestamp": "2024-01-01T00:00:00Z"}]}', PayloadError, "tvlUsd"),
])
def test_source_failures_surface_as_source_errors(httpserver, sources, llama, status, body, error, message) -> None:
    httpserver.expect_request(f"/chart/{llama.pool_ids[0]}").respond_with_handler(handler_of(status, body))
    serve_llama(httpserver, llama)  # every other answer is fine; the broken one is matched first
    with pytest.raises(error, match=message):
        gather(sources, llama, httpserver)


def test_pools_listing_may_lack_a_pool(httpserver, sources, llama) -> None:
    missing = llama.pool_ids[0]
    partial = {"status": "success", "data": [p for p in llama.pools_payload(utc_now())["data"] if p["pool"] != missing]}
    httpserver.expect_request("/pools").respond_with_handler(lambda _r: json_response(partial))  # matched first
    serve_llama(httpserver, llama)
    inputs = gather(sources, llama, httpserver, news=False)
    assert missing not in set(inputs.pools_meta[POOL])
    assert missing in set(inputs.history[POOL])


def test_the_devnet_synthetic_server_passes_the_gate(llama, tmp_path) -> None:
    server = serve_synthetic_llama(llama)
    try:
        sources = open_sources(SourcesConfig(yields_base_url=server.url, coins_base_url=server.url,
                                             http=HttpSettings(cache_dir=tmp_path)))
        inputs = gather_inputs(sources, market_pools=list(llama.pool_ids), extra_pools=[],
                               news_feeds=[server.url + NEWS_PATH], price_coins=[], price_days=3,
                               price_history_days=60, limits=GateLimits(), now=utc_now())
        sources.close()
        assert set(inputs.history[POOL]) == set(llama.pool_ids) and len(inputs.news) > 0
        assert requests.get(server.url + "/chart/unknown-pool", timeout=5).status_code == 404
    finally:
        server.stop()


def test_synthetic_pools_are_fresh_stablecoin_lending_pools(llama) -> None:
    now = utc_now()
    payload = llama.pools_payload(now)["data"]
    assert [p["pool"] for p in payload] == list(llama.pool_ids)
    assert all(p["stablecoin"] for p in payload)
    last = pd.Timestamp(llama.chart_payload(llama.pool_ids[0], now)["data"][-1]["timestamp"])
    assert timedelta(hours=1) <= pd.Timestamp(now) - last <= timedelta(hours=2)
    with pytest.raises(ValueError, match="pools must be at least 1"):
        SyntheticLlama.generate(pools=0)


# -- underlying-token prices (DeFiLlama coins) --------------------------------------------------------------


def coins_requests(server: HTTPServer) -> list[Request]:
    return [request for request, _response in server.log if COINS_CHART.match(request.path)]


@pytest.mark.parametrize("point_at", [pd.Timedelta(0), pd.Timedelta(hours=-1), pd.Timedelta(hours=-23)])
def test_the_price_window_is_the_last_days_whatever_the_hour_of_the_points(httpserver, sources, llama,
                                                                           point_at) -> None:
    """Points exactly at midnight, just before it (a cycle between 00:00 and 01:00 UTC) or early in the day:
    the last 60 daily rows are priced, the older ones are not."""
    serve_llama(httpserver, llama)
    now = utc_now()
    history = llama.history(now).drop(columns="price")  # as /chart answers: prices come from the coins API
    history = history.assign(**{TIMESTAMP: history[TIMESTAMP].dt.floor("D") + point_at})
    pools_meta = parse_pools(llama.pools_payload(now))
    at = align_to_daily(history)[TIMESTAMP].max()
    aligned = align_to_daily(recent_token_prices(sources, history, pools_meta, at, 60))
    recent = aligned[TIMESTAMP] >= at - pd.Timedelta(days=59)
    assert aligned.loc[recent, "price"].notna().all() and recent.sum() == 60 * len(llama.pool_ids)
    assert aligned.loc[~recent, "price"].isna().all()


def test_the_inputs_carry_each_single_token_pools_price_for_the_last_days(httpserver, sources, llama) -> None:
    serve_llama(httpserver, llama)
    inputs = gather(sources, llama, httpserver)
    expected = align_to_daily(llama.history(utc_now())).set_index([POOL, TIMESTAMP])["price"]
    priced = inputs.history.set_index([POOL, TIMESTAMP])["price"]
    recent = inputs.history[TIMESTAMP] >= inputs.at - pd.Timedelta(days=59)  # 60 days (aligned up to midnight)
    assert priced[recent.to_numpy()].notna().all() and recent.sum() == 60 * len(llama.pool_ids)
    assert priced[~recent.to_numpy()].isna().all()  # older than sources.price_history_days: not fetched
    assert priced[recent.to_numpy()].to_numpy() == pytest.approx(expected[priced.index[recent.to_numpy()]].to_numpy())
    [request] = coins_requests(httpserver)  # every pool's token in one request
    assert set(request.path.removeprefix("/chart/").split(",")) == set(pool_coins(inputs.pools_meta).values())
    assert request.args["span"] == "62" and int(request.args["start"]) % 86_400 == 0  # a UTC midnight, 2 days early


def test_prices_change_the_inputs_hash(httpserver, sources, llama, tmp_path) -> None:
    serve_llama(httpserver, llama)
    priced = gather(sources, llama, httpserver)
    httpserver.clear_all_handlers()
    httpserver.expect_request(COINS_CHART).respond_with_handler(lambda _r: json_response({"coins": {}}))
    serve_llama(httpserver, llama)
    uncached = sources_of(httpserver, tmp_path / "other-cache")
    unpriced = gather(uncached, llama, httpserver)
    uncached.close()
    assert unpriced.history["price"].isna().all() and unpriced.inputs_hash != priced.inputs_hash


@pytest.mark.parametrize(("status", "body", "error", "message"), [
    (500, "coins down", SourceError, "HTTP 500"),
    (200, '{"coins": {"ethereum:0x1": {"prices": []}}}', PayloadError, "symbol"),
])
def test_a_failing_coins_api_stops_the_inputs(httpserver, sources, llama, status, body, error, message) -> None:
    httpserver.expect_request(COINS_CHART).respond_with_handler(handler_of(status, body))
    serve_llama(httpserver, llama)
    with pytest.raises(error, match=message):
        gather(sources, llama, httpserver)


def test_no_prices_are_fetched_when_no_pool_has_a_single_token(httpserver, sources, llama) -> None:
    pools = llama.pools_payload(utc_now())
    pairs = {"status": "success", "data": [p | {"underlyingTokens": ["0x" + "1" * 40, "0x" + "2" * 40]}
                                           for p in pools["data"]]}
    httpserver.expect_request("/pools").respond_with_handler(lambda _r: json_response(pairs))  # matched first
    serve_llama(httpserver, llama)
    inputs = gather(sources, llama, httpserver)
    assert coins_requests(httpserver) == [] and inputs.history["price"].isna().all()


def test_a_long_price_history_is_fetched_in_chunks_asking_for_every_day_once(httpserver, sources, llama) -> None:
    serve_llama(httpserver, llama)
    coin = next(iter(pool_coins(parse_pools(llama.pools_payload(utc_now()))).values()))
    start = pd.Timestamp(utc_now()).floor("D") - pd.Timedelta(days=799)
    prices = sources.prices.daily([coin], start, 800)
    asked = [(int(r.args["start"]), int(r.args["span"])) for r in coins_requests(httpserver)]
    assert [span for _start, span in asked] == [MAX_SPAN_DAYS, MAX_SPAN_DAYS, 800 - 2 * MAX_SPAN_DAYS]
    days = [(first - int(start.timestamp())) // 86_400 + offset for first, span in asked for offset in range(span)]
    assert days == list(range(800))  # consecutive, no day twice, none left out
    assert len(prices) == len(llama.history(utc_now())) // len(llama.pool_ids)  # the served days, once each
    assert prices["timestamp"].is_unique and (prices["coin"] == coin).all()
    with pytest.raises(ValueError, match="days must be at least 1"):
        sources.prices.daily([coin], start, 0)


def test_many_coins_are_asked_for_in_groups_each_coin_once(httpserver, sources, llama) -> None:
    serve_llama(httpserver, llama)
    known = sorted(set(pool_coins(parse_pools(llama.pools_payload(utc_now()))).values()))
    coins = known + [f"ethereum:0x{i:040x}" for i in range(2 * MAX_COINS_PER_REQUEST)]
    start = pd.Timestamp(utc_now()).floor("D") - pd.Timedelta(days=9)
    prices = sources.prices.daily(coins, start, 10)
    groups = [request.path.removeprefix("/chart/").split(",") for request in coins_requests(httpserver)]
    assert len(groups) == -(-len(coins) // MAX_COINS_PER_REQUEST)
    assert all(len(group) <= MAX_COINS_PER_REQUEST for group in groups)
    assert sorted(coin for group in groups for coin in group) == sorted(coins)
    assert set(prices["coin"]) == set(known)  # DeFiLlama leaves unknown coins out


def test_the_synthetic_coins_chart_answers_known_coins_in_the_documented_shape(llama) -> None:
    server = serve_synthetic_llama(llama)
    try:
        coins = sorted(pool_coins(parse_pools(llama.pools_payload(utc_now()))).values())
        start = int((pd.Timestamp(utc_now()) - pd.Timedelta(days=10)).timestamp())
        answer = requests.get(f"{server.url}/chart/{','.join([*coins, 'ethereum:0xunknown'])}",
                              params={"start": start, "span": 5, "period": "1d"}, timeout=5)
        assert answer.status_code == 200
        parsed = parse_coin_chart(answer.json(), strict=True)
        assert sorted(parsed["coin"].unique()) == coins and (parsed.groupby("coin").size() == 5).all()
        bad = requests.get(f"{server.url}/chart/{coins[0]}", params={"start": start, "span": 5, "period": "1h"},
                           timeout=5)
        assert bad.status_code == 400 and "only 1d" in bad.text
    finally:
        server.stop()


def test_a_stale_market_pool_is_unknown_and_the_others_go_on(httpserver, sources, llama) -> None:
    stopped, fresh = llama.pool_ids[0], llama.pool_ids[1]
    serve_llama(httpserver, llama, chart=lambda pool, now: chart_payload(
        llama, pool, now - timedelta(hours=72) if pool == stopped else now))
    inputs = gather(sources, llama, httpserver)
    assert inputs.unknown_pools == (stopped,)
    assert inputs.at == inputs.history.loc[inputs.history[POOL] == fresh, TIMESTAMP].max()  # not held back by it


def test_the_same_answers_give_the_very_inputs_of_the_call_before_and_moved_ones_new_inputs(
        httpserver, llama, tmp_path) -> None:
    """The inputs of the call before, when built from the same answers with the same pools unknown: their
    document and features are not built again; a fresh session builds inputs of the same hash."""
    now, served = utc_now(), {"clock": utc_now() - timedelta(days=1)}
    serve_llama(httpserver, llama, clock=lambda: served["clock"])
    sources = sources_of(httpserver, tmp_path / "cache", cache_expire_seconds=0.001)  # asked every time
    try:
        first = gather(sources, llama, httpserver, now=now)
        assert gather(sources, llama, httpserver, now=now) is first
        fresh = sources_of(httpserver, tmp_path / "fresh")
        rebuilt = gather(fresh, llama, httpserver, now=now)
        fresh.close()
        assert rebuilt is not first and rebuilt.inputs_hash == first.inputs_hash

        served["clock"] = now  # every answer moves on by a day
        moved = gather(sources, llama, httpserver, now=now)
        assert moved is not first and moved.at == first.at + pd.Timedelta(days=1)
        assert moved.inputs_hash != first.inputs_hash
    finally:
        sources.close()


def test_the_same_answers_with_a_pool_gone_stale_give_new_inputs(httpserver, llama, tmp_path) -> None:
    stopped = llama.pool_ids[0]
    now = utc_now()
    serve_llama(httpserver, llama, clock=lambda: now, chart=lambda pool, at: chart_payload(
        llama, pool, at - timedelta(hours=30) if pool == stopped else at))
    sources = sources_of(httpserver, tmp_path / "cache", cache_expire_seconds=0.001)
    try:
        before = gather(sources, llama, httpserver, now=now)
        later = gather(sources, llama, httpserver, now=now + timedelta(hours=8))  # its last point 38 h old
    finally:
        sources.close()
    assert before.unknown_pools == () and later.unknown_pools == (stopped,) and later is not before

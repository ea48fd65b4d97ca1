"""A cycle's inputs from DeFiLlama-shaped answers on a local server: fetched, gated, aligned, hashed."""

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
import requests
from pytest_httpserver import HTTPServer

from keeper.devdata import NEWS_PATH, SyntheticLlama, serve_synthetic_llama
from keeper.inputs import gather_inputs
from keeper.sources import (
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
from strategy.data.schema import POOL, TIMESTAMP
from tests.keeper.llama_payloads import base_url, chart_payload, handler_of, json_response, serve_llama, stale_chart, utc_now


@pytest.fixture(scope="module")
def llama() -> SyntheticLlama:
    return SyntheticLlama.generate(seed=7, days=120, pools=3)


@pytest.fixture
def sources(httpserver: HTTPServer, tmp_path: Path) -> Iterator[Sources]:
    http = HttpSettings(connect_timeout=2, read_timeout=2, retries=1, backoff_factor=0, retry_after_max=0,
                        cache_dir=tmp_path / "cache")
    opened = open_sources(SourcesConfig(yields_base_url=base_url(httpserver), http=http))
    yield opened
    opened.close()


def gather(sources: Sources, llama: SyntheticLlama, server: HTTPServer, *, markets: int = 2, news: bool = True,
           limits: GateLimits = GateLimits()):
    return gather_inputs(
        sources, market_pools=list(llama.pool_ids[:markets]), extra_pools=list(llama.pool_ids[markets:]),
        news_feeds=[server.url_for(NEWS_PATH)] if news else [], price_coins=[], price_days=3, limits=limits,
        now=utc_now(),
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


def test_implausible_jump_is_refused(httpserver, sources, llama) -> None:
    def jumped(pool: str, now) -> dict:
        payload = chart_payload(llama, pool, now)
        payload["data"][-1]["apy"] += 80.0
        return payload

    serve_llama(httpserver, llama, chart=jumped)
    with pytest.raises(ImplausibleDataError, match="jumped"):
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
    serve_llama(httpserver, llama)
    httpserver.clear_all_handlers()
    httpserver.expect_request(f"/chart/{llama.pool_ids[0]}").respond_with_handler(handler_of(status, body))
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
        sources = open_sources(SourcesConfig(yields_base_url=server.url, http=HttpSettings(cache_dir=tmp_path)))
        inputs = gather_inputs(sources, market_pools=list(llama.pool_ids), extra_pools=[],
                               news_feeds=[server.url + NEWS_PATH], price_coins=[], price_days=3, limits=GateLimits(),
                               now=utc_now())
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

"""DeFiLlama answers for keeper tests, served by pytest-httpserver on 127.0.0.1.

The payloads come from `devnet.llama_server.SyntheticLlama` (strategy.synthetic data in DeFiLlama's documented
shapes). When real answers are recorded (`tests.shared_data.recorded_answer`: shared/data/recorded/ or a
dataset downloaded by `vaultbot data download`), their records are served instead, under the synthetic pool ids and
with the chart's timestamps moved so that its last point is as fresh as the synthetic one.
"""

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import pandas as pd
from pytest_httpserver import HTTPServer, URIPattern
from werkzeug import Request, Response

from devnet.llama_server import (
    NEWS_PATH,
    SyntheticLlama,
    coins_chart_request,
    is_coins_chart,
)
from tests.shared_data import recorded_answer

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@cache
def recorded(name: str) -> Any | None:
    body = recorded_answer(name)
    return None if body is None else json.loads(body)


def pools_payload(llama: SyntheticLlama, now: datetime) -> dict[str, Any]:
    payload = llama.pools_payload(now)
    saved = recorded("defillama-yields-pools.json")
    if saved is None:
        return payload
    # real records under the synthetic ids, keeping the synthetic chain and tokens the coins route can price
    records = [dict(record, pool=mine["pool"], chain=mine["chain"], underlyingTokens=mine["underlyingTokens"])
               for record, mine in zip(saved["data"], payload["data"], strict=False)]
    return {"status": "success", "data": records}


def chart_payload(llama: SyntheticLlama, pool: str, now: datetime) -> dict[str, Any]:
    payload = llama.chart_payload(pool, now)
    saved = recorded("defillama-yields-chart.json")
    if saved is None:
        return payload
    last = pd.Timestamp(payload["data"][-1]["timestamp"])
    shift = last - pd.Timestamp(saved["data"][-1]["timestamp"])
    rank = llama.pool_ids.index(pool)
    points = [dict(point, timestamp=(pd.Timestamp(point["timestamp"]) + shift).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                   apy=point["apy"] * (1 + 0.1 * rank))  # the pools must differ for the allocator to choose
              for point in saved["data"]]
    return {"status": "success", "data": points}


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, content_type="application/json")


class _CoinsChart(URIPattern):
    """The coins API's `/chart/{chain:address,...}`, told apart from `/chart/{pool}` as the devnet server does."""

    def match(self, uri: str) -> bool:
        return is_coins_chart(uri)


COINS_CHART = _CoinsChart()


def coins_chart_handler(llama: SyntheticLlama, clock: Clock = utc_now) -> Callable[[Request], Response]:
    """Answers the coins `/chart/{coins}?start=&span=&period=` like the devnet's synthetic server."""

    def handler(request: Request) -> Response:
        try:
            coins, start, span = coins_chart_request(request.path, request.args)
        except ValueError as error:
            return Response(str(error), status=400)
        return json_response(llama.coins_chart_payload(coins, start, span, clock()))

    return handler


def serve_llama(server: HTTPServer, llama: SyntheticLlama, clock: Clock = utc_now,
                chart: Callable[[str, datetime], dict[str, Any]] | None = None) -> None:
    """Answers /pools, /chart/{pool}, the coins /chart/{coins} and the news feed as of `clock()`; `chart`
    replaces the pool chart payloads."""
    build_chart = chart or (lambda pool, now: chart_payload(llama, pool, now))
    server.expect_request("/pools").respond_with_handler(lambda _r: json_response(pools_payload(llama, clock())))
    for pool in llama.pool_ids:
        server.expect_request(f"/chart/{pool}").respond_with_handler(
            lambda _r, pool=pool: json_response(build_chart(pool, clock())))
    server.expect_request(COINS_CHART).respond_with_handler(coins_chart_handler(llama, clock))
    server.expect_request(NEWS_PATH).respond_with_handler(
        lambda _r: Response(llama.news_feed(clock()), content_type="application/rss+xml"))


def stale_chart(llama: SyntheticLlama, hours: float) -> Callable[[str, datetime], dict[str, Any]]:
    """Chart payloads whose last point is `hours` old."""
    return lambda pool, now: chart_payload(llama, pool, now - timedelta(hours=hours))


def handler_of(status: int, body: str) -> Callable[[Request], Response]:
    return lambda _request: Response(body, status=status)


def base_url(server: HTTPServer) -> str:
    return server.url_for("/").rstrip("/")

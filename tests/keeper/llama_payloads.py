"""DeFiLlama answers for keeper tests, served by pytest-httpserver on 127.0.0.1.

The payloads come from `keeper.devdata.SyntheticLlama` (strategy.synthetic data in DeFiLlama's documented
shapes). When real answers are recorded (`tests.shared_data.recorded_answer`: shared/data/recorded/ or a
dataset downloaded by `vaultbot data download`), their records are served instead, under the synthetic pool ids and with the
chart's timestamps moved so that its last point is as fresh as the synthetic one.
"""

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import pandas as pd
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from keeper.devdata import NEWS_PATH, SyntheticLlama
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
    records = [dict(record, pool=pool) for record, pool in zip(saved["data"], llama.pool_ids, strict=False)]
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


def serve_llama(server: HTTPServer, llama: SyntheticLlama, clock: Clock = utc_now,
                chart: Callable[[str, datetime], dict[str, Any]] | None = None) -> None:
    """Answers /pools, /chart/{pool} and the news feed as of `clock()`; `chart` replaces the chart payloads."""
    build_chart = chart or (lambda pool, now: chart_payload(llama, pool, now))
    server.expect_request("/pools").respond_with_handler(lambda _r: json_response(pools_payload(llama, clock())))
    for pool in llama.pool_ids:
        server.expect_request(f"/chart/{pool}").respond_with_handler(
            lambda _r, pool=pool: json_response(build_chart(pool, clock())))
    server.expect_request(NEWS_PATH).respond_with_handler(
        lambda _r: Response(llama.news_feed(clock()), content_type="application/rss+xml"))


def stale_chart(llama: SyntheticLlama, hours: float) -> Callable[[str, datetime], dict[str, Any]]:
    """Chart payloads whose last point is `hours` old."""
    return lambda pool, now: chart_payload(llama, pool, now - timedelta(hours=hours))


def handler_of(status: int, body: str) -> Callable[[Request], Response]:
    return lambda _request: Response(body, status=status)


def base_url(server: HTTPServer) -> str:
    return server.url_for("/").rstrip("/")

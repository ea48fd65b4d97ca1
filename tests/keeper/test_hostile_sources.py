"""Hostile data servers on 127.0.0.1 (http.server, raw bytes on the socket) against the shared session and a
whole keeper cycle: a server trickling bytes, a gzip bomb, a Retry-After of an hour, a source that fails on
every retry, and a cycle whose data server never finishes.

Each ends in one `SourceError` (the cycle: refused, journaled) within its deadline, never a long sleep, a
traceback or a bomb in the cache. The trickling servers stop by themselves after `TRICKLE_S`.
"""

import gzip
import threading
import time
import tracemalloc
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import BinaryIO

import pytest
from werkzeug import Request, Response

from journal.db import CycleStatus
from keeper.metrics import KeeperMetrics
from keeper.startup import open_keeper
from sources import HttpSettings, SourceError, SourceSession, build_session
from sources.http import fetch_json
from tests.keeper.keeper_world import (
    artifact_dir,
    config_of,
    funded,
    journal,
    keeper_table,
    llama,
)
from tests.keeper.test_cycle_faults import break_chart

BYTE_EVERY_S = 0.2
TRICKLE_S = 10.0  # the trickling servers give up after this: a test on code without a deadline ends too
DEADLINE_S = 1.0
MARGIN_S = 1.0
CAP = 2**20
BOMB = gzip.compress(b"0" * (50 * CAP))  # about 50 KB on the wire, 50 MiB once inflated


def trickle(wfile: BinaryIO, data: bytes) -> None:
    """Writes `data` a byte every BYTE_EVERY_S for at most TRICKLE_S; stops when the client hangs up."""
    stop = time.monotonic() + TRICKLE_S
    try:
        for byte in data:
            if time.monotonic() > stop:
                return
            wfile.write(bytes([byte]))
            wfile.flush()
            time.sleep(BYTE_EVERY_S)
    except OSError:
        return  # the client gave up: what it should do


class Hostile(BaseHTTPRequestHandler):
    """GET /trickle-body, /trickle-headers, /bomb, /declares-a-terabyte, /retry-after/<seconds>, /down, /ok."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.server.paths.append(self.path)  # type: ignore[attr-defined]
        if self.path == "/trickle-body":
            body = b"[" + b" " * 200 + b"]"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            trickle(self.wfile, body)
        elif self.path == "/trickle-headers":
            trickle(self.wfile, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Slow: " + b"x" * 200)
        elif self.path == "/bomb":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(BOMB)))
            self.end_headers()
            self.wfile.write(BOMB)
        elif self.path == "/declares-a-terabyte":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(2**40))
            self.end_headers()
            trickle(self.wfile, b"[" + b" " * 200)  # never that much: refused on the header alone
        elif self.path.startswith("/retry-after/"):
            self.answer(429, b"slow down", {"Retry-After": self.path.rsplit("/", 1)[1]})
        elif self.path == "/down":
            self.answer(503, b"down")
        else:
            self.answer(200, b'{"ok": true}')

    def answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class HostileServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Hostile)
        self.paths: list[str] = []  # every request's path, in order

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client hanging up on a trickle is the point, not an error


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    server = HostileServer()
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def settings(tmp_path: Path) -> HttpSettings:
    """Per-read time-outs far above the trickle's pace, a short fetch deadline, a small body cap."""
    return HttpSettings(read_timeout=5.0, fetch_deadline=DEADLINE_S, max_body_bytes=CAP, retries=2,
                        backoff_factor=0.0, cache_dir=tmp_path / "cache")


def as_is(payload: object, where: str) -> object:
    return payload


def failing(session: SourceSession, url: str) -> tuple[SourceError, float]:
    """The SourceError a fetch of `url` raises, and how long it took."""
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        fetch_json(session, url, as_is)
    return caught.value, time.monotonic() - started


# -- the fetch deadline ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/trickle-body", "/trickle-headers"])
def test_a_trickling_server_is_cut_off_at_the_fetch_deadline(hostile, settings, path):
    """A byte every 0.2 s never trips a 5 s read time-out; the 1 s deadline of the whole fetch stops it."""
    error, took = failing(build_session(settings), hostile.url(path))
    assert error.url == hostile.url(path) and error.status is None
    assert error.reason == f"no complete answer by the fetch deadline ({DEADLINE_S:g} s)"
    assert DEADLINE_S - 0.1 <= took < DEADLINE_S + MARGIN_S


def test_the_cycle_deadline_cuts_a_fetch_short_and_refuses_fetches_after_it(hostile, settings):
    session = build_session(settings.model_copy(update={"fetch_deadline": 30.0}))
    session.budget.start_cycle(0.5)
    error, took = failing(session, hostile.url("/trickle-body"))
    assert error.reason == "no complete answer by the cycle deadline (0.5 s)"
    assert took < 0.5 + MARGIN_S
    error, took = failing(session, hostile.url("/ok"))  # a healthy source too: the cycle's time is up
    assert error.reason == "not fetched: past the cycle deadline (0.5 s)" and took < 0.1
    session.budget.start_cycle(0.5)  # the next cycle has its own
    assert fetch_json(session, hostile.url("/ok"), as_is) == {"ok": True}


# -- the body cap ---------------------------------------------------------------------------------------


def test_a_body_declared_past_the_cap_is_refused_before_it_is_read(hostile, settings):
    error, took = failing(build_session(settings), hostile.url("/declares-a-terabyte"))
    assert error.reason == f"body of {2**40:,} bytes declared, more than {CAP:,} (max_body_bytes)"
    assert took < MARGIN_S  # not read until the deadline


def test_a_gzip_bomb_is_refused_while_inflating_and_never_cached(hostile, settings):
    session = build_session(settings)
    tracemalloc.start()
    try:
        error, took = failing(session, hostile.url("/bomb"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert error.reason == f"body larger than {CAP:,} bytes once decoded (max_body_bytes)"
    assert peak < 8 * CAP, f"{peak / 2**20:.0f} MiB held for a 1 MiB cap"  # inflated a chunk at a time
    assert took < MARGIN_S
    assert list(session.cache.responses.keys()) == []  # nothing of it reached the SQLite cache
    assert fetch_json(session, hostile.url("/ok"), as_is) == {"ok": True}  # and the session goes on


# -- Retry-After and the retry budget -------------------------------------------------------------------


def test_a_retry_after_of_an_hour_fails_at_once_instead_of_sleeping(hostile, settings):
    session = build_session(settings.model_copy(update={"fetch_deadline": 60.0, "retry_after_max": 30}))
    error, took = failing(session, hostile.url("/retry-after/3600"))
    assert error.reason == "HTTP 429 asking to retry after 3600 s, over the 30 s allowed (retry_after_max)"
    assert took < MARGIN_S


def test_a_retry_after_past_the_fetch_deadline_fails_at_once(hostile, settings):
    session = build_session(settings.model_copy(update={"retry_after_max": 30}))
    error, took = failing(session, hostile.url("/retry-after/5"))  # allowed, but the fetch has 1 s
    assert error.reason == f"HTTP 429, and a retry would pass the fetch deadline ({DEADLINE_S:g} s)"
    assert took < MARGIN_S


def test_the_retries_of_a_cycle_share_one_budget(hostile, settings):
    """Two retries per fetch, three per cycle: the second fetch gets one, the third none; a new cycle all."""
    session = build_session(settings.model_copy(update={"retries_per_cycle": 3}))
    down = hostile.url("/down")
    reasons, requests = [], []
    for _ in range(3):
        before = len(hostile.paths)
        reasons.append(failing(session, down)[0].reason)
        requests.append(len(hostile.paths) - before)
    spent = "HTTP 503, and the 3 retries a cycle may make are spent (retries_per_cycle)"
    assert reasons == ["HTTP 503 Service Unavailable: down", spent, spent]
    assert requests == [3, 2, 1]  # the third fails on its first answer: fast
    session.budget.start_cycle(None)
    assert failing(session, down)[0].reason == "HTTP 503 Service Unavailable: down"
    assert len(hostile.paths) == 6 + 3


# -- a whole cycle --------------------------------------------------------------------------------------


@pytest.mark.anvil
def test_a_cycle_whose_data_server_never_finishes_ends_at_its_deadline(w3, funded, keeper_table, httpserver,
                                                                        llama):
    """The chart trickles for far longer than the cycle may take: the cycle is refused at its deadline, its
    reason journaled, without a transaction; the per-fetch deadline (60 s) and read time-out never fire."""
    deadline_s = 3.0

    def trickling(_request: Request) -> Response:
        def body() -> Iterator[bytes]:
            stop = time.monotonic() + TRICKLE_S
            while time.monotonic() < stop:
                yield b" "
                time.sleep(BYTE_EVERY_S)

        return Response(body(), content_type="application/json")

    break_chart(httpserver, llama, trickling)
    keeper_table["service"]["cycle_deadline_s"] = deadline_s
    keeper_table["sources"]["http"]["fetch_deadline"] = 60.0
    config = config_of(keeper_table)
    metrics = KeeperMetrics(max_age_s=60)
    nonce = w3.eth.get_transaction_count(funded.keeper)
    with open_keeper(config, metrics=metrics) as keeper:
        started = time.monotonic()
        outcome = keeper.run_cycle()
        took = time.monotonic() - started
    assert outcome.status == CycleStatus.REFUSED and outcome.failure_kind == "source"
    assert outcome.reason.startswith("SourceError: ") and outcome.reason.endswith(
        f"/chart/{llama.pool_ids[0]}: no complete answer by the cycle deadline ({deadline_s:g} s)")
    assert took < deadline_s + 2 * MARGIN_S  # the refusal journaled, nothing more
    db = journal(config)
    cycle = db.recent_cycles(1)[0]
    assert (cycle.status, cycle.reason) == (CycleStatus.REFUSED, outcome.reason)
    assert db.pending_transactions() == []
    db.close()
    assert w3.eth.get_transaction_count(funded.keeper) == nonce
    assert metrics.registry.get_sample_value("vaultbot_keeper_failures_total", {"reason": "source"}) == 1

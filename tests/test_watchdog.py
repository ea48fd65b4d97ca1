"""The deadline watchdog of one download (`vaultbot.watchdog`) against a real trickling server on 127.0.0.1, over
HTTP and TLS: a byte every BYTE_EVERY_S never trips a per-read time-out, so a plain session reads until the server
gives up (TRICKLE_S), where a watched one ends at its deadline; a kept-alive connection is watched by the request it
carries, a socket handed over after the deadline is shut at once, a watched session refuses to run unwatched, and a
TLS handshake a server trickles ends at the connect time-out.
"""

import contextlib
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from vaultbot.watchdog import Watchdog, WatchedAdapter

BYTE_EVERY_S = 0.05
TRICKLE_S = 2.5  # the server gives up after this: a test of code without a deadline ends too
READ_TIMEOUT_S = 1.0  # far above the trickle's pace: it never fires
DEADLINE_S = 0.5
MARGIN_S = 1.0
BLOCK_BYTES = 2**16  # what a slow reader takes at a time: a byte would stall TCP until the write time-out fired
TIMEOUTS = (READ_TIMEOUT_S, READ_TIMEOUT_S)


class Trickle(BaseHTTPRequestHandler):
    """GET /ok: two bytes, the connection kept alive; any other GET: a long body, a byte every BYTE_EVERY_S;
    POST: the request body read a block every BYTE_EVERY_S."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.server.clients.add(self.client_address)  # type: ignore[attr-defined]
        if self.path == "/ok":
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(10**6))
        self.end_headers()
        stop = time.monotonic() + TRICKLE_S
        try:
            while time.monotonic() < stop:
                self.wfile.write(b" ")
                time.sleep(BYTE_EVERY_S)
        except OSError:
            pass  # the client hung up: what a watched one does
        self.close_connection = True  # given up: the body ends short of its length

    def do_POST(self) -> None:
        stop = time.monotonic() + TRICKLE_S
        with contextlib.suppress(OSError):
            while time.monotonic() < stop and self.rfile.read1(BLOCK_BYTES):
                time.sleep(BYTE_EVERY_S)
        self.close_connection = True  # given up before the body ended: nothing to answer

    def log_message(self, *args: object) -> None:
        pass


class TrickleServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, tls: ssl.SSLContext | None) -> None:
        super().__init__(("127.0.0.1", 0), Trickle)
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.scheme = "http" if tls is None else "https"
        self.clients: set[tuple[str, int]] = set()  # the (host, port) of every connection a request came on

    def url(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server_address[1]}{path}"

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client hanging up on a trickle is the point


@contextmanager
def serving(tls: ssl.SSLContext | None = None) -> Iterator[TrickleServer]:
    server = TrickleServer(tls)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


@pytest.fixture
def server() -> Iterator[TrickleServer]:
    with serving() as running:
        yield running


def session(adapter: requests.adapters.HTTPAdapter, verify: Path | None = None) -> requests.Session:
    """A session of `adapter` (the environment's proxies ignored), trusting `verify` for TLS."""
    made = requests.Session()
    made.trust_env = False
    made.verify = str(verify) if verify is not None else True
    for scheme in ("http://", "https://"):
        made.mount(scheme, adapter)
    return made


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_watched_download_ends_at_its_deadline_where_a_read_timeout_never_fires(certificate, scheme):
    cert, key = certificate
    tls = None
    if scheme == "https":
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(cert, key)
    with serving(tls) as trickling:
        url = trickling.url("/trickle")
        started = time.monotonic()
        with pytest.raises(requests.RequestException):  # cut short when the server gives up
            session(requests.adapters.HTTPAdapter(), cert).get(url, timeout=TIMEOUTS)
        assert time.monotonic() - started >= TRICKLE_S  # every byte reset the read time-out
        started = time.monotonic()
        with Watchdog(DEADLINE_S) as watchdog, pytest.raises(requests.RequestException):
            session(WatchedAdapter(), cert).get(url, timeout=TIMEOUTS)
        took = time.monotonic() - started
    assert watchdog.expired and DEADLINE_S - 0.05 <= took < DEADLINE_S + MARGIN_S


def test_a_kept_alive_connection_is_watched_by_the_request_it_carries(server):
    """Connected under the first request's watchdog, its socket is shut by the second's."""
    watched = session(WatchedAdapter())
    with Watchdog(60.0):
        assert watched.get(server.url("/ok"), timeout=TIMEOUTS).content == b"ok"
    started = time.monotonic()
    with Watchdog(DEADLINE_S) as watchdog, pytest.raises(requests.RequestException):
        watched.get(server.url("/trickle"), timeout=TIMEOUTS)
    assert watchdog.expired and time.monotonic() - started < DEADLINE_S + MARGIN_S
    assert len(server.clients) == 1  # one connection carried both


def test_sending_a_request_is_watched_from_the_connection_on(server):
    """A server reading the request slowly resets every write time-out, as a trickled answer resets the reads."""
    def blocks() -> Iterator[bytes]:  # 64 MiB, a block at a time: more than the server reads in TRICKLE_S
        return (b"x" * BLOCK_BYTES for _ in range(1024))

    url = server.url("/slow-reader")
    started = time.monotonic()
    with pytest.raises(requests.ConnectionError):  # the server gives up
        session(requests.adapters.HTTPAdapter()).post(url, data=blocks(), timeout=TIMEOUTS)
    assert time.monotonic() - started >= TRICKLE_S
    started = time.monotonic()
    with Watchdog(DEADLINE_S) as watchdog, pytest.raises(requests.ConnectionError):
        session(WatchedAdapter()).post(url, data=blocks(), timeout=TIMEOUTS)
    assert watchdog.expired and time.monotonic() - started < DEADLINE_S + MARGIN_S


def test_a_socket_handed_over_after_the_deadline_is_shut_at_once(server):
    with Watchdog(0.0) as watchdog:
        while not watchdog.expired:
            time.sleep(0.01)
        started = time.monotonic()
        with pytest.raises(requests.ConnectionError):
            session(WatchedAdapter()).get(server.url("/trickle"), timeout=TIMEOUTS)
    assert time.monotonic() - started < MARGIN_S


def test_a_watched_session_refuses_a_request_outside_a_watchdog(server):
    with pytest.raises(RuntimeError, match="outside a Watchdog"):
        session(WatchedAdapter()).get(server.url("/ok"), timeout=TIMEOUTS)


@contextmanager
def trickling_handshake() -> Iterator[int]:
    """A TCP server on 127.0.0.1 (its port) that answers a TLS ClientHello with a record header promising 16 KiB,
    then a byte of it every BYTE_EVERY_S until TRICKLE_S: the handshake never fails and never ends."""
    listener = socket.create_server(("127.0.0.1", 0))

    def answer(client: socket.socket) -> None:
        with client, contextlib.suppress(OSError):
            client.recv(BLOCK_BYTES)
            client.sendall(b"\x16\x03\x03\x40\x00")  # handshake record, TLS 1.2, 16,384 bytes to follow
            stop = time.monotonic() + TRICKLE_S
            while time.monotonic() < stop:
                client.sendall(b"\x00")
                time.sleep(BYTE_EVERY_S)

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                threading.Thread(target=answer, args=(listener.accept()[0],), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def test_a_tls_handshake_a_server_trickles_ends_at_the_connect_timeout():
    # The watchdog sees a TLS socket only once its handshake is done; what bounds the handshake is Python itself,
    # which takes the socket's time-out (urllib3's connect time-out) as a deadline for the whole handshake, not
    # per read. A deadline passing during a handshake is therefore overrun by at most the connect time-out.
    connect_s, read_s = DEADLINE_S, TRICKLE_S
    with trickling_handshake() as port:
        started = time.monotonic()
        with Watchdog(60.0), pytest.raises(requests.RequestException):
            session(WatchedAdapter()).get(f"https://127.0.0.1:{port}/", timeout=(connect_s, read_s))
        took = time.monotonic() - started
    assert connect_s - 0.05 <= took < connect_s + MARGIN_S


def test_watchdogs_under_way_together_each_expire_at_their_own_deadline() -> None:
    # They share one timer thread: a watchdog exited before its deadline must never shut a socket after.
    pairs = [socket.socketpair() for _ in range(3)]
    try:
        with Watchdog(0.2) as short, Watchdog(60.0) as long:
            short.watch(pairs[0][0])
            long.watch(pairs[1][0])
            assert pairs[0][0].recv(1) == b""  # shut at 0.2 s: the blocked read returns
            pairs[1][1].sendall(b"x")
            assert pairs[1][0].recv(1) == b"x"  # still open
        assert short.expired and not long.expired
        with Watchdog(0.05) as exited:
            exited.watch(pairs[2][0])
        time.sleep(0.2)
        pairs[2][1].sendall(b"y")
        assert pairs[2][0].recv(1) == b"y" and not exited.expired  # exited before its deadline: left alone
    finally:
        for pair in pairs:
            for end in pair:
                end.close()

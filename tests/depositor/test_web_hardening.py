"""The page's server against hostile clients, over raw sockets: lengths that would make it read without end,
Host headers of another origin (DNS rebinding), clients that stall, too many connections, and a journal
database whose URL holds a password."""

import json
import logging
import socket
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from depositor.web.server import serve, web_app
from vaultbot.wsgi import serve_wsgi

if TYPE_CHECKING:
    from depositor.vault import DepositorVault

TIMEOUT_S = 1.0  # the server's socket time-out in these tests
PROMPT_S = 0.5  # an answer that does not wait on the client comes well within this
BODY = b"x" * 8 * 2**20  # more than the kernel buffers on both sides hold


class StubViews:
    """Just enough of depositor.views.VaultViews for the HTTP side."""

    def vault(self) -> dict[str, Any]:
        return {"route": "vault"}

    def account(self, address: str) -> dict[str, Any]:
        return {"address": address}

    def plan(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"request": request}

    def explain(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"request": request}

    def result(self, tx_hash: str) -> dict[str, Any]:
        return {"tx": tx_hash}

    def verify(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"request": request}


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    server = serve(StubViews(), "127.0.0.1", 0, request_timeout_s=TIMEOUT_S, allowed_hosts=["Vault.Example.com"])
    yield server.port
    server.stop()


def request_head(method: str, path: str, host: str | None, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", *([f"Host: {host}"] if host is not None else []),
             *(f"{name}: {value}" for name, value in (headers or {}).items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_answer(sock: socket.socket) -> tuple[int, dict[str, Any]]:
    """Status and JSON body of the answer; the server closes the connection after it (HTTP/1.0)."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


def ask(port: int, head: bytes, body: bytes = b"") -> tuple[int, dict[str, Any]]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head + body)
        return read_answer(sock)


def vault_figures(port: int) -> tuple[int, dict[str, Any]]:
    return ask(port, request_head("GET", "/api/vault", f"127.0.0.1:{port}"))


def test_a_negative_length_is_refused_without_reading_the_body(port: int) -> None:
    """`Content-Length: -1` used to read the stream to its end: hundreds of MB, as long as the client sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=3 * TIMEOUT_S) as sock:
        sock.sendall(request_head("POST", "/api/plan", f"127.0.0.1:{port}", {"Content-Length": "-1"}))
        started = time.monotonic()
        status, body = read_answer(sock)  # answered before a byte of the body was sent
        assert time.monotonic() - started < PROMPT_S
        assert (status, body) == (400, {"error": "bad Content-Length header '-1': not a number of bytes"})
        with pytest.raises((BrokenPipeError, ConnectionResetError)):  # closed: the body's megabytes go nowhere
            sock.sendall(BODY)
    assert vault_figures(port) == (200, {"route": "vault"})  # and it serves the next request


def test_every_unusable_length_is_answered_at_once(port: int) -> None:
    """Each answered without waiting for a body; the old server read '+5' and 'chunked' bodies as it pleased."""
    cases = [
        ({"Content-Length": "+5"}, 400), ({"Content-Length": "1e3"}, 400), ({"Content-Length": "0x10"}, 400),
        ({"Content-Length": "١٢"}, 400), ({"Content-Length": "65537"}, 413), ({"Content-Length": "9" * 5000}, 413),
        ({"Transfer-Encoding": "chunked"}, 411), ({"Transfer-Encoding": "chunked", "Content-Length": "5"}, 411),
    ]
    for headers, expected in cases:
        with socket.create_connection(("127.0.0.1", port), timeout=3 * TIMEOUT_S) as sock:
            sock.sendall(request_head("POST", "/api/plan", f"127.0.0.1:{port}", headers))
            started = time.monotonic()
            status, body = read_answer(sock)
        assert (status, time.monotonic() - started < PROMPT_S) == (expected, True), headers
        assert set(body) == {"error"} and len(body["error"]) < 200, body


def test_only_its_own_host_names_are_answered(port: int) -> None:
    """A page on evil.example whose name resolves to 127.0.0.1 (DNS rebinding) must not read the vault's figures."""
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1", f"127.0.0.1:{port + 1}", None):
        status, body = ask(port, request_head("GET", "/api/vault", host))
        assert status == 421, host
        assert body["error"].startswith("this server does not answer for host"), body
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}", f"[::1]:{port}", "vault.example.com"):
        assert ask(port, request_head("GET", "/api/vault", host)) == (200, {"route": "vault"}), host


def test_a_client_that_stalls_is_dropped_while_others_are_served(port: int) -> None:
    """Headers promising 100 bytes, then 10: the old server waited for the other 90 for ever, holding a thread."""
    with socket.create_connection(("127.0.0.1", port), timeout=5 * TIMEOUT_S) as stalled, \
            socket.create_connection(("127.0.0.1", port), timeout=5 * TIMEOUT_S) as silent:
        promise = request_head("POST", "/api/plan", f"127.0.0.1:{port}", {"Content-Length": "100"})
        stalled.sendall(promise + b'{"a": "12')
        started = time.monotonic()
        for _ in range(3):  # meanwhile the server answers others at once
            assert vault_figures(port) == (200, {"route": "vault"})
        assert time.monotonic() - started < TIMEOUT_S
        assert read_answer(stalled) == (408, {"error": "the request body did not arrive in time"})
        assert silent.recv(1) == b""  # connected, never sent a byte: closed without an answer
        assert time.monotonic() - started < 3 * TIMEOUT_S


def test_connections_past_the_cap_are_turned_away_at_once() -> None:
    """Each connection holds a thread until it ends or times out; past the cap the server answers 503, no thread."""
    server = serve_wsgi(web_app(StubViews()), "127.0.0.1", 0, name="capped", max_connections=2, request_timeout_s=5)
    try:
        idle = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(2)]
        time.sleep(0.2)  # both accepted, each now held by a thread waiting for its request
        started = time.monotonic()
        status, body = vault_figures(server.port)
        assert (status, time.monotonic() - started < PROMPT_S) == (503, True)
        assert body == {"error": "the server is busy: too many connections; try again shortly"}
        for sock in idle:
            sock.close()
        time.sleep(0.2)  # their threads see the end of the stream and give their slots back
        assert vault_figures(server.port) == (200, {"route": "vault"})
    finally:
        server.stop()


@pytest.mark.anvil
def test_a_journal_database_that_is_down_shows_no_password(depositor_vault: "DepositorVault",
                                                           caplog: pytest.LogCaptureFixture) -> None:
    from chain.errors import RpcUnavailable
    from depositor.keeper_health import JOURNAL_UNAVAILABLE, KeeperSources
    from depositor.views import VaultViews

    keeper = KeeperSources(database_url="postgresql://alice:s3cret@127.0.0.1:1/keeper")  # nothing listens on port 1
    server = serve(VaultViews(depositor_vault, keeper), "127.0.0.1", 0, unavailable=(RpcUnavailable,))
    try:
        with caplog.at_level(logging.DEBUG), \
                socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(request_head("GET", "/api/vault", f"127.0.0.1:{server.port}"))
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    finally:
        server.stop()
    answer = b"".join(chunks)
    assert answer.startswith(b"HTTP/1.0 200 ")
    figures = json.loads(answer.partition(b"\r\n\r\n")[2])
    assert figures["keeper"] == {"summary": JOURNAL_UNAVAILABLE, "healthy": None, "cycles": []}
    assert b"s3cret" not in answer
    assert "cannot read the keeper journal postgresql://***@127.0.0.1:1/keeper" in caplog.text  # the log says why
    assert "s3cret" not in caplog.text

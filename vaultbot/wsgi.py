"""A small threaded HTTP server for the keeper's own WSGI apps (metrics/health, the devnet data source, the
depositors' page).

It stands in front of clients that may be hostile, so every connection gets a socket time-out (a client that
sends nothing, or headers and then a short body, is dropped instead of holding its thread for ever), at most
`max_connections` are served at once (past that a connection is answered 503 and closed, no thread started),
and a server given `allowed_hosts` answers only requests whose Host header names it (DNS rebinding: a page
from another origin whose name resolves to 127.0.0.1 must not read it). Its own refusals are JSON
`{"error": message}`, like the apps' errors.
"""

import json
import logging
import socket
import sys
import threading
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

REQUEST_TIMEOUT_S = 10.0  # per socket read or write: a browser on the same machine never waits that long
MAX_CONNECTIONS = 32  # a page for a few depositors; a slow client holds one slot for at most the time-out
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")  # always answered at the bound port
SHOWN_HOST_CHARS = 100  # a refused Host header is quoted up to this length


def json_answer(start_response: StartResponse, status: str, payload: dict[str, Any]) -> list[bytes]:
    """A JSON answer, never cached; errors are `{"error": message}`, the server's own as the apps'."""
    body = json.dumps(payload).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                            ("Cache-Control", "no-store")])
    return [body]


_BUSY_BODY = json.dumps({"error": "the server is busy: too many connections; try again shortly"}).encode()
_BUSY = (b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
         b"Content-Length: %d\r\n\r\n%s" % (len(_BUSY_BODY), _BUSY_BODY))


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], *, request_timeout_s: float, max_connections: int) -> None:
        super().__init__(address, _QuietHandler)
        self.request_timeout_s = request_timeout_s
        self._slots = threading.BoundedSemaphore(max_connections)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            _refuse_busy(request)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:  # no thread started: nobody else gives the slot back
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, OSError):  # timed out, reset, gone: the client's doing, not a bug worth a traceback
            log.debug("connection from %s dropped: %s", client_address[0], error)
        else:
            log.exception("request from %s failed", client_address[0])


def _refuse_busy(request: socket.socket) -> None:
    try:
        request.setblocking(False)  # a fresh socket's buffer takes these few bytes; never wait for the client
        request.send(_BUSY)
    except OSError:
        pass  # the client is gone already


class _QuietHandler(WSGIRequestHandler):
    server: _ThreadingServer

    def setup(self) -> None:
        # StreamRequestHandler.setup puts it on the socket; typeshed calls it a ClassVar, setup reads it per instance
        self.timeout = self.server.request_timeout_s  # type: ignore[misc]
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s: " + format, self.server.server_address, *args)


def _host_checked(app: WsgiApp, allowed: frozenset[str]) -> WsgiApp:
    def checked(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        host = environ.get("HTTP_HOST", "").strip().lower()
        if host not in allowed:
            shown = host if len(host) <= SHOWN_HOST_CHARS else host[:SHOWN_HOST_CHARS] + "..."
            return json_answer(start_response, "421 Misdirected Request",
                               {"error": f"this server does not answer for host {shown!r}"})
        return app(environ, start_response)

    return checked


def _host_header(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"  # an IPv6 literal is bracketed in a Host header


@dataclass
class WsgiServer:
    """A running server; `port` is the bound one (useful with port 0)."""

    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return self.server.server_port

    @property
    def url(self) -> str:
        host = self.server.server_address[0]
        if isinstance(host, bytes):  # typed so for Unix sockets; an IP server's address is text
            host = host.decode()
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def serve_wsgi(app: WsgiApp, host: str, port: int, *, name: str, request_timeout_s: float = REQUEST_TIMEOUT_S,
               max_connections: int = MAX_CONNECTIONS, allowed_hosts: Collection[str] | None = None) -> WsgiServer:
    """Serves `app` on host:port (0 = any free port) from a daemon thread until `stop()`.

    `allowed_hosts` None: any Host header; else the bound address and the loopback names at the bound port,
    plus these Host headers exactly (e.g. the name a reverse proxy forwards), case-insensitive.
    """
    server = _ThreadingServer((host, port), request_timeout_s=request_timeout_s, max_connections=max_connections)
    if allowed_hosts is not None:
        bound = server.server_port
        local = {_host_header(host, bound), *(f"{name}:{bound}" for name in LOOPBACK_NAMES)}
        app = _host_checked(app, frozenset({entry.strip().lower() for entry in (*local, *allowed_hosts)}))
    server.set_app(app)
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    return WsgiServer(server, thread)

"""The deadline of one download, which per-read time-outs cannot give: a server trickling bytes resets every one of
them, so a watchdog timer shuts the download's sockets when its deadline passes and the blocked read returns;
and its size (`read_at_most`), so that a server cannot fill the memory either.

A request sent through a `WatchedAdapter` must run inside a `Watchdog` (`with Watchdog(seconds) as watchdog:`);
its connections find that watchdog in a context variable and hand it their sockets. After the download,
`watchdog.expired` tells a deadline from any other failure, and a body without a length, which ends at the shut
socket as if it were whole, from a complete one.
"""

import contextlib
import heapq
import itertools
import socket
import threading
import time
from contextvars import ContextVar
from typing import Any, Self

import requests
from requests.adapters import HTTPAdapter
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, ProxyManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.response import HTTPResponse

CHUNK_BYTES = 64 * 1024  # decoded bytes per read: a compressed body (a gzip bomb) is inflated this much at a time


class Watchdog:
    """Shuts every socket handed to it once `seconds` have passed since it was entered, and says so (`expired`)."""

    def __init__(self, seconds: float) -> None:
        self._seconds = max(seconds, 0.0)
        self._expired = self._done = False
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()  # a socket handed over as the deadline passes is shut by one of the two

    @property
    def expired(self) -> bool:
        return self._expired

    def watch(self, sock: socket.socket) -> None:
        """Shut `sock` at the deadline, or at once if it has passed."""
        with self._lock:
            self._sockets.add(sock)
            if self._expired:
                _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            if self._done:  # exited as the deadline passed: nothing of it is under way any more
                return
            self._expired = True
            for sock in self._sockets:
                _shut(sock)

    @classmethod
    def under_way(cls) -> Self:
        """The watchdog entered around the request under way (one of this class)."""
        watchdog = _under_way.get(None)
        if not isinstance(watchdog, cls):
            raise RuntimeError(f"a watched connection used outside a {cls.__name__}")
        return watchdog

    def __enter__(self) -> Self:
        self._token = _under_way.set(self)
        _deadlines.add(time.monotonic() + self._seconds, self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self._done = True  # `_Deadlines` drops it when its time comes
        _under_way.reset(self._token)


class _Deadlines:
    """One daemon thread expiring every watchdog at its deadline: a thread (`threading.Timer`) per watchdog cost
    more to start than a JSON-RPC request to a local node takes (0.4 ms against 1-2 ms)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Watchdog]] = []
        self._order = itertools.count()  # ties are taken in the order added, never by comparing watchdogs
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, when: float, watchdog: Watchdog) -> None:
        with self._changed:
            heapq.heappush(self._heap, (when, next(self._order), watchdog))
            if self._thread is None or not self._thread.is_alive():  # the first, or the first after a fork
                self._thread = threading.Thread(target=self._run, name="vaultbot-watchdog", daemon=True)
                self._thread.start()
            self._changed.notify()

    def _run(self) -> None:
        with self._changed:
            while True:
                now = time.monotonic()
                while self._heap and (self._heap[0][0] <= now or self._heap[0][2]._done):
                    _, _, watchdog = heapq.heappop(self._heap)
                    watchdog._expire()  # one exited already ignores it
                self._changed.wait(self._heap[0][0] - now if self._heap else None)


_under_way: ContextVar[Watchdog] = ContextVar("vaultbot_watchdog")
_deadlines = _Deadlines()


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed: nothing left to stop
        # socket.socket's own shutdown: an SSLSocket's would tear down its TLS state under the reading thread.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _WatchedHTTPConnection(HTTPConnection):
    """Hands its socket to the watchdog under way as soon as it connects, so that sending the request is watched
    too, and again as each request waits for its answer: a kept-alive connection was connected under an earlier
    request's watchdog, and connecting alone would leave it unwatched. A deadline passed already shuts it at once.
    """

    def connect(self) -> None:
        super().connect()
        self._hand_over()

    def getresponse(self) -> HTTPResponse:  # type: ignore[override]
        self._hand_over()
        return super().getresponse()

    def _hand_over(self) -> None:
        if self.sock is not None:
            Watchdog.under_way().watch(self.sock)


class _WatchedHTTPSConnection(_WatchedHTTPConnection, HTTPSConnection):
    """The same over TLS (the MRO puts the watch around HTTPSConnection's own connect and getresponse)."""


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_WATCHED_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class WatchedAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections, direct or through an HTTP proxy, are watched: each request it sends must
    run inside a `Watchdog`."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _WATCHED_POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if isinstance(manager, ProxyManager):  # a SOCKS proxy keeps urllib3's SOCKS pools (and no watchdog)
            manager.pool_classes_by_scheme = _WATCHED_POOLS
        return manager


def watched_session() -> requests.Session:
    """A session whose every request must run inside a `Watchdog`."""
    session = requests.Session()
    for scheme in ("http://", "https://"):
        session.mount(scheme, WatchedAdapter())
    return session


class BodyTooLarge(Exception):
    """A body past the limit its reader allows: by its declared length (`declared`) or once decoded (None)."""

    def __init__(self, limit: int, declared: int | None = None) -> None:
        self.limit, self.declared = limit, declared
        super().__init__(f"a body of more than {limit:,} bytes once decoded, the most allowed" if declared is None
                         else f"a body of {declared:,} bytes, more than the {limit:,} allowed")


def read_at_most(response: requests.Response, limit: int) -> bytes:
    """The decoded body of a streamed `response`, or `BodyTooLarge` (by its declared length before any of it is
    read, else as soon as the decoded bytes pass `limit`, the connection then closed)."""
    declared = response.headers.get("Content-Length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:  # "³" is a digit, not to int()
        response.close()
        raise BodyTooLarge(limit, int(declared))
    body = bytearray()
    for chunk in response.iter_content(CHUNK_BYTES):
        body += chunk
        if len(body) > limit:
            response.close()
            raise BodyTooLarge(limit)
    return bytes(body)

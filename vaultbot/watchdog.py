"""The deadline of one download, which per-read time-outs cannot give: a server trickling bytes resets every one of
them, so a watchdog timer shuts the download's sockets when its deadline passes and the blocked read returns.

A request sent through a `WatchedAdapter` must run inside a `Watchdog` (`with Watchdog(seconds) as watchdog:`);
its connections find that watchdog in a context variable and hand it their sockets. After the download,
`watchdog.expired` tells a deadline from any other failure, and a body without a length, which ends at the shut
socket as if it were whole, from a complete one.
"""

import contextlib
import socket
import threading
from contextvars import ContextVar
from typing import Any, Self

from requests.adapters import HTTPAdapter
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, ProxyManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.response import HTTPResponse


class Watchdog:
    """Shuts every socket handed to it once `seconds` have passed since it was entered, and says so (`expired`)."""

    def __init__(self, seconds: float) -> None:
        self._expired = False
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()  # a socket handed over as the timer fires is shut by one of the two
        self._timer = threading.Timer(max(seconds, 0.0), self._expire)
        self._timer.daemon = True

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
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()
        _under_way.reset(self._token)


_under_way: ContextVar[Watchdog] = ContextVar("vaultbot_watchdog")


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

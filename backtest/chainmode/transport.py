"""web3 over one kept-alive `http.client` connection to the local anvil of a chain-mode run.

requests' own work per call (about 0.3 ms: settings merged, environment proxies looked up, hooks) is more than a
call to a local anvil often costs anvil itself, six times a replayed day. Failures raise requests' exceptions, as
web3's own transport does.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from typing import Any
from urllib.parse import urlsplit

import requests
from web3 import HTTPProvider
from web3._utils.encoding import Web3JsonEncoder
from web3.types import RPCEndpoint


class LocalHTTPProvider(HTTPProvider):
    """web3's HTTPProvider whose every request (single or batch) goes over a kept-alive connection."""

    def __init__(self, endpoint_uri: str, **kwargs: Any) -> None:
        super().__init__(endpoint_uri, **kwargs)
        # the one seam HTTPProvider posts through; duck-typed (it calls make_post_request alone), rather than a
        # subclass of web3's private HTTPSessionManager, which would build a session cache and thread pool
        self._request_session_manager = _KeptAlive()  # type: ignore[assignment]

    def encode_batch_rpc_request(self, requests: list[tuple[RPCEndpoint, Any]]) -> bytes:
        """web3's bytes for the batch (the same ids, the same separators), in one `json.dumps` of the list rather
        than one per request: a day's 56 requests were spelled one by one in 5 batches."""
        return json.dumps([{"jsonrpc": "2.0", "method": method, "params": params or [],
                            "id": next(self.request_counter)} for method, params in requests],
                          cls=Web3JsonEncoder).encode()


class _KeptAlive:
    """`make_post_request` of web3's session manager on one http.client connection (a lock: one request at a
    time), opened again after a failure."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connection: http.client.HTTPConnection | None = None
        self._address: tuple[str, int, str] | None = None

    def make_post_request(self, endpoint_uri: str, data: bytes | str, **kwargs: Any) -> bytes:
        url = urlsplit(str(endpoint_uri))
        address = (url.hostname or "127.0.0.1", url.port or 80, url.path or "/")
        headers = {"Content-Type": "application/json", **kwargs.get("headers", {})}
        with self._lock:
            try:
                if self._connection is None or self._address != address:
                    self._close()
                    self._connection = http.client.HTTPConnection(address[0], address[1],
                                                                  timeout=kwargs.get("timeout"))
                    self._connection.connect()
                    # http.client writes the headers and the body apart: without this, Nagle holds the body back
                    self._connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    self._address = address
                self._connection.request("POST", address[2], data, headers)
                response = self._connection.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as error:
                self._close()
                raise requests.ConnectionError(f"POST {endpoint_uri}: {error!r}") from error
        if response.status != 200:
            raise requests.HTTPError(f"{response.status} {response.reason} from {endpoint_uri}")
        return body

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
        self._connection = None

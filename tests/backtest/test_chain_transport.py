"""Chain mode's web3 transport: one kept-alive connection, answers as web3's own transport gives them, and its
failures as requests' exceptions (what web3's callers catch)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from hexbytes import HexBytes
from web3 import HTTPProvider, Web3
from web3.types import RPCEndpoint

from backtest.chainmode.transport import LocalHTTPProvider


@contextmanager
def node(status: int, body: bytes) -> Iterator[tuple[str, list[int]]]:
    """An HTTP server on 127.0.0.1 answering every POST with `status` and `body`; also yields the client ports
    it was posted from (one per connection)."""
    ports: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            ports.append(self.client_address[1])
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", ports
    finally:
        server.shutdown()
        server.server_close()


BATCH_ANSWER = b'[{"jsonrpc":"2.0","id":0,"result":"0x7a69"},{"jsonrpc":"2.0","id":1,"result":"0x2"}]'


def test_requests_share_one_connection_and_batches_work() -> None:
    with node(200, BATCH_ANSWER) as (url, ports):
        provider = LocalHTTPProvider(url)
        answers = [provider.make_batch_request([("eth_chainId", []), ("eth_blockNumber", [])]) for _ in range(3)]
    assert [[answer["result"] for answer in batch] for batch in answers] == [["0x7a69", "0x2"]] * 3
    assert len(ports) == 3 and len(set(ports)) == 1


def test_an_http_error_is_requests_http_error() -> None:
    with node(500, b"oops") as (url, _):
        with pytest.raises(requests.HTTPError, match="500"):
            Web3(LocalHTTPProvider(url)).provider.make_request("eth_chainId", [])


def test_no_node_is_requests_connection_error() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(requests.ConnectionError, match=f"127.0.0.1:{port}"):
        LocalHTTPProvider(f"http://127.0.0.1:{port}").make_request("eth_chainId", [])


def test_a_batch_is_spelled_as_web3_spells_it() -> None:
    requests_ = [(RPCEndpoint("eth_call"), [{"to": "0x" + "ab" * 20, "data": "0x1234"}, "0x5"]),
                 (RPCEndpoint("eth_blockNumber"), []), (RPCEndpoint("evm_mine"), None),
                 (RPCEndpoint("eth_sendRawTransaction"), [HexBytes(b"\x01\x02")])]
    ours, web3s = LocalHTTPProvider("http://127.0.0.1:1"), HTTPProvider("http://127.0.0.1:1")
    for _ in range(2):  # the ids go on counting alike
        assert ours.encode_batch_rpc_request(requests_) == web3s.encode_batch_rpc_request(requests_)

"""A JSON-RPC proxy on 127.0.0.1 in front of a real node that records every request body it forwards, and can
answer batches as a node without batch support does."""

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

NO_BATCHES = {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "batch requests are not supported"}}


class RecordingProxy:
    """Forwards each POST to `upstream` unchanged; `bodies` holds the parsed requests (a list for a batch)."""

    def __init__(self, upstream: str, *, refuse_batches: bool = False) -> None:
        self.upstream, self.refuse_batches = upstream, refuse_batches
        self.bodies: list[Any] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                request = json.loads(raw)
                proxy.bodies.append(request)
                if isinstance(request, list) and proxy.refuse_batches:
                    body = json.dumps(NO_BATCHES).encode()
                else:
                    body = requests.post(proxy.upstream, data=raw, headers={"Content-Type": "application/json"},
                                         timeout=30).content
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def calls(self) -> list[dict[str, Any]]:
        """Every JSON-RPC call recorded, batches flattened."""
        return [call for body in self.bodies for call in (body if isinstance(body, list) else [body])]


@contextmanager
def recording_proxy(upstream: str, *, refuse_batches: bool = False) -> Iterator[RecordingProxy]:
    proxy = RecordingProxy(upstream, refuse_batches=refuse_batches)
    try:
        yield proxy
    finally:
        proxy.server.shutdown()
        proxy.server.server_close()

"""The depositor page's HTTP side: static files plus a small JSON API over `depositor.views`.

A plain WSGI app served by the standard library's threaded server (`vaultbot.wsgi.serve_wsgi`, which the
keeper's metrics endpoint uses too): the page needs six JSON routes and a few static files (its own, and the
vendored chart library in static/vendor), nothing a framework would add to. Transactions are never signed here:
`/api/plan` returns the calls, and the browser's wallet sends them.

Routes: GET / and /static/<file> (and /static/vendor/<file>); GET /api/vault, /api/account?address=, /api/result?tx=
(each GET route answers HEAD too, without the body); POST /api/plan {action, account, amount, guard?}, /api/explain
{message, data}, /api/verify {tx} (a rebalance's decision re-executed from the server's bundles). Errors come back
as {"error": message}: 400 bad input, 422 the vault would refuse (or no bundles to verify with), 503 the chain does
not answer.

Hostile clients: the server answers only its own Host names (`serve`'s `allowed_hosts`), and drops a
connection that stalls (`request_timeout_s`); a body's declared length is checked before a byte of it is
read (digits only, at most MAX_BODY_BYTES) and chunked bodies are refused, so a request can never make the
server read more than that.
"""

import logging
import mimetypes
from collections.abc import Callable, Collection, Iterable
from typing import Any, Protocol
from urllib.parse import parse_qs

from depositor.errors import BadInput, Refusal, quoted
from strategy.safe_json import loads
from vaultbot.resources import web_static_dir
from vaultbot.wsgi import REQUEST_TIMEOUT_S, StartResponse, WsgiServer, json_answer, serve_wsgi

log = logging.getLogger(__name__)

STATIC_DIR = web_static_dir()
SERVED_DIRS = (STATIC_DIR.resolve(), (STATIC_DIR / "vendor").resolve())  # no other directory is served
MAX_BODY_BYTES = 64 * 1024
MAX_QUERY_VALUE_CHARS = 200  # an address is 42 characters, a transaction hash 66

Json = dict[str, Any]
SERVER_ERROR = "server error: the server's log has the details"


class DepositorViews(Protocol):
    """What the API routes call (depositor.views.VaultViews implements it)."""

    def vault(self) -> Json: ...
    def account(self, address: str) -> Json: ...
    def plan(self, request: Json) -> Json: ...
    def explain(self, request: Json) -> Json: ...
    def result(self, tx_hash: str) -> Json: ...
    def verify(self, request: Json) -> Json: ...


class _HttpError(Exception):
    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


def web_app(views: DepositorViews, *, unavailable: tuple[type[Exception], ...] = ()) -> Callable[..., Iterable[bytes]]:
    """The WSGI app; exceptions of the `unavailable` types (e.g. RpcUnavailable) answer 503."""

    get_routes: dict[str, Callable[[dict[str, str]], Json]] = {
        "/api/vault": lambda query: views.vault(),
        "/api/account": lambda query: views.account(_required(query, "address")),
        "/api/result": lambda query: views.result(_required(query, "tx")),
    }
    post_routes: dict[str, Callable[[Json], Json]] = {"/api/plan": views.plan, "/api/explain": views.explain,
                                                      "/api/verify": views.verify}

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        answer = routed(environ, start_response)
        # HEAD is answered as GET, headers (Content-Length too) and all, but never with a body
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else answer

    def routed(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "") or "/"
        try:
            length = _content_length(environ)  # checked on every request, before any routing or reading
            if method in ("GET", "HEAD") and (path == "/" or path.startswith("/static/")):
                return _static(path, start_response)
            if method in ("GET", "HEAD") and path in get_routes:
                query = {key: values[-1] for key, values in parse_qs(environ.get("QUERY_STRING", "")).items()}
                return json_answer(start_response, "200 OK", get_routes[path](query))
            if method == "POST" and path in post_routes:
                return json_answer(start_response, "200 OK", post_routes[path](_body(environ, length)))
            if path in post_routes or path in get_routes:
                raise _HttpError("405 Method Not Allowed", f"{quoted(method)} is not allowed on {path}")
            # quoted and cut: a request line may be 64 KiB, and the answer need not repeat it
            raise _HttpError("404 Not Found", f"no such page: {quoted(path)}")
        except _HttpError as error:
            return json_answer(start_response, error.status, {"error": str(error)})
        except BadInput as error:
            return json_answer(start_response, "400 Bad Request", {"error": str(error)})
        except Refusal as error:
            return json_answer(start_response, "422 Unprocessable Content", {"error": str(error)})
        except unavailable as error:
            return json_answer(start_response, "503 Service Unavailable", {"error": str(error)})
        except Exception:  # a bug: its message may quote anything (a URL with a key), so only the log has it
            log.exception("%s %s failed", method, path)
            return json_answer(start_response, "500 Internal Server Error", {"error": SERVER_ERROR})

    return app


def _required(query: dict[str, str], name: str) -> str:
    value = query.get(name, "").strip()
    if not value:
        raise BadInput(f"missing query parameter {name!r}")
    if len(value) > MAX_QUERY_VALUE_CHARS:
        raise BadInput(f"query parameter {name!r} is too long ({len(value)} characters)")
    return value


def _content_length(environ: dict[str, Any]) -> int:
    """The body's declared length: digits only (`-1` would read to the end of the stream), at most
    MAX_BODY_BYTES; a chunked body has none and is refused (the server would not decode it)."""
    if environ.get("HTTP_TRANSFER_ENCODING"):
        raise _HttpError("411 Length Required", "a request body must come with Content-Length (no Transfer-Encoding)")
    declared = environ.get("CONTENT_LENGTH", "").strip()
    if not declared:
        return 0
    if not (declared.isascii() and declared.isdigit()):
        raise _HttpError("400 Bad Request", f"bad Content-Length header {quoted(declared)}: not a number of bytes")
    if len(declared.lstrip("0")) > len(str(MAX_BODY_BYTES)) or int(declared) > MAX_BODY_BYTES:  # no int() of a huge one
        raise _HttpError("413 Content Too Large", f"request body over {MAX_BODY_BYTES} bytes")
    return int(declared)


def _body(environ: dict[str, Any], length: int) -> Json:
    try:
        raw = environ["wsgi.input"].read(length)
    except TimeoutError:  # the socket time-out: the client declared more than it sent
        raise _HttpError("408 Request Timeout", "the request body did not arrive in time") from None
    if len(raw) < length:
        raise BadInput(f"the request body ended after {len(raw)} of its {length} bytes")
    try:
        body = loads(raw or b"{}")
    except ValueError as error:  # not JSON, not UTF-8, or nested past any real request
        raise BadInput(f"request body is not JSON: {error}") from error
    if not isinstance(body, dict):
        raise BadInput("request body must be a JSON object")
    return body


def _static(path: str, start_response: StartResponse) -> list[bytes]:
    name = "index.html" if path == "/" else path.removeprefix("/static/")
    try:
        file = (STATIC_DIR / name).resolve()
        found = file.parent in SERVED_DIRS and file.is_file()  # no ../ and no other directory
    except (ValueError, OSError):  # a NUL byte, a name too long for the file system: no file of ours either
        found = False
    if not found:
        raise _HttpError("404 Not Found", f"no such file: {quoted(path)}")
    body = file.read_bytes()
    content_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    start_response("200 OK", [("Content-Type", f"{content_type}; charset=utf-8"), ("Content-Length", str(len(body)))])
    return [body]


def serve(views: DepositorViews, host: str, port: int, *, unavailable: tuple[type[Exception], ...] = (),
          allowed_hosts: Collection[str] = (), request_timeout_s: float = REQUEST_TIMEOUT_S) -> WsgiServer:
    """Serve the page on host:port (0 = any free port) from a daemon thread; `.stop()` ends it.

    It answers requests for host:port and the loopback names at that port, plus the Host headers in
    `allowed_hosts` (the name a reverse proxy forwards); a connection idle for `request_timeout_s` is dropped.
    """
    return serve_wsgi(web_app(views, unavailable=unavailable), host, port, name="vaultbot-web",
                      request_timeout_s=request_timeout_s, allowed_hosts=allowed_hosts)

"""The depositor page's HTTP side: static files plus a small JSON API over `depositor.views`.

A plain WSGI app served by the standard library's threaded server (`vaultbot.wsgi.serve_wsgi`, which the
keeper's metrics endpoint uses too): the page needs five JSON routes and three static files, nothing a
framework would add to. Transactions are never signed here: `/api/plan` returns the calls, and the
browser's wallet sends them.

Routes: GET / and /static/<file>; GET /api/vault, /api/account?address=, /api/result?tx=;
POST /api/plan {action, account, amount, guard?}, /api/explain {message, data}. Errors come back as
{"error": message}: 400 bad input, 422 the vault would refuse, 503 the chain does not answer.
"""

import json
import logging
import mimetypes
from collections.abc import Callable, Iterable
from typing import Any, Protocol
from urllib.parse import parse_qs

from depositor.errors import BadInput, Refusal
from vaultbot.resources import web_static_dir
from vaultbot.wsgi import StartResponse, WsgiServer, serve_wsgi

log = logging.getLogger(__name__)

STATIC_DIR = web_static_dir()
MAX_BODY_BYTES = 64 * 1024

Json = dict[str, Any]


class DepositorViews(Protocol):
    """What the API routes call (depositor.views.VaultViews implements it)."""

    def vault(self) -> Json: ...
    def account(self, address: str) -> Json: ...
    def plan(self, request: Json) -> Json: ...
    def explain(self, request: Json) -> Json: ...
    def result(self, tx_hash: str) -> Json: ...


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
    post_routes: dict[str, Callable[[Json], Json]] = {"/api/plan": views.plan, "/api/explain": views.explain}

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "") or "/"
        try:
            if method == "GET" and (path == "/" or path.startswith("/static/")):
                return _static(path, start_response)
            if method == "GET" and path in get_routes:
                query = {key: values[-1] for key, values in parse_qs(environ.get("QUERY_STRING", "")).items()}
                return _json(start_response, "200 OK", get_routes[path](query))
            if method == "POST" and path in post_routes:
                return _json(start_response, "200 OK", post_routes[path](_body(environ)))
            if path in post_routes or path in get_routes:
                raise _HttpError("405 Method Not Allowed", f"{method} is not allowed on {path}")
            raise _HttpError("404 Not Found", f"no such page: {path}")
        except _HttpError as error:
            return _json(start_response, error.status, {"error": str(error)})
        except BadInput as error:
            return _json(start_response, "400 Bad Request", {"error": str(error)})
        except Refusal as error:
            return _json(start_response, "422 Unprocessable Content", {"error": str(error)})
        except unavailable as error:
            return _json(start_response, "503 Service Unavailable", {"error": str(error)})
        except Exception as error:  # the page shows the message; the log keeps the traceback
            log.exception("%s %s failed", method, path)
            return _json(start_response, "500 Internal Server Error", {"error": f"server error: {error}"})

    return app


def _required(query: dict[str, str], name: str) -> str:
    value = query.get(name, "").strip()
    if not value:
        raise BadInput(f"missing query parameter {name!r}")
    return value


def _body(environ: dict[str, Any]) -> Json:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise BadInput("bad Content-Length header") from None
    if length > MAX_BODY_BYTES:
        raise _HttpError("413 Content Too Large", f"request body over {MAX_BODY_BYTES} bytes")
    try:
        body = json.loads(environ["wsgi.input"].read(length) or b"{}")
    except (ValueError, UnicodeDecodeError) as error:
        raise BadInput(f"request body is not JSON: {error}") from error
    if not isinstance(body, dict):
        raise BadInput("request body must be a JSON object")
    return body


def _json(start_response: StartResponse, status: str, payload: Json) -> list[bytes]:
    body = json.dumps(payload).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                            ("Cache-Control", "no-store")])
    return [body]


def _static(path: str, start_response: StartResponse) -> list[bytes]:
    name = "index.html" if path == "/" else path.removeprefix("/static/")
    file = (STATIC_DIR / name).resolve()
    if file.parent != STATIC_DIR.resolve() or not file.is_file():  # no ../ and no subdirectories
        raise _HttpError("404 Not Found", f"no such file: {path}")
    body = file.read_bytes()
    content_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    start_response("200 OK", [("Content-Type", f"{content_type}; charset=utf-8"), ("Content-Length", str(len(body)))])
    return [body]


def serve(views: DepositorViews, host: str, port: int, *,
          unavailable: tuple[type[Exception], ...] = ()) -> WsgiServer:
    """Serve the page on host:port (0 = any free port) from a daemon thread; `.stop()` ends it."""
    return serve_wsgi(web_app(views, unavailable=unavailable), host, port, name="vaultbot-web")

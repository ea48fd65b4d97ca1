"""The one HTTP session every data source shares, and the errors a caller of a source can see.

The session times out every request, retries 429/5xx answers and connection failures with
exponential backoff (honouring Retry-After), and keeps 200 answers in a short-lived SQLite cache.
Whatever goes wrong in transport surfaces as `SourceError`; a payload that arrives but cannot be
parsed surfaces as `PayloadError`, which is both a `SourceError` and a `strategy.data` `DataError`.
"""

import logging
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, TypeVar

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from requests_cache import CachedSession
from urllib3.util.retry import Retry

from sources.config import HttpSettings
from strategy.data.errors import DataError

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
CACHE_FILE_NAME = "responses.sqlite"
# How much of an error body goes into the message: enough to see the server's reason, not a whole page.
ERROR_BODY_CHARS = 200

Parsed = TypeVar("Parsed")
QueryParams = Mapping[str, str | int] | None


class SourceError(Exception):
    """A data source could not be read; names the URL and the HTTP status or the cause."""

    def __init__(self, url: str, reason: str, status: int | None = None) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason
        self.status = status


class PayloadError(SourceError, DataError):
    """A source answered, but its payload is malformed, has the wrong shape, or reports a failure.

    Carries the parser's record and field, with the URL as the location.
    """

    def __init__(self, url: str, cause: DataError) -> None:
        DataError.__init__(self, cause.reason, where=url, row=cause.row, field=cause.field)
        self.url = url
        self.status = 200


class _TimeoutAdapter(HTTPAdapter):
    """Gives every request that sets no timeout of its own the configured (connect, read) one."""

    def __init__(self, timeout: tuple[float, float], max_retries: Retry) -> None:
        super().__init__(max_retries=max_retries)
        self._timeout = timeout

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().send(request, **kwargs)


def build_session(settings: HttpSettings) -> CachedSession:
    """A session with timeouts, retries with backoff, the on-disk cache and vaultbot's User-Agent."""
    retry = Retry(
        total=settings.retries,
        backoff_factor=settings.backoff_factor,
        backoff_max=settings.backoff_max,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"GET"}),
        respect_retry_after_header=True,
        retry_after_max=settings.retry_after_max,
        # Hand back the last error answer instead of raising, so SourceError can report its status and body.
        raise_on_status=False,
    )
    session = CachedSession(
        cache_name=str(settings.cache_dir / CACHE_FILE_NAME),
        backend="sqlite",
        expire_after=timedelta(seconds=settings.cache_expire_seconds),
        allowable_codes=(200,),
        allowable_methods=("GET",),
        # An expired answer is never served in place of a failing source: stale data must stop the cycle.
        stale_if_error=False,
    )
    adapter = _TimeoutAdapter(timeout=(settings.connect_timeout, settings.read_timeout), max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = settings.user_agent
    return session


def fetch_json(
    session: requests.Session, url: str, parse: Callable[..., Parsed], params: QueryParams = None
) -> Parsed:
    """GET `url` and hand its decoded JSON to `parse(payload, where=<url>)`, a `strategy.data` parser."""
    return fetch_json_body(session, url, parse, params)[0]


def fetch_json_body(
    session: requests.Session, url: str, parse: Callable[..., Parsed], params: QueryParams = None
) -> tuple[Parsed, bytes]:
    """`fetch_json`, and the body as served (to record an answer that parsed)."""
    return _fetch_parsed(session, url, params, lambda response: parse(_decode_json(response), where=response.url))


def fetch_content_body(session: requests.Session, url: str, parse: Callable[..., Parsed]) -> tuple[Parsed, bytes]:
    """GET `url` and hand its raw body to `parse(content, where=<url>)` (feeds declare their own encoding);
    the parsed value and the body."""
    return _fetch_parsed(session, url, None, lambda response: parse(response.content, where=response.url))


def _fetch_parsed(
    session: requests.Session,
    url: str,
    params: QueryParams,
    parse: Callable[[requests.Response], Parsed],
) -> tuple[Parsed, bytes]:
    response = _get(session, url, params)
    try:
        return parse(response), response.content
    except DataError as exc:
        # Drop the bad answer from the cache so that the next cycle asks the source again.
        _evict(session, response)
        raise PayloadError(response.url, exc) from exc


def _get(session: requests.Session, url: str, params: QueryParams) -> requests.Response:
    try:
        response = session.get(url, params=params)
    except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
        raise SourceError(url, _describe_failure(exc)) from exc
    if response.status_code != 200:
        body = response.text[:ERROR_BODY_CHARS].strip()
        reason = f"HTTP {response.status_code} {response.reason}" + (f": {body}" if body else "")
        raise SourceError(response.url, reason, status=response.status_code)
    log.debug("GET %s -> 200%s", response.url, " (cached)" if getattr(response, "from_cache", False) else "")
    return response


def _decode_json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise DataError(f"body is not valid JSON ({exc})", where=response.url) from exc


def _describe_failure(exc: Exception) -> str:
    """Names what went wrong in words, looking through urllib3's retry wrapper to the real cause."""
    inner = exc.args[0] if exc.args else exc
    cause = inner.reason if isinstance(inner, urllib3.exceptions.MaxRetryError) else inner
    timed_out = isinstance(exc, requests.Timeout) or isinstance(cause, urllib3.exceptions.TimeoutError)
    # urllib3 files a refused connection under connect time-outs; name it for what it is.
    if timed_out and not isinstance(cause, urllib3.exceptions.NewConnectionError):
        kind = "timed out"
    elif isinstance(exc, requests.ConnectionError):
        kind = "connection failed"
    else:
        kind = "request failed"
    return f"{kind}: {cause}"


def _evict(session: requests.Session, response: requests.Response) -> None:
    if isinstance(session, CachedSession):
        session.cache.delete(requests=[response.request])

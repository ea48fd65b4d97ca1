"""The one HTTP session every data source shares, and the errors a caller of a source can see.

The session times out every request, retries 429/5xx answers and connection failures with
exponential backoff (honouring Retry-After), and keeps 200 answers in a short-lived SQLite cache.
A hostile server cannot hold or sink a cycle: every fetch ends by its deadline (`fetch_deadline`, or the
cycle's own when that comes first; retries, waits and a body trickled byte by byte included), a body larger
than `max_body_bytes` once decoded (a gzip bomb) is refused before it reaches the cache, a Retry-After above
`retry_after_max` or past the deadline is refused instead of slept, and the retries of one cycle share a
budget (`retries_per_cycle`, reset by `SourceSession.budget.start_cycle`).
An answer the same as the last one from its URL is not parsed again (`Answers`): a keeper cycle mostly reads
the answers of the cycle before.
Whatever goes wrong in transport surfaces as `SourceError`; a payload that arrives but cannot be
parsed surfaces as `PayloadError`, which is both a `SourceError` and a `strategy.data` `DataError`.
"""

import copy
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from functools import partial
from types import TracebackType
from typing import Any, Self, TypeVar

import requests
import urllib3.exceptions
from requests_cache import CachedSession
from urllib3 import BaseHTTPResponse
from urllib3.connectionpool import ConnectionPool
from urllib3.util.retry import Retry

from sources.config import HttpSettings
from strategy.data.errors import DataError
from strategy.safe_json import DensityLimit, loads
from vaultbot.watchdog import BodyTooLarge, Watchdog, WatchedAdapter, read_at_most

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
CACHE_FILE_NAME = "responses.sqlite"
# How much of an error body goes into the message: enough to see the server's reason, not a whole page.
ERROR_BODY_CHARS = 200
ANSWERS_KEPT = 64  # URLs whose last answer `Answers` keeps parsed (a keeper cycle reads about ten)
# Parsed, JSON takes memory by its values, not its bytes (`strategy.safe_json.DensityLimit`): 64 MiB of `{},` took
# 1.6 GB. Real DeFiLlama bodies hold a value per 7.9 (/chart, its timestamps' colons counted) to 10.3 (/pools)
# bytes; a /chart is some 100 KB, a /pools 10-15 MB, some 1.5 million values. Past 1 MiB a body may hold a value
# per 4 bytes, and 2**22 values in all (2.8 times a /pools of today): the cap is what bounds memory, the densest
# body accepted (64 MiB of 2**22 values as `{"a":[]}`) peaking 430 MB above the body held (636 MB in all).
JSON_DENSITY = DensityLimit(dense_past=2**20, min_bytes_per_value=4, max_values=2**22)

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


class _Refused(Exception):
    """A limit of this module ended a fetch; `_get` turns it into a `SourceError` naming the URL."""


class CycleBudget:
    """What the fetches of one session share: retries, and the deadline of the cycle under way (if any).

    A cycle calls `start_cycle`; a session that runs no cycle (a data download) spends one budget over its life.
    """

    def __init__(self, retries_per_cycle: int) -> None:
        self.retries_per_cycle = retries_per_cycle
        self.retries_left = retries_per_cycle
        self._cycle: tuple[float, float] | None = None  # (monotonic deadline, its length in seconds)

    def start_cycle(self, deadline_s: float | None) -> None:
        """A new cycle: the full retry budget, and fetches that end at most `deadline_s` from now."""
        self.retries_left = self.retries_per_cycle
        self._cycle = None if deadline_s is None else (time.monotonic() + deadline_s, deadline_s)

    def take_retry(self) -> bool:
        if self.retries_left <= 0:
            return False
        self.retries_left -= 1
        return True

    def deadline(self, fetch_s: float) -> tuple[float, str]:
        """When a fetch starting now must end, and the words naming that deadline."""
        own = time.monotonic() + fetch_s
        if self._cycle is not None and self._cycle[0] < own:
            return self._cycle[0], f"cycle deadline ({self._cycle[1]:g} s)"
        return own, f"fetch deadline ({fetch_s:g} s)"


class _Fetch(Watchdog):
    """One fetch under way, from its first connection to the end of its body, retries included: the watchdog of
    its deadline (`vaultbot.watchdog`), and the cycle's budget its retries spend."""

    def __init__(self, budget: CycleBudget, fetch_s: float) -> None:
        self.budget = budget
        self.deadline, self.deadline_name = budget.deadline(fetch_s)
        super().__init__(self.left())

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def refusal(self) -> _Refused:
        return _Refused(f"no complete answer by the {self.deadline_name}")


class _BoundedRetry(Retry):
    """urllib3's retry policy, refusing what the fetch cannot afford instead of sleeping through it: a
    Retry-After above `retry_after_max`, a wait past the fetch's deadline, a retry past the cycle's budget."""

    def increment(self, method: str | None = None, url: str | None = None,
                  response: BaseHTTPResponse | None = None, error: Exception | None = None,
                  _pool: ConnectionPool | None = None, _stacktrace: TracebackType | None = None) -> Self:
        retry = super().increment(method, url, response, error, _pool, _stacktrace)
        fetch = _Fetch.under_way()
        failure = f"HTTP {response.status}" if response is not None else f"{error}"
        asked = self._retry_after_asked(response)
        wait = asked or retry.get_backoff_time()  # what `sleep` would wait (Retry-After 0: the backoff)
        if fetch.expired:  # the watchdog broke this attempt off
            refusal = fetch.refusal()
        elif asked is not None and asked > self.retry_after_max:
            refusal = _Refused(f"{failure} asking to retry after {asked:g} s, over the {self.retry_after_max} s "
                               "allowed (retry_after_max)")
        elif wait >= fetch.left():
            refusal = _Refused(f"{failure}, and a retry would pass the {fetch.deadline_name}")
        elif not fetch.budget.take_retry():
            refusal = _Refused(f"{failure}, and the {fetch.budget.retries_per_cycle} retries a cycle may "
                               "make are spent (retries_per_cycle)")
        else:
            return retry
        if response is not None:
            response.close()  # its connection is not reused: the body was never read
        raise refusal

    def _retry_after_asked(self, response: BaseHTTPResponse | None) -> float | None:
        header = response.headers.get("Retry-After") if response is not None else None
        if header is None or not self.respect_retry_after_header:
            return None
        # As asked: urllib3 would shorten it to retry_after_max and sleep that, where it is refused here.
        return self.new(retry_after_max=Retry.DEFAULT_RETRY_AFTER_MAX).parse_retry_after(header)


class _BoundedAdapter(WatchedAdapter):
    """Runs each request as one `_Fetch`: its (connect, read) time-outs, within its deadline, its body read
    here (decoded, at most `max_body_bytes`) so that nothing larger ever reaches requests or the cache."""

    def __init__(self, settings: HttpSettings, budget: CycleBudget, max_retries: Retry) -> None:
        self._settings, self._budget = settings, budget
        super().__init__(max_retries=max_retries)

    def send(self, request: requests.PreparedRequest, stream: bool = False,
             timeout: float | tuple[float | None, float | None] | None = None, verify: bool | str = True,
             cert: str | tuple[str, str] | None = None, proxies: dict[str, str] | None = None) -> requests.Response:
        """HTTPAdapter.send within the fetch's deadline; `timeout` is replaced by the fetch's own time-outs."""
        with _Fetch(self._budget, self._settings.fetch_deadline) as fetch:
            if fetch.left() <= 0:
                raise _Refused(f"not fetched: past the {fetch.deadline_name}")
            settings, left = self._settings, fetch.left()
            timeouts = (min(settings.connect_timeout, left), min(settings.read_timeout, left))
            try:
                response = super().send(request, stream=stream, timeout=timeouts, verify=verify, cert=cert,
                                        proxies=proxies)
                self._read_body(response)
            except (OSError, urllib3.exceptions.HTTPError) as exc:  # requests' errors are OSErrors
                if fetch.expired:
                    raise fetch.refusal() from exc
                raise
            if fetch.expired:  # a body without a length ends at the shut socket as if it were whole
                raise fetch.refusal()
            return response

    def _read_body(self, response: requests.Response) -> None:
        limit = self._settings.max_body_bytes
        try:
            body = read_at_most(response, limit)
        except BodyTooLarge as error:
            raise _Refused(f"body larger than {limit:,} bytes once decoded (max_body_bytes)" if error.declared is None
                           else f"body of {error.declared:,} bytes declared, more than {limit:,} (max_body_bytes)"
                           ) from None
        # What `Response.content` would have read, kept where it looks for it.
        response._content, response._content_consumed = body, True


class Answers:
    """The last answer of each URL with what it parsed to, the answers parsed while `recording`, and the last
    value `derived` from answers.

    A parser's value is a function of the body alone (for one URL), and a keeper cycle mostly reads the answers
    of the cycle before again (a pool's /chart moves once a day, the keeper runs hourly): a body the same as
    the last one of its URL and parser is not parsed again. Every fetch is handed its own copy of the value, so
    that what one caller does to it reaches no other. A body is kept as its digest (`body_digest`), never whole:
    a server may serve `max_body_bytes` of whitespace around a small answer at each of the cycle's URLs.
    """

    def __init__(self, kept: int = ANSWERS_KEPT) -> None:
        self._kept = kept
        self._last: OrderedDict[Hashable, tuple[bytes, Any]] = OrderedDict()  # oldest used first
        self._recordings: list[list[tuple[str, bytes]]] = []
        self._derived: tuple[Hashable, Any] | None = None

    def parsed(self, response: requests.Response, parser: Hashable | None, parse: Callable[[], Parsed]) -> Parsed:
        """`parse()` of `response`, or a copy of what its body parsed to last time; `parser` names the parse
        (None: one that cannot be named is parsed every time)."""
        body, key = body_digest(response.content), (response.url, parser)
        kept = self._last.get(key) if parser is not None else None
        if kept is not None and kept[0] == body:
            self._last.move_to_end(key)
            value = copy.deepcopy(kept[1])
        else:
            value = parse()
            if parser is not None:
                self._keep(key, (body, copy.deepcopy(value)))
        for answers in self._recordings:
            answers.append((response.url, body))
        return value

    def _keep(self, key: Hashable, answer: tuple[bytes, Any]) -> None:
        self._last[key] = answer
        self._last.move_to_end(key)
        if len(self._last) > self._kept:
            self._last.popitem(last=False)

    @contextmanager
    def recording(self) -> Iterator[list[tuple[str, bytes]]]:
        """The URL and body digest (`body_digest`) of every answer parsed inside the block, in order: what a
        value built from them is a function of."""
        answers: list[tuple[str, bytes]] = []
        self._recordings.append(answers)
        try:
            yield answers
        finally:
            self._recordings.remove(answers)

    def derived(self, key: Hashable, derive: Callable[[], Parsed]) -> Parsed:
        """`derive()`, or the very value it gave last time when `key` (the answers it is built from, as
        `recording` gave them, and whatever else it reads) is the same: shared, never modified, so that what is
        built on it can be kept by its identity."""
        if self._derived is None or self._derived[0] != key:
            self._derived = (key, derive())
        return self._derived[1]


def body_digest(body: bytes) -> bytes:
    """What `Answers` keeps of a body to tell it from another: its BLAKE2b digest (32 bytes)."""
    return hashlib.blake2b(body, digest_size=32).digest()


class SourceSession(CachedSession):
    """The cached session of the data sources, with the retry budget and deadline its cycles share and the
    answers they were given."""

    def __init__(self, budget: CycleBudget, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.budget = budget
        self.answers = Answers()


def build_session(settings: HttpSettings) -> SourceSession:
    """A session with timeouts, retries with backoff, the limits above, the on-disk cache and vaultbot's
    User-Agent."""
    retry = _BoundedRetry(
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
    budget = CycleBudget(settings.retries_per_cycle)
    session = SourceSession(
        budget,
        cache_name=str(settings.cache_dir / CACHE_FILE_NAME),
        backend="sqlite",
        expire_after=timedelta(seconds=settings.cache_expire_seconds),
        allowable_codes=(200,),
        allowable_methods=("GET",),
        # An expired answer is never served in place of a failing source: stale data must stop the cycle.
        stale_if_error=False,
        # Write-ahead log: a cycle's answers (a MiB) are saved without waiting on a sync of the database file
        # (some 10 ms each on a busy disk); the cache stays whole, at worst missing its last answers.
        wal=True,
    )
    adapter = _BoundedAdapter(settings, budget, max_retries=retry)
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
    return _fetch_parsed(session, url, params, parse, _decode_json)


def fetch_content_body(session: requests.Session, url: str, parse: Callable[..., Parsed]) -> tuple[Parsed, bytes]:
    """GET `url` and hand its raw body to `parse(content, where=<url>)` (feeds declare their own encoding);
    the parsed value and the body."""
    return _fetch_parsed(session, url, None, parse, _content)


def _fetch_parsed(
    session: requests.Session,
    url: str,
    params: QueryParams,
    parse: Callable[..., Parsed],
    decode: Callable[[requests.Response], Any],
) -> tuple[Parsed, bytes]:
    response = _get(session, url, params)
    try:
        if isinstance(session, SourceSession):
            parsed = session.answers.parsed(response, _parser_key(parse, decode),
                                            lambda: parse(decode(response), where=response.url))
        else:
            parsed = parse(decode(response), where=response.url)
    except DataError as exc:
        # Drop the bad answer from the cache so that the next cycle asks the source again.
        _evict(session, response)
        raise PayloadError(response.url, exc) from exc
    return parsed, response.content


def _parser_key(parse: Callable[..., Any], decode: Callable[[requests.Response], Any]) -> Hashable | None:
    """What names a parse across fetches: the decoding and the parser, a partial by its function and arguments
    (the sources make one anew for each fetch); None when its arguments cannot be compared so."""
    parser = (parse.func, parse.args, tuple(sorted(parse.keywords.items()))) if isinstance(parse, partial) else parse
    try:
        hash(parser)
    except TypeError:
        return None
    return decode, parser


def _get(session: requests.Session, url: str, params: QueryParams) -> requests.Response:
    try:
        response = session.get(url, params=params)
    except _Refused as exc:
        raise SourceError(url, str(exc)) from exc
    except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
        raise SourceError(url, _describe_failure(exc)) from exc
    if response.status_code != 200:
        body = response.text[:ERROR_BODY_CHARS].strip()
        reason = f"HTTP {response.status_code} {response.reason}" + (f": {body}" if body else "")
        raise SourceError(response.url, reason, status=response.status_code)
    log.debug("GET %s -> 200%s", response.url, " (cached)" if getattr(response, "from_cache", False) else "")
    return response


def _content(response: requests.Response) -> bytes:
    return response.content


def _decode_json(response: requests.Response) -> Any:
    if (refusal := JSON_DENSITY.refusal(response.content)) is not None:  # unparsed, its text not even decoded
        raise DataError(f"body refused unparsed: {refusal}", where=response.url)
    try:
        return loads(response.text)
    except ValueError as exc:  # not JSON, or nested past any real answer
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

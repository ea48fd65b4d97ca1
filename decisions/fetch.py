"""A published decision bundle downloaded and judged: `vaultbot verify TX --bundle URL`.

The bundle `<url>/decisions/<hash>` and, unless the trailing-best rule decided, its model (`<url>/models/<hash>`
index, then the files it names; `decisions.publish`) go into a fresh temporary directory in the bundle layout,
and `decisions.check.check_decision` judges that directory. Nothing downloaded is trusted: the check re-hashes
every byte, so a server that lies yields BUNDLE TAMPERED; one that has no bundle for the hash (404) yields
BUNDLE MISSING. A server that cannot be read is a `FetchError` naming the URL: refused or timed-out connections,
an HTTP error, a body past `max_body_bytes` once decoded (a gzip bomb included), or one still arriving at the
deadline (a watchdog shuts the socket of a server trickling bytes, which resets every read time-out).
"""

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests
import urllib3.exceptions

from decisions.bundle import bundle_path, model_path
from decisions.check import BundleVerdict, Check, check_decision
from decisions.publish import ARTIFACT_FILE, ARTIFACT_FILES, decision_url, model_url, named_model
from strategy.safe_json import MAX_JSON_DEPTH, json_depth, loads
from vaultbot.redact import redact
from vaultbot.watchdog import BodyTooLarge, Watchdog, read_at_most, watched_session


@dataclass(frozen=True)
class Limits:
    """What one download may take."""

    connect_timeout_s: float = 5.0
    read_timeout_s: float = 20.0  # per socket read
    deadline_s: float = 120.0  # from the request to the body's last byte
    max_body_bytes: int = 64 * 1024 * 1024  # a bundle of 4 pools x 400 days is 0.6 MB, its model 0.3 MB


LIMITS = Limits()


class FetchError(Exception):
    """A server could not be read; the message names the URL (credentials masked) and why."""


def is_url(location: str) -> bool:
    """Whether a bundle location names a server rather than a directory."""
    return location.lower().startswith(("http://", "https://"))


def check_published(base_url: str, decision_hash: str, *, chain_id: int, vault: str,
                    limits: Limits = LIMITS) -> Check:
    """The verdict on `decision_hash`, emitted by `vault` on chain `chain_id`, from the bundles published under
    `base_url` (e.g. the keeper's http://HOST:PORT); `FetchError` when the server cannot be read."""
    decision_hash = decision_hash.lower()
    url = _Url.of(decision_url, base_url, decision_hash)
    with watched_session() as session, tempfile.TemporaryDirectory(prefix="vaultbot-bundle-") as folder:
        body = _download(session, url, limits)
        if body is None:
            return Check(decision_hash).conclude(BundleVerdict.MISSING, f"{url.shown} answered 404: the keeper "
                                                                  "published no bundle for this decision "
                                                                  "(decisions made before bundles existed have none)")
        if json_depth(body.decode("utf-8", errors="replace")) > MAX_JSON_DEPTH:  # json would overflow the C stack
            return Check(decision_hash).conclude(BundleVerdict.TAMPERED, f"encoding: the bundle nests deeper than "
                                                                   f"{MAX_JSON_DEPTH} levels")
        directory = Path(folder)
        bundle_path(directory, decision_hash).write_bytes(body)
        model_hash = named_model(body)
        unpublished = model_hash is not None and not _fetch_model(session, base_url, model_hash, directory, limits)
        check = check_decision(directory, decision_hash, chain_id=chain_id, vault=vault)
    check.facts.insert(0, f"downloaded from {redact(base_url)} into a temporary directory, removed since")
    if unpublished and check.verdict == BundleVerdict.MISSING:  # the model, not a temporary path, is what is missing
        shown = _Url.of(model_url, base_url, str(model_hash)).shown
        check.conclude(BundleVerdict.MISSING,
                       f"{shown} answered 404: the keeper published no model artifact of that hash")
    return check


def _fetch_model(session: requests.Session, base_url: str, model_hash: str, directory: Path,
                 limits: Limits) -> bool:
    """The files the model index names, into `directory`'s models/<hash>/; False when the index is 404."""
    index_url = _Url.of(model_url, base_url, model_hash)
    index = _download(session, index_url, limits)
    if index is None:
        return False
    folder = model_path(directory, model_hash)
    folder.mkdir(parents=True)
    for name in sorted(_index_names(index_url, index), key=lambda name: name == ARTIFACT_FILE):
        data = _download(session, _Url.of(model_url, base_url, model_hash, name), limits)
        if data is not None:  # a file its own index names is gone: the check finds the artifact incomplete
            (folder / name).write_bytes(data)
    return True


def _index_names(url: "_Url", index: bytes) -> list[str]:
    """The file names of a model index, each one an artifact has (nothing else ever becomes a path)."""
    try:
        names = [entry["name"] for entry in loads(index.decode("utf-8"))["files"]]
    except (ValueError, KeyError, TypeError) as error:
        raise FetchError(f"{url.shown}: not a model index ({error})") from None
    if any(name not in ARTIFACT_FILES for name in names) or len(set(names)) != len(names):
        raise FetchError(f"{url.shown}: not a model index: it names {sorted(map(str, names))}, an artifact "
                         f"has {', '.join(ARTIFACT_FILES)}, each once")
    return names


@dataclass(frozen=True)
class _Url:
    """A URL to fetch, and as shown: its base's credentials masked (`redact` of the whole URL would mask the hash
    too, a long key-like path segment)."""

    real: str
    shown: str

    @classmethod
    def of(cls, url_of: Callable[..., str], base_url: str, *parts: str) -> "_Url":
        return cls(url_of(base_url, *parts), url_of(redact(base_url), *parts))


def _download(session: requests.Session, url: _Url, limits: Limits) -> bytes | None:
    """The body of a 200 answer to GET `url`, None for a 404; `FetchError` otherwise."""
    shown = url.shown
    with Watchdog(limits.deadline_s) as deadline:
        try:
            timeout = (limits.connect_timeout_s, limits.read_timeout_s)
            with session.get(url.real, stream=True, timeout=timeout) as response:
                if response.status_code == 404:
                    return None
                if response.status_code != 200:
                    raise FetchError(f"{shown}: HTTP {response.status_code} {response.reason}")
                body = read_at_most(response, limits.max_body_bytes)
        except BodyTooLarge as error:
            raise FetchError(f"{shown}: {error}") from None
        except (requests.RequestException, urllib3.exceptions.HTTPError) as error:
            raise FetchError(f"{shown}: {_failure(error, limits, deadline)}") from None
        if deadline.expired:  # a body without a length ends at the shut socket as if it were whole
            raise FetchError(f"{shown}: {_failure(None, limits, deadline)}")
    return body


def _failure(error: BaseException | None, limits: Limits, deadline: Watchdog) -> str:
    """Why a download failed, in a few words."""
    if deadline.expired:
        return f"no complete answer within {limits.deadline_s:g} s"
    if isinstance(error, requests.ConnectTimeout):
        return f"cannot connect: no answer within {limits.connect_timeout_s:g} s"
    if isinstance(error, requests.Timeout | urllib3.exceptions.TimeoutError):
        return f"timed out: nothing read for {limits.read_timeout_s:g} s"
    reason = _reason(error) if error is not None else "no answer"
    return f"cannot connect: {reason}" if isinstance(error, requests.ConnectionError) else reason


def _reason(error: BaseException) -> str:
    """The innermost cause in a few words: requests' and urllib3's messages nest whole reprs of each other."""
    cause: BaseException = error
    while True:
        inner = getattr(cause, "reason", None)
        if not isinstance(inner, BaseException) and cause.args and isinstance(cause.args[0], BaseException):
            inner = cause.args[0]
        inner = inner if isinstance(inner, BaseException) else cause.__cause__ or cause.__context__
        if inner is None or inner is cause:
            break
        cause = inner
    return cause.strerror if isinstance(cause, OSError) and cause.strerror else str(cause)

"""Publication of a bundle directory: its URLs, the model index, and a read-only WSGI app serving them.

    GET /decisions/<decision hash>          the bundle file's exact bytes (application/json)
    GET /models/<model hash>                the artifact's index: canonical JSON naming each file with its
                                            sha256 and size, so a fetcher can check what it downloads
    GET /models/<model hash>/<file>         that file's exact bytes

Content-addressed, so every answer may be cached for good. A hash is lowercase 0x + 64 hex, a file one the
artifact has (`ARTIFACT_FILES`); anything else, a file that is not there, or one whose real path leaves the
directory (a symlink out of it) is 404 with a one-line text body. HEAD and GET only (405 otherwise). The
directory is the keeper's `service.decisions_dir` or an export of it (docs/decision-bundle.md, Publication).
"""

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from decisions.bundle import MODELS_DIR, bundle_path, model_path
from strategy.decision_record import canonical_json, is_hash
from strategy.models.artifact import ARTIFACT_FILE, MODELS, model_file
from strategy.safe_json import loads
from strategy.trailing_best import RULE_HASH
from vaultbot.wsgi import StartResponse, WsgiApp

DECISIONS_URL = "decisions"  # /decisions/<hash>; a model's URL mirrors its directory, /models/<hash>
# What a saved artifact holds (`ModelArtifact.save`), artifact.json first: it names the others' content hash.
ARTIFACT_FILES = (ARTIFACT_FILE, *(model_file(name) for name in MODELS))
PUBLISHED = (f"/{DECISIONS_URL}/", f"/{MODELS_DIR}/")  # the path prefixes this app answers
METHODS = ("GET", "HEAD")
IMMUTABLE = "public, max-age=31536000, immutable"  # a content-addressed answer never changes
NOT_FOUND = "not found: try /decisions/<decision hash>, /models/<model hash> or /models/<model hash>/<file>"


def decision_url(base_url: str, decision_hash: str) -> str:
    return f"{base_url.rstrip('/')}/{DECISIONS_URL}/{decision_hash}"


def model_url(base_url: str, model_hash: str, name: str | None = None) -> str:
    """The index of artifact `model_hash` under `base_url`, or its file `name`."""
    return f"{base_url.rstrip('/')}/{MODELS_DIR}/{model_hash}" + ("" if name is None else f"/{name}")


def inside(directory: Path, path: Path) -> Path | None:
    """`path` resolved, when it is a regular file whose real path lies under `directory`'s real path."""
    try:
        real, root = path.resolve(strict=True), Path(directory).resolve()
    except (OSError, RuntimeError):  # absent, unreadable, a symlink loop
        return None
    return real if real.is_file() and real.is_relative_to(root) else None


def named_model(bundle: bytes) -> str | None:
    """The hash of the model artifact a bundle file's record names; None for the trailing-best rule and for
    bytes that are no bundle (which `decisions.check` judges)."""
    try:
        model_hash = loads(bundle.decode("utf-8", errors="replace"))["record"]["model_hash"]
    except (ValueError, KeyError, TypeError):
        return None
    return model_hash if isinstance(model_hash, str) and is_hash(model_hash) and model_hash != RULE_HASH else None


def artifact_files(directory: Path, model_hash: str) -> dict[str, Path] | None:
    """The files of artifact `model_hash` in `directory` by name, or None when it is not there whole
    (`ModelArtifact.save` writes artifact.json last: without it the artifact is absent or half-written)."""
    if not is_hash(model_hash):
        return None
    folder = model_path(directory, model_hash)
    files = {name: inside(directory, folder / name) for name in ARTIFACT_FILES}
    if files[ARTIFACT_FILE] is None:
        return None
    return {name: path for name, path in files.items() if path is not None}


def model_index(model_hash: str, files: dict[str, Path]) -> bytes:
    """What `GET /models/<hash>` answers: canonical JSON {"files": [{"name", "sha256", "size"}, ...],
    "model_hash"}, the files in `ARTIFACT_FILES` order, sha256 as 64 lowercase hex, size in bytes."""
    entries = []
    for name, path in files.items():
        data = path.read_bytes()
        entries.append({"name": name, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)})
    return canonical_json({"files": entries, "model_hash": model_hash}).encode("utf-8")


def publish_app(directory: Path) -> WsgiApp:
    """The read-only app over the bundles in `directory` (which may not exist yet: everything is 404 then)."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in METHODS:
            return _answer(start_response, method, "405 Method Not Allowed",
                           _line(f"{method} not allowed: only GET and HEAD"), [("Allow", ", ".join(METHODS))])
        try:
            found = _found(Path(directory), environ.get("PATH_INFO", ""))
        except OSError:  # removed or made unreadable between finding and reading: as if never there
            found = None
        if found is None:
            return _answer(start_response, method, "404 Not Found", _line(NOT_FOUND))
        body, content_type = found
        return _answer(start_response, method, "200 OK", (body, content_type), [("Cache-Control", IMMUTABLE)])

    return app


def _found(directory: Path, path: str) -> tuple[bytes, str] | None:
    """(body, content type) for a request path, or None; each segment is matched whole, never joined raw."""
    segments = path.split("/")
    if segments[:1] != [""] or len(segments) not in (3, 4):
        return None
    _, collection, name, *file = segments
    if collection == DECISIONS_URL and not file and is_hash(name):
        bundle = inside(directory, bundle_path(directory, name))
        return None if bundle is None else (bundle.read_bytes(), "application/json")
    files = artifact_files(directory, name) if collection == MODELS_DIR else None
    if files is None:
        return None
    if not file:
        return model_index(name, files), "application/json"
    if file[0] not in files:
        return None
    kind = "application/json" if file[0] == ARTIFACT_FILE else "text/plain; charset=utf-8"
    return files[file[0]].read_bytes(), kind


def _line(text: str) -> tuple[bytes, str]:
    return (text + "\n").encode("utf-8"), "text/plain; charset=utf-8"


def _answer(start_response: StartResponse, method: str, status: str, body: tuple[bytes, str],
            headers: list[tuple[str, str]] | None = None) -> list[bytes]:
    data, content_type = body
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(data))), *(headers or [])])
    return [] if method == "HEAD" else [data]

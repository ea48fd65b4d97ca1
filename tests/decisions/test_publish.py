"""The keeper's HTTP server publishes the bundle directory a real cycle wrote: each bundle's exact bytes, each
model's index and files; nothing else, whatever the path says (traversal, encoded slashes, absolute paths,
symlinks out of the directory), never a 500, and only to GET and HEAD."""

import hashlib
import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from decisions.bundle import bundle_path, model_path
from decisions.publish import ARTIFACT_FILES
from keeper.metrics import KeeperMetrics, start_metrics_server
from strategy.decision_record import canonical_json
from strategy.trailing_best import RULE_HASH
from vaultbot.wsgi import WsgiServer

pytestmark = pytest.mark.anvil

SECRET = "the keeper's private notes"


def request(server: WsgiServer, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one request, the path sent exactly as written (no client-side cleaning)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        connection.endheaders()
        reply = connection.getresponse()
        return reply.status, {name.lower(): value for name, value in reply.getheaders()}, reply.read()
    finally:
        connection.close()


@pytest.fixture
def published(rebalanced: tuple[str, Path, str]) -> Iterator[tuple[WsgiServer, Path, str, str]]:
    """(the keeper's server over the cycle's bundle directory, that directory, decision hash, model hash)."""
    _, bundles, _ = rebalanced
    [path] = bundles.glob("0x*.json")
    model_hash = json.loads(path.read_text())["record"]["model_hash"]
    server = start_metrics_server(KeeperMetrics(max_age_s=60), "127.0.0.1", 0, decisions_dir=bundles)
    yield server, bundles, path.stem, model_hash
    server.stop()


def test_the_keepers_port_serves_each_bundle_and_model_byte_for_byte(
        published: tuple[WsgiServer, Path, str, str]) -> None:
    server, bundles, decision_hash, model_hash = published
    status, headers, body = request(server, "GET", f"/decisions/{decision_hash}")
    assert status == 200 and headers["content-type"] == "application/json"
    assert body == bundle_path(bundles, decision_hash).read_bytes() and headers["content-length"] == str(len(body))

    status, headers, index = request(server, "GET", f"/models/{model_hash}")
    assert status == 200 and headers["content-type"] == "application/json"
    document = json.loads(index)
    assert index.decode() == canonical_json(document) and document["model_hash"] == model_hash
    assert [entry["name"] for entry in document["files"]] == list(ARTIFACT_FILES)
    for entry in document["files"]:
        on_disk = (model_path(bundles, model_hash) / entry["name"]).read_bytes()
        status, _, served = request(server, "GET", f"/models/{model_hash}/{entry['name']}")
        assert status == 200 and served == on_disk, entry["name"]
        assert entry == {"name": entry["name"], "sha256": hashlib.sha256(on_disk).hexdigest(), "size": len(on_disk)}

    status, headers, body = request(server, "HEAD", f"/decisions/{decision_hash}")
    assert status == 200 and body == b"" and headers["content-length"] == str(bundle_path(bundles, decision_hash)
                                                                              .stat().st_size)
    assert request(server, "GET", "/metrics")[0] == 200 and request(server, "GET", "/health")[0] == 200
    status, _, body = request(server, "GET", "/nothing")
    assert status == 404 and b"/decisions/<decision hash>" in body and body.count(b"\n") == 1


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS"])
def test_only_get_and_head_are_answered(published: tuple[WsgiServer, Path, str, str], method: str) -> None:
    server, _, decision_hash, _ = published
    status, headers, body = request(server, method, f"/decisions/{decision_hash}")
    assert status == 405 and headers["allow"] == "GET, HEAD" and body.count(b"\n") == 1, (status, body)


def test_no_path_leaves_the_directory_or_reaches_what_is_not_published(
        published: tuple[WsgiServer, Path, str, str], tmp_path: Path) -> None:
    server, bundles, decision_hash, model_hash = published
    outside = tmp_path / "outside"
    (outside / "model").mkdir(parents=True)
    (outside / "notes.json").write_text(SECRET)
    for name in ARTIFACT_FILES:
        (outside / "model" / name).write_text(SECRET)
    linked_bundle, linked_model, linked_file = "0x" + "1" * 64, "0x" + "2" * 64, "0x" + "3" * 64
    bundle_path(bundles, linked_bundle).symlink_to(outside / "notes.json")  # symlinks out of the directory
    model_path(bundles, linked_model).symlink_to(outside / "model", target_is_directory=True)
    model_path(bundles, linked_file).mkdir()
    (model_path(bundles, linked_file) / "artifact.json").symlink_to(outside / "notes.json")
    (model_path(bundles, model_hash) / "notes.txt").write_text(SECRET)  # in the artifact's folder, not its file
    (bundles / "keeper.sqlite").write_text(SECRET)
    model = f"/models/{model_hash}"
    paths = [
        "/decisions/../keeper.sqlite", "/decisions/..%2Fkeeper.sqlite", "/decisions/%2e%2e%2fkeeper.sqlite",
        f"/decisions/{decision_hash}/../../keeper.sqlite", f"/decisions/..%2F..%2F..%2F..%2F{outside}/notes.json",
        f"{model}/..%2F..%2Fkeeper.sqlite", f"{model}/%2F{outside}%2Fnotes.json", f"{model}/..", f"{model}/.",
        f"{model}/notes.txt", f"{model}/artifact.json/..", f"{model}/artifact.json%00", f"{model}/",
        f"//{outside}/notes.json", f"/decisions/{outside}/notes.json", f"/decisions//{decision_hash}",
        "/decisions/%2Fetc%2Fpasswd", "/models/%2Fetc%2Fpasswd", "/decisions/", "/models/", "/decisions",
        f"/decisions/{decision_hash.upper()}", f"/decisions/0X{decision_hash[2:]}", f"/decisions/{decision_hash}.json",
        f"/decisions/{decision_hash}/", f"/decisions/{decision_hash[:-1]}", f"/decisions/{decision_hash}0",
        f"/decisions/{decision_hash}%00", f"/decisions/{decision_hash}%0a", f"/decisions/{model_hash}",
        f"/models/{decision_hash}", f"/models/{RULE_HASH}", f"/{model_path(bundles, model_hash)}/artifact.json",
        f"/decisions/{linked_bundle}", f"/models/{linked_model}", f"/models/{linked_model}/artifact.json",
        f"/models/{linked_file}", f"/models/{linked_file}/artifact.json", "/decisions/%ff%fe", "/\\..\\keeper.sqlite",
    ]
    for path in paths:
        for method in ("GET", "HEAD"):
            status, _, body = request(server, method, path)
            assert status == 404, (method, path, status, body)
            assert SECRET.encode() not in body and body.count(b"\n") == (method == "GET"), (method, path, body)


def test_a_directory_not_written_yet_answers_404(tmp_path: Path) -> None:
    server = start_metrics_server(KeeperMetrics(max_age_s=60), "127.0.0.1", 0, decisions_dir=tmp_path / "none")
    try:
        status, _, body = request(server, "GET", "/decisions/0x" + "ab" * 32)
        assert status == 404 and body.startswith(b"not found") and not (tmp_path / "none").exists()
    finally:
        server.stop()

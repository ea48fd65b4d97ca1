"""`vaultbot verify TX --bundle URL`: the bundle and its model downloaded from the keeper's own HTTP server
reproduce the decision; from a hostile server (http.server on 127.0.0.1, raw bytes) a lie is BUNDLE TAMPERED, a
404 BUNDLE MISSING, and a dead, flooding, trickling or silent server one clear error line within its limits."""

import gzip
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from decisions.bundle import bundle_path, model_path
from decisions.fetch import LIMITS, FetchError, Limits, check_published
from decisions.publish import artifact_files, decision_url, model_index, model_url
from keeper.metrics import KeeperMetrics, start_metrics_server
from strategy.decision_record import canonical_json
from strategy.models.artifact import model_file
from tests.cli import vaultbot
from tests.test_bad_input import clear_line, closed_port
from vaultbot.redact import redact

Handler = Callable[[BaseHTTPRequestHandler], None]
BYTE_EVERY_S = 0.1
TRICKLE_S = 10.0  # a trickle stops by itself after this: a test of code without a deadline ends too
DECISION = "0x" + "ab" * 32
VAULT = "0x" + "11" * 20


def answer(status: int, body: bytes, **headers: str) -> Handler:
    def send(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        named = {name.replace("_", "-"): value for name, value in headers.items()}  # Content_Length=...
        for name, value in ({"Content-Length": str(len(body))} | named).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)

    return send


def endless(handler: BaseHTTPRequestHandler) -> None:
    """200 and zeros without a length, until the client hangs up."""
    handler.send_response(200)
    handler.send_header("Connection", "close")
    handler.end_headers()
    block = b"0" * 2**16
    try:
        while True:
            handler.wfile.write(block)
    except OSError:
        return


def trickling(head: bytes) -> Handler:
    """`head` at once, then a byte every BYTE_EVERY_S for at most TRICKLE_S."""
    def send(handler: BaseHTTPRequestHandler) -> None:
        stop = time.monotonic() + TRICKLE_S
        try:
            handler.wfile.write(head)
            while time.monotonic() < stop:
                handler.wfile.write(b" ")
                handler.wfile.flush()
                time.sleep(BYTE_EVERY_S)
        except OSError:
            return

    return send


def silent(handler: BaseHTTPRequestHandler) -> None:
    time.sleep(TRICKLE_S)


class Routes(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        server: HostileServer = self.server  # type: ignore[assignment]
        server.paths.append(self.path)
        server.routes.get(self.path, answer(404, b"not found\n"))(self)

    def log_message(self, *args: object) -> None:
        pass


class HostileServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Routes)
        self.routes: dict[str, Handler] = {}
        self.paths: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def mirror(self, bundles: Path) -> tuple[str, str]:
        """Serve `bundles` as the keeper does, every answer a route to change; (decision hash, model hash)."""
        [path] = bundles.glob("0x*.json")
        model_hash = json.loads(path.read_text())["record"]["model_hash"]
        self.routes[f"/decisions/{path.stem}"] = answer(200, path.read_bytes())
        files = artifact_files(bundles, model_hash)
        assert files is not None
        self.routes[f"/models/{model_hash}"] = answer(200, model_index(model_hash, files))
        for name, file in files.items():
            self.routes[f"/models/{model_hash}/{name}"] = answer(200, file.read_bytes())
        return path.stem, model_hash

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client hanging up on a flood or a trickle is the point


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    server = HostileServer()
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def verdict(tx: str, url: str, deployment: str) -> tuple[int, str]:
    result = vaultbot("verify", tx, "--bundle", url, "--json", deployment)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


@pytest.mark.anvil
def test_a_bundle_downloaded_from_the_keepers_server_reproduces(rebalanced: tuple[str, Path, str],
                                                                tmp_path: Path) -> None:
    """From another process with its own state and temporary directories: the keeper's port and the chain."""
    tx, bundles, deployment = rebalanced
    fresh, temporary = tmp_path / "fresh", tmp_path / "tmp"
    fresh.mkdir()
    temporary.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAULTBOT_")} | {
        "VAULTBOT_HOME": str(fresh), "TMPDIR": str(temporary)}
    server = start_metrics_server(KeeperMetrics(max_age_s=60), "127.0.0.1", 0, decisions_dir=bundles)
    try:
        run = subprocess.run([str(Path(sys.executable).with_name("vaultbot")), "verify", tx, "--bundle",
                              server.url + "/", "--json", deployment], cwd=fresh, env=env, capture_output=True,
                             text=True, timeout=300)
    finally:
        server.stop()
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip().splitlines()[-1].startswith("REPRODUCED:"), run.stdout
    assert f"downloaded from {server.url}/" in run.stdout and "model artifact 0x" in run.stdout
    assert list(fresh.iterdir()) == [] and list(temporary.iterdir()) == []  # the download is gone with the check


def _state_changed(bundle: bytes) -> bytes:
    document = json.loads(bundle)
    document["state"]["vault"]["idle"] = "1"
    return canonical_json(document).encode()


@pytest.mark.anvil
@pytest.mark.parametrize(("part", "lie"), [
    ("encoding", lambda bundles, h, m: {f"/decisions/{h}": answer(200, bundle_path(bundles, h).read_bytes() + b" ")}),
    ("state", lambda bundles, h, m: {f"/decisions/{h}": answer(200, _state_changed(bundle_path(bundles, h)
                                                                                     .read_bytes()))}),
    ("model", lambda bundles, h, m: {f"/models/{m}/{model_file('yield')}": answer(
        200, (model_path(bundles, m) / model_file("yield")).read_bytes().replace(b"shrinkage=", b"shrinkage=1", 1))}),
    ("encoding", lambda bundles, h, m: {f"/decisions/{h}": answer(
        200, gzip.compress(bundle_path(bundles, h).read_bytes()))}),  # gzip bytes, not labelled as such
])
def test_a_server_that_lies_gives_bundle_tampered(rebalanced: tuple[str, Path, str], hostile: HostileServer,
                                                   part: str, lie: Callable[[Path, str, str], dict[str, Handler]]
                                                   ) -> None:
    tx, bundles, deployment = rebalanced
    decision_hash, model_hash = hostile.mirror(bundles)
    hostile.routes |= lie(bundles, decision_hash, model_hash)
    code, output = verdict(tx, hostile.url, deployment)
    assert code == 1, output
    assert output.strip().splitlines()[-1].startswith(f"BUNDLE TAMPERED: {part}:"), output


@pytest.mark.anvil
def test_a_server_without_the_bundle_or_its_model_gives_bundle_missing(rebalanced: tuple[str, Path, str],
                                                                         hostile: HostileServer) -> None:
    tx, bundles, deployment = rebalanced
    code, output = verdict(tx, hostile.url, deployment)
    [path] = hostile.paths
    assert code == 1 and output.strip().splitlines()[-1] == (
        f"BUNDLE MISSING: {hostile.url}{path} answered 404: the keeper published no bundle for this decision "
        "(decisions made before bundles existed have none)"), output
    _, model_hash = hostile.mirror(bundles)
    del hostile.routes[f"/models/{model_hash}"]
    code, output = verdict(tx, hostile.url, deployment)
    assert code == 1 and output.strip().splitlines()[-1].startswith(
        f"BUNDLE MISSING: {model_url(hostile.url, model_hash)} answered 404"), output


@pytest.mark.anvil
def test_a_server_that_cannot_be_read_is_one_clear_line(rebalanced: tuple[str, Path, str],
                                                         hostile: HostileServer) -> None:
    tx, bundles, deployment = rebalanced
    decision_hash, model_hash = hostile.mirror(bundles)
    bundle = decision_url(hostile.url, decision_hash)
    dead = f"http://127.0.0.1:{closed_port()}"
    cases: list[tuple[str, dict[str, Handler], str]] = [
        (dead, {}, f"error: {decision_url(dead, decision_hash)}: cannot connect: Connection refused"),
        (hostile.url, {f"/decisions/{decision_hash}": endless},
         f"error: {bundle}: a body of more than {LIMITS.max_body_bytes:,} bytes once decoded, the most allowed"),
        (hostile.url, {f"/decisions/{decision_hash}": answer(200, b"{}", Content_Length=str(2**40))},
         f"error: {bundle}: a body of {2**40:,} bytes, more than the {LIMITS.max_body_bytes:,} allowed"),
        (hostile.url, {f"/decisions/{decision_hash}": answer(500, b"oops")}, f"error: {bundle}: HTTP 500"),
        (hostile.url, {f"/models/{model_hash}": answer(200, b'{"files": [{"name": "../../../../evil"}]}')},
         f"error: {model_url(hostile.url, model_hash)}: not a model index: it names ['../../../../evil']"),
        (hostile.url, {f"/models/{model_hash}": answer(200, b"[" * 100_000)},
         f"error: {model_url(hostile.url, model_hash)}: not a model index (nested deeper than 256 levels)"),
    ]
    for url, routes, says in cases:
        hostile.routes |= routes
        code, output = verdict(tx, url, deployment)
        # `fail` masks every key-like path segment of a URL, the hashes too
        assert code == 1 and clear_line(output).startswith(redact(says)), (says, output)
        hostile.mirror(bundles)
    assert not Path("/evil").exists()  # where ../../../../evil from the temporary models/<hash>/ would land


# -- the limits of one download, without a chain: check_published fails before it needs one


@pytest.mark.parametrize(("handler", "says"), [
    (trickling(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"), "no complete answer within 1 s"),
    (trickling(b"HTTP/1.1 200 OK\r\nX-Slow: "), "no complete answer within 1 s"),
    (silent, "timed out: nothing read for 0.5 s"),
])
def test_a_slow_server_is_cut_off_at_its_limits(hostile: HostileServer, handler: Handler, says: str) -> None:
    hostile.routes[f"/decisions/{DECISION}"] = handler
    started = time.monotonic()
    with pytest.raises(FetchError) as caught:
        check_published(hostile.url, DECISION, chain_id=1, vault=VAULT,
                        limits=Limits(read_timeout_s=0.5, deadline_s=1.0))
    assert str(caught.value) == f"{decision_url(hostile.url, DECISION)}: {says}"
    assert time.monotonic() - started < 3.0


def test_a_gzip_bomb_is_refused_once_decoded_past_the_cap(hostile: HostileServer) -> None:
    cap = 2**20
    hostile.routes[f"/decisions/{DECISION}"] = answer(200, gzip.compress(b"0" * 50 * cap), Content_Encoding="gzip")
    with pytest.raises(FetchError, match=f"a body of more than {cap:,} bytes once decoded"):
        check_published(hostile.url, DECISION, chain_id=1, vault=VAULT, limits=Limits(max_body_bytes=cap))


@pytest.mark.anvil
def test_without_bundle_the_vault_says_where_the_bundles_are(rebalanced: tuple[str, Path, str], w3,
                                                             funded) -> None:
    """`verify TX` and an RPC alone: the vault's decisions_uri names the keeper's server; an empty or non-HTTP one
    is one line saying to pass --bundle."""
    tx, bundles, deployment = rebalanced
    vault = funded.contract(w3, "Vault", funded.vault)

    def publish(uri: str) -> None:
        receipt = w3.eth.wait_for_transaction_receipt(
            vault.functions.set_decisions_uri(uri).transact({"from": funded.admin}))
        assert receipt["status"] == 1

    server = start_metrics_server(KeeperMetrics(max_age_s=60), "127.0.0.1", 0, decisions_dir=bundles)
    try:
        publish(server.url)
        found = vaultbot("verify", tx, "--json", deployment)
    finally:
        server.stop()
    assert found.exit_code == 0, found.output
    assert found.output.strip().splitlines()[-1].startswith("REPRODUCED:") and server.url in found.output
    for uri, says in (("", "publishes no decisions_uri"), ("ipfs://bafy", "decisions_uri 'ipfs://bafy', not an http")):
        publish(uri)
        refused = vaultbot("verify", tx, "--json", deployment)
        assert refused.exit_code == 1 and clear_line(refused.output), refused.output
        assert says in refused.output and "pass --bundle DIR|URL" in refused.output, refused.output

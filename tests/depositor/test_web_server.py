"""The web server's routing: static files, JSON routes, and how each kind of error is answered; `vaultbot web`
finding the devnet keeper's journal by itself."""

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests

from depositor.errors import BadInput, Refusal
from depositor.web.server import SERVER_ERROR, serve
from devnet.config import devnet_config
from journal.db import CycleStatus, KeeperDB
from vaultbot.resources import chart_helpers, chart_library

if TYPE_CHECKING:
    from chain.deployment import Deployment


class Unavailable(Exception):
    pass


class RecordingViews:
    """Answers each route with what it was asked, or raises what the request names (route tests only)."""

    def vault(self) -> dict[str, Any]:
        return {"route": "vault"}

    def account(self, address: str) -> dict[str, Any]:
        return {"route": "account", "address": address}

    def plan(self, request: dict[str, Any]) -> dict[str, Any]:
        failures = {"bad": BadInput("AMOUNT: 'x' is not a number"), "refuse": Refusal("the vault is paused"),
                    "down": Unavailable("no RPC answers"), "bug": KeyError("oops")}
        if request.get("fail") in failures:
            raise failures[request["fail"]]
        return {"route": "plan", "request": request}

    def explain(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"route": "explain", "request": request}

    def result(self, tx_hash: str) -> dict[str, Any]:
        return {"route": "result", "tx": tx_hash}

    def verify(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"route": "verify", "request": request}


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    server = serve(RecordingViews(), "127.0.0.1", 0, unavailable=(Unavailable,))
    yield server.url
    server.stop()


def test_page_and_static_files(url: str) -> None:
    page = requests.get(url + "/", timeout=5)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert '<script src="/static/app.js"' in page.text
    script = requests.get(url + "/static/app.js", timeout=5)
    assert script.status_code == 200 and "javascript" in script.headers["Content-Type"]
    assert requests.get(url + "/static/style.css", timeout=5).headers["Content-Type"].startswith("text/css")


def test_the_page_says_which_clock_each_time_is_on_and_that_its_apy_is_the_chains(url: str) -> None:
    page = requests.get(url + "/", timeout=5).text
    headers = re.findall(r"<th>([^<]*)</th>", page)
    timed = [h for h in headers if re.search(r"time|deadline|started", h)]
    assert len(timed) == 3 and all("chain" in h or "keeper's clock" in h for h in timed), timed
    assert "(chain time)" in page  # the last report
    assert "rates on chain" in page and "not the keeper's forecast" in page  # the current APY card


def test_the_page_loads_the_vendored_chart_library_served_with_its_content_types(url: str) -> None:
    page = requests.get(url + "/", timeout=5).text
    library = chart_library()
    for file, tag, content_type in ((library.script, "script src", "text/javascript"),
                                    (library.stylesheet, "link rel=\"stylesheet\" href", "text/css"),
                                    (chart_helpers(), "script src", "text/javascript")):
        path = f"/static/{file.relative_to(chart_helpers().parent).as_posix()}"
        assert f'<{tag}="{path}"' in page, path
        reply = requests.get(url + path, timeout=5)
        assert reply.status_code == 200 and reply.headers["Content-Type"].startswith(content_type), path
        assert reply.content == file.read_bytes()


@pytest.mark.parametrize("path", ["/static/../server.py", "/static/%2e%2e/server.py", "/static/nothing.js", "/nope",
                                  "/static/vendor/../../server.py", "/static/vendor/nothing.js",
                                  "/static/%00", "/static/" + "a" * 5000])  # no path may hold NUL; a name is <= 255
def test_no_file_outside_static_and_unknown_paths(url: str, path: str) -> None:
    reply = requests.get(url + path, timeout=5)
    assert reply.status_code == 404
    assert "def web_app" not in reply.text


@pytest.mark.parametrize("prefix", ["/nope/", "/static/"])
def test_a_404_names_a_huge_path_quoted_and_cut(url: str, prefix: str) -> None:
    """A request line may be 64 KiB: the answer names the path's start, quoted, not all of it."""
    path = prefix + "a" * 60_000
    reply = requests.get(url + path, timeout=5)
    assert reply.status_code == 404
    error = reply.json()["error"]
    assert error.startswith(f"no such {'file' if prefix == '/static/' else 'page'}: '{prefix}aaa"), error
    assert error.endswith("...") and len(error) < 120, error
    assert len(reply.content) < 200


def test_a_405_quotes_a_huge_method(url: str) -> None:
    status, body = raw_answer(url, "X" * 60_000, "/api/plan")
    assert status[0].split(b" ")[1] == b"405" and len(body) < 200, body[:200]
    assert body.startswith(b'{"error": "\'XXX'), body[:200]


def raw_answer(url: str, method: str, path: str) -> tuple[list[bytes], bytes]:
    """The status line and headers (but Date), and the body, as sent: requests never reads a HEAD answer's body."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        chunks = []
        while chunk := sock.recv(65536):  # the server closes the connection after its answer (HTTP/1.0)
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    return [line for line in head.split(b"\r\n") if not line.startswith(b"Date:")], body


@pytest.mark.parametrize(("path", "status"), [("/", b"200"), ("/static/app.js", b"200"), ("/api/vault", b"200"),
                                              ("/static/nothing.js", b"404")])
def test_head_answers_as_get_without_the_body(url: str, path: str, status: bytes) -> None:
    get_head, get_body = raw_answer(url, "GET", path)
    head, body = raw_answer(url, "HEAD", path)
    assert head[0].split(b" ")[1] == status and head == get_head  # Content-Length too: the body GET would send
    assert body == b"" and get_body


def test_get_routes_pass_query_parameters(url: str) -> None:
    assert requests.get(url + "/api/vault", timeout=5).json() == {"route": "vault"}
    assert requests.get(url + "/api/account?address=0xabc", timeout=5).json() == {"route": "account",
                                                                                  "address": "0xabc"}
    assert requests.get(url + "/api/result?tx=0x1", timeout=5).json() == {"route": "result", "tx": "0x1"}


def test_missing_query_parameter_is_a_400_naming_it(url: str) -> None:
    reply = requests.get(url + "/api/account", timeout=5)
    assert reply.status_code == 400
    assert reply.json() == {"error": "missing query parameter 'address'"}


def test_post_routes_take_a_json_object(url: str) -> None:
    assert requests.post(url + "/api/plan", json={"action": "deposit"}, timeout=5).json() == {
        "route": "plan", "request": {"action": "deposit"}}
    not_json = requests.post(url + "/api/plan", data=b"{nope", timeout=5)
    assert not_json.status_code == 400 and not_json.json()["error"].startswith("request body is not JSON")
    a_list = requests.post(url + "/api/explain", json=[1, 2], timeout=5)
    assert a_list.status_code == 400 and a_list.json()["error"] == "request body must be a JSON object"
    assert requests.post(url + "/api/verify", json={"tx": "0x12"}, timeout=5).json() == {
        "route": "verify", "request": {"tx": "0x12"}}
    assert requests.get(url + "/api/verify", timeout=5).status_code == 405  # a check runs only when asked to


def test_deeply_nested_json_is_a_400() -> None:
    # json.loads raises RecursionError past the recursion limit: Python's default of 1000 (pytest runs higher)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    try:
        server = serve(RecordingViews(), "127.0.0.1", 0)
        try:
            nested = requests.post(server.url + "/api/plan", data=b"[" * 30_000 + b"]" * 30_000, timeout=5)
        finally:
            server.stop()
    finally:
        sys.setrecursionlimit(limit)
    assert nested.status_code == 400
    assert nested.json() == {"error": "request body is not JSON: nested deeper than 256 levels"}


def test_an_overlong_query_parameter_is_a_400(url: str) -> None:
    reply = requests.get(url + "/api/account", params={"address": "0x" + "1" * 5000}, timeout=5)
    assert reply.status_code == 400
    assert reply.json() == {"error": "query parameter 'address' is too long (5002 characters)"}


@pytest.mark.parametrize(("fail", "status", "message"), [
    ("bad", 400, "AMOUNT: 'x' is not a number"), ("refuse", 422, "the vault is paused"),
    ("down", 503, "no RPC answers"), ("bug", 500, SERVER_ERROR),  # a bug's own message stays in the log
])
def test_errors_become_json_with_a_status(url: str, fail: str, status: int, message: str) -> None:
    reply = requests.post(url + "/api/plan", json={"fail": fail}, timeout=5)
    assert reply.status_code == status
    assert reply.json() == {"error": message}


def test_wrong_method(url: str) -> None:
    assert requests.get(url + "/api/plan", timeout=5).status_code == 405
    assert requests.post(url + "/api/vault", json={}, timeout=5).status_code == 405
    assert requests.head(url + "/api/plan", timeout=5).status_code == 405  # HEAD is GET's alone


def test_oversized_body(url: str) -> None:
    reply = requests.post(url + "/api/plan", data=b"x" * (65 * 1024), timeout=5,
                          headers={"Content-Type": "application/json"})
    assert reply.status_code == 413


@pytest.mark.anvil
def test_vaultbot_web_shows_the_journal_the_devnet_keeper_writes_and_keeper_status_reads(
        devnet: "Deployment", tmp_path: Path) -> None:
    devnet.save(tmp_path / "devnet.json")
    env = {**os.environ, "VAULTBOT_HOME": str(tmp_path), "COLUMNS": "200"}
    # a cycle in the journal the devnet keeper is configured with (`keeper run`, `keeper status`, the demo)
    db = KeeperDB(devnet_config(tmp_path / "devnet.json").service.database_url)
    db.finish_cycle(db.start_cycle(dry_run=False), CycleStatus.HELD, "allocator kept the positions (optimal)")
    db.close()
    vaultbot = str(Path(sys.executable).with_name("vaultbot"))
    status = subprocess.run([vaultbot, "keeper", "status"], env=env, capture_output=True, text=True, timeout=60)
    assert "allocator kept the positions (optimal)" in status.stdout, status.stdout + status.stderr

    process = subprocess.Popen([vaultbot, "web", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env=env)
    try:
        line = process.stdout.readline()  # printed once it listens
        assert "serving http://127.0.0.1:" in line, line + process.stdout.read()
        url = line.split("serving ", 1)[1].split("/ ", 1)[0]
        keeper = requests.get(url + "/api/vault", timeout=30).json()["keeper"]
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    assert keeper["summary"].startswith("last keeper cycle") and keeper["summary"].endswith(": held"), keeper
    assert [cycle["reason"] for cycle in keeper["cycles"]] == ["allocator kept the positions (optimal)"]

"""The keeper panel of the page: health endpoint, journal database, or 'no keeper data'."""

import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import requests
from pytest_httpserver import HTTPServer

from depositor.keeper_health import JOURNAL_UNAVAILABLE, KeeperSources, keeper_status
from journal.db import CycleStatus, KeeperDB, sqlite_url
from tests.journal.damage import damage, written_journal

if TYPE_CHECKING:
    from depositor.vault import DepositorVault

NOW = datetime(2025, 1, 2, 12, 0, tzinfo=UTC)


def test_nothing_configured_says_no_keeper_data() -> None:
    assert keeper_status(KeeperSources()) == {"summary": "no keeper data", "healthy": None, "cycles": []}


def test_healthy_endpoint(httpserver: HTTPServer) -> None:
    last = (NOW - timedelta(minutes=7)).timestamp()
    httpserver.expect_request("/health").respond_with_json(
        {"status": "ok", "last_success": last, "last_cycle_status": "held", "last_reason": None})
    status = keeper_status(KeeperSources(health_url=httpserver.url_for("/health")), NOW)
    assert status["healthy"] is True
    assert status["summary"] == "keeper healthy: last successful cycle 7 min ago; last cycle held"


def test_unhealthy_endpoint(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/health").respond_with_json(
        {"status": "unhealthy", "last_success": None, "last_cycle_status": "failed", "last_reason": "rpc down"},
        status=503)
    status = keeper_status(KeeperSources(health_url=httpserver.url_for("/health")), NOW)
    assert status["healthy"] is False
    assert status["summary"] == "keeper UNHEALTHY: no successful cycle yet; last cycle failed (rpc down)"


def test_endpoint_without_json(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/health").respond_with_data("hello", status=200)
    status = keeper_status(KeeperSources(health_url=httpserver.url_for("/health")), NOW)
    assert status["healthy"] is None
    assert "answered HTTP 200 without JSON" in status["summary"]


def test_endpoint_that_does_not_answer() -> None:
    with socket.socket() as probe:  # a port nobody listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    status = keeper_status(KeeperSources(health_url=f"http://127.0.0.1:{port}/health"), NOW)
    assert status["healthy"] is False
    assert "does not answer (ConnectionError)" in status["summary"]


def test_database_cycles_newest_first(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "keeper.sqlite")
    db = KeeperDB(url)
    first = db.start_cycle(dry_run=False)
    db.finish_cycle(first, CycleStatus.HELD)
    second = db.start_cycle(dry_run=False)
    db.finish_cycle(second, CycleStatus.SKIPPED, "vault: cooldown")
    db.close()
    status = keeper_status(KeeperSources(database_url=url))
    assert [(c["status"], c["reason"]) for c in status["cycles"]] == [("skipped", "vault: cooldown"), ("held", None)]
    assert status["summary"].startswith("last keeper cycle ") and status["summary"].endswith(": skipped")
    assert status["healthy"] is None


def test_empty_database(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "keeper.sqlite")
    assert keeper_status(KeeperSources(database_url=url))["summary"] == "the keeper has not run yet: no journal"
    assert not (tmp_path / "keeper.sqlite").exists(), "the page made an empty journal"
    KeeperDB(url).close()
    assert keeper_status(KeeperSources(database_url=url))["summary"] == "the keeper database has no cycles yet"


def test_unreadable_database_is_a_message_not_a_crash(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    garbage = tmp_path / "keeper.sqlite"
    garbage.write_bytes(b"this is not a SQLite file" * 100)
    status = keeper_status(KeeperSources(database_url=sqlite_url(garbage)))
    assert status == {"summary": JOURNAL_UNAVAILABLE, "healthy": None, "cycles": []}
    assert "not a database" in caplog.text  # the reason goes to the server's log


@pytest.mark.parametrize("url", [
    "postgresql://alice:s3cret@127.0.0.1:1/keeper",  # nothing listens: the database is down
    "postgresql//alice:s3cret@127.0.0.1:1/keeper",  # malformed (SQLAlchemy refuses to parse it)
    "postgresql://alice@127.0.0.1:1/keeper?password=s3cret",
    "mysql://alice:s3cret@127.0.0.1:1/keeper",  # no driver installed
])
def test_a_database_down_shows_no_password(url: str, caplog: pytest.LogCaptureFixture) -> None:
    status = keeper_status(KeeperSources(database_url=url))
    assert status["summary"] == JOURNAL_UNAVAILABLE
    assert "cannot read the keeper journal" in caplog.text
    assert "s3cret" not in str(status) + caplog.text


def test_a_health_url_with_credentials_is_shown_without_them() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    status = keeper_status(KeeperSources(health_url=f"http://alice:s3cret@127.0.0.1:{port}/health?token=t0k"), NOW)
    assert status["summary"].startswith(f"keeper health endpoint http://***@127.0.0.1:{port}/health?token=*** does not")
    assert "s3cret" not in status["summary"] and "t0k" not in status["summary"]


@pytest.mark.parametrize(("sql", "row"), [
    ("UPDATE cycles SET started = 'yesterday'", "cycles is damaged: started holds 'yesterday', not a timestamp"),
    ("UPDATE cycles SET status = 'bogus'", "cycles is damaged: status holds 'bogus', not one of RUNNING, "),
])
def test_a_damaged_journal_is_unavailable_on_the_page_and_named_in_the_log(
        sql: str, row: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = written_journal(tmp_path / "keeper.sqlite")
    damage(tmp_path / "keeper.sqlite", sql)
    status = keeper_status(KeeperSources(database_url=url))
    assert status == {"summary": JOURNAL_UNAVAILABLE, "healthy": None, "cycles": []}
    [logged] = [record.getMessage() for record in caplog.records]
    assert logged.startswith(f"cannot read the keeper journal {url}: keeper database {url}: row 1 of table {row}")
    assert "\n" not in logged


@pytest.mark.anvil
def test_the_page_with_a_damaged_journal_answers_without_the_keeper_decision(
        depositor_vault: "DepositorVault", tmp_path: Path) -> None:
    from chain.errors import RpcUnavailable
    from depositor.views import VaultViews
    from depositor.web.server import serve

    url = written_journal(tmp_path / "keeper.sqlite")
    damage(tmp_path / "keeper.sqlite", "UPDATE decisions SET predictions = 'not json'")
    server = serve(VaultViews(depositor_vault, KeeperSources(database_url=url)), "127.0.0.1", 0,
                   unavailable=(RpcUnavailable,))
    try:
        reply = requests.get(server.url + "/api/vault", timeout=30)
    finally:
        server.stop()
    assert reply.status_code == 200, reply.text
    assert reply.json()["decision"] is None  # the cycles still read: only the decision's row is damaged
    assert reply.json()["keeper"]["summary"].startswith("last keeper cycle ")

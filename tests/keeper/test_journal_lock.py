"""One keeper per journal, on SQLite and PostgreSQL: a second keeper process is refused while the first
runs, and the lock dies with its holder (a crashed keeper never blocks the next one)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from journal.db import KeeperDB
from journal.lock import JournalLocked, journal_lock
from tests.cli import vaultbot
from tests.keeper.keeper_world import (
    artifact_dir,
    config_file,
    funded,
    keeper_table,
    llama,
)
from tests.keeper.postgres import database_url, postgres, postgres_url

HOLDER = """
import sys, time
from journal.db import KeeperDB
from journal.lock import journal_lock
with journal_lock(KeeperDB(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def other_keeper(database_url: str) -> Iterator[subprocess.Popen]:
    """Another process holding the journal's lock (as a running keeper does)."""
    KeeperDB(database_url).close()  # the journal exists before either takes the lock
    process = subprocess.Popen([sys.executable, "-c", HOLDER, database_url], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "locked"
        yield process
    finally:
        process.kill()
        process.wait(timeout=10)


def locks(url: str) -> bool:
    db = KeeperDB(url)
    try:
        with journal_lock(db):
            return True
    except JournalLocked:
        return False
    finally:
        db.close()


def test_a_second_keeper_is_refused_and_a_crashed_one_blocks_nothing(database_url: str,
                                                                      other_keeper: subprocess.Popen) -> None:
    db = KeeperDB(database_url)
    with pytest.raises(JournalLocked, match="another keeper is running on the journal") as refused:
        with journal_lock(db):
            pass
    db.close()
    if database_url.startswith("sqlite"):
        assert f"pid {other_keeper.pid}" in str(refused.value)
    other_keeper.send_signal(signal.SIGKILL)  # a crash: no clean release
    other_keeper.wait(timeout=10)
    deadline = time.monotonic() + 10  # the server notices the dropped connection within moments
    while not locks(database_url):
        assert time.monotonic() < deadline, "the dead keeper's lock was never released"
        time.sleep(0.1)


def test_the_lock_is_released_when_the_keeper_stops(database_url: str) -> None:
    db = KeeperDB(database_url)
    with journal_lock(db):
        assert not locks(database_url)
    assert locks(database_url)
    db.close()


@pytest.mark.anvil
def test_keeper_once_beside_a_running_keeper_is_refused_at_start(funded, keeper_table, tmp_path: Path) -> None:
    url = keeper_table["service"]["database_url"]
    KeeperDB(url).close()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, url], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        result = vaultbot("keeper", "once", "--config", str(config_file(keeper_table, tmp_path)))
    finally:
        holder.kill()
        holder.wait(timeout=10)
    assert result.exit_code == 1
    assert "another keeper is running on the journal" in result.output and f"pid {holder.pid}" in result.output

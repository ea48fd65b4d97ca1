"""Opening the keeper's journal to read it (`KeeperDB(url, create=False)`, what `keeper status` and `decisions
export` do) creates nothing: a journal that is not there is an error naming it, on SQLite and on PostgreSQL."""

from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import make_url

from journal.db import CycleStatus, DatabaseError, KeeperDB, sqlite_url
from tests.keeper.postgres import database_url, postgres, postgres_url


def tables(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        return inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_a_missing_journal_is_named_and_nothing_is_created(database_url: str, tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match=r"^no keeper journal at (sqlite|postgresql)\S*: ") as raised:
        KeeperDB(database_url, create=False)
    assert "keeper has not run" in str(raised.value)
    if make_url(database_url).get_backend_name() == "sqlite":
        assert str(tmp_path / "state" / "keeper.sqlite") in str(raised.value)
        assert not (tmp_path / "state").exists()  # not even the directory a new journal would go in
    else:
        assert tables(database_url) == []


def test_an_existing_journal_opens_to_read(database_url: str) -> None:
    written = KeeperDB(database_url)
    try:
        written.finish_cycle(written.start_cycle(dry_run=False), CycleStatus.HELD)
    finally:
        written.close()
    read = KeeperDB(database_url, create=False)
    try:
        assert [cycle.status for cycle in read.recent_cycles()] == [CycleStatus.HELD]
    finally:
        read.close()


def test_a_sqlite_file_that_is_no_journal_is_left_as_it_is(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    engine = create_engine(sqlite_url(other))
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE notes (text TEXT)")
    engine.dispose()
    with pytest.raises(DatabaseError, match="no keeper journal at .*other.sqlite: .*no keeper tables"):
        KeeperDB(sqlite_url(other), create=False)
    assert tables(sqlite_url(other)) == ["notes"]


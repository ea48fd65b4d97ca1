"""A journal that cannot be read as the keeper wrote it, or opened where it is configured, is one line naming the
journal and what is wrong (the table, row and column of a damaged row), never a traceback: rows edited by hand or
damaged, SQLAlchemy's own errors, SQLite paths that cannot hold a journal, and a lock that cannot be taken."""

import fcntl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, make_url, text

from journal.db import DatabaseError, KeeperDB, sqlite_url
from journal.lock import JournalLocked, journal_lock
from journal.news import NewsArchive
from tests.journal.damage import DECISION_HASH, TX_HASH, damage, written_journal
from tests.keeper.postgres import PostgresProcess, database_url, postgres, postgres_url

STATUSES = "RUNNING, REBALANCED, HELD, SKIPPED, REFUSED, REVERTED, FAILED, DRY_RUN, ABANDONED, PROPOSED"
Read = Callable[[KeeperDB], Any]


def cycles(db: KeeperDB) -> Any:
    return db.recent_cycles()


def last_decision(db: KeeperDB) -> Any:
    return db.last_decision()


def decisions(db: KeeperDB) -> Any:
    return db.decisions_between(None, None)


def transaction(db: KeeperDB) -> Any:
    return db.transaction(TX_HASH)


@pytest.mark.parametrize(("sql", "read", "row"), [
    ("UPDATE decisions SET predictions = 'not json'", last_decision,
     "decisions is damaged: predictions holds 'not json', not a JSON object"),
    ("UPDATE decisions SET predictions = '[1, 2]'", decisions,
     "decisions is damaged: predictions holds [1, 2], not a JSON object"),
    ("""UPDATE decisions SET predictions = '{"pool-a": {"market": null, "apy_pct": "high", "p_event": 0}}'""",
     last_decision, "decisions is damaged: predictions: the apy_pct of 'pool-a' is 'high', not a number"),
    ("""UPDATE decisions SET predictions = '{"pool-a": {"market": "here", "apy_pct": 1, "p_event": 0}}'""",
     last_decision, "decisions is damaged: predictions: the market of 'pool-a' is 'here', not an address"),
    ("""UPDATE decisions SET targets = '{"nowhere": 1}'""", last_decision,
     "decisions is damaged: targets: the market 'nowhere' is not an address"),
    ("UPDATE decisions SET expected_gain = 'lots'", decisions,
     "decisions is damaged: expected_gain holds 'lots', not a number"),
    ("UPDATE cycles SET status = 'bogus'", cycles, f"cycles is damaged: status holds 'bogus', not one of {STATUSES}"),
    ("UPDATE cycles SET started = 'yesterday'", cycles,
     "cycles is damaged: started holds 'yesterday', not a timestamp"),
    ("UPDATE cycles SET started = 42", cycles, "cycles is damaged: started holds 42, not a timestamp"),
    ("UPDATE cycles SET block_number = 'five'", cycles, "cycles is damaged: block_number holds 'five', not an integer"),
    # SQLite keeps any value in any column: SQLAlchemy would read these as True, inf
    ("UPDATE cycles SET dry_run = 'x'", cycles, "cycles is damaged: dry_run holds 'x', not a boolean"),
    ("UPDATE cycles SET dry_run = 2", cycles, "cycles is damaged: dry_run holds 2, not a boolean"),
    ("UPDATE decisions SET expected_gain = '1e999'", decisions,
     "decisions is damaged: expected_gain holds inf, not a finite number"),
    ("UPDATE transactions SET receipt = '{'", transaction,
     "transactions is damaged: receipt holds '{', not a JSON object"),
    ("UPDATE transactions SET status = 'lost'", transaction, "transactions is damaged: status holds 'lost', not one "
     "of SIGNED, SENT, MINED, FAILED, REPLACED, ABANDONED"),
    ("UPDATE proposals SET deadline = 'soon'", lambda db: db.waiting_proposals(),
     "proposals is damaged: deadline holds 'soon', not an integer"),
])
def test_a_damaged_row_is_one_line_naming_the_journal_table_row_and_column(sql: str, read: Read, row: str,
                                                                           tmp_path: Path) -> None:
    url = written_journal(tmp_path / "keeper.sqlite")
    damage(tmp_path / "keeper.sqlite", sql)
    db = KeeperDB(url, create=False)
    try:
        with pytest.raises(DatabaseError) as raised:
            read(db)
    finally:
        db.close()
    assert str(raised.value) == f"keeper database {url}: row 1 of table {row}"


def test_a_damaged_status_is_named_on_each_backend(database_url: str) -> None:
    db = KeeperDB(database_url)
    try:
        db.start_cycle(dry_run=False)
        with db.engine.begin() as connection:  # PostgreSQL keeps types, but a status is any short text to it
            connection.execute(text("UPDATE cycles SET status = 'bogus'"))
        with pytest.raises(DatabaseError, match=r": row 1 of table cycles is damaged: status holds 'bogus', not one "):
            db.recent_cycles()
    finally:
        db.close()


def test_rows_that_read_well_are_read_beside_a_damaged_one_in_another_table(tmp_path: Path) -> None:
    url = written_journal(tmp_path / "keeper.sqlite")
    damage(tmp_path / "keeper.sqlite", "UPDATE cycles SET status = 'bogus'")
    db = KeeperDB(url, create=False)
    try:
        assert [decision.decision_hash for decision in db.decisions_with_hash(DECISION_HASH)] == [DECISION_HASH]
    finally:
        db.close()


def test_a_news_item_that_is_not_json_names_its_row(tmp_path: Path) -> None:
    url = written_journal(tmp_path / "keeper.sqlite")
    damage(tmp_path / "keeper.sqlite", "INSERT INTO news_items (id, identity, item, seen) "
                                       "VALUES (7, 'x', '{not json', '2025-01-01 00:00:00')")
    db = KeeperDB(url)
    try:
        with pytest.raises(DatabaseError) as raised:
            NewsArchive(db)
    finally:
        db.close()
    assert str(raised.value).startswith(f"keeper database {url}: row 7 of table news_items is damaged: item is not "
                                        "JSON (")


def test_sqlalchemy_errors_are_one_line(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a SQLite file" * 100)
    with pytest.raises(DatabaseError) as opening:
        KeeperDB(sqlite_url(garbage))
    assert str(opening.value) == (f"cannot open the keeper database {sqlite_url(garbage)}: "
                                  "(sqlite3.DatabaseError) file is not a database")
    url = written_journal(tmp_path / "keeper.sqlite")
    db = KeeperDB(url)
    try:
        engine = create_engine(url)
        with engine.begin() as connection:
            connection.execute(text("DROP TABLE proposals"))
        engine.dispose()
        with pytest.raises(DatabaseError) as reading:
            db.waiting_proposals()
    finally:
        db.close()
    assert str(reading.value) == f"keeper database {url}: (sqlite3.OperationalError) no such table: proposals"


@pytest.mark.parametrize("create", [True, False])
def test_a_sqlite_journal_that_is_not_a_regular_file_is_named(create: bool, tmp_path: Path) -> None:
    for path in (Path("/dev/null"), tmp_path):
        with pytest.raises(DatabaseError) as raised:
            KeeperDB(sqlite_url(path), create=create)
        assert str(raised.value) == f"cannot open the keeper database {sqlite_url(path)}: {path} is not a regular file"


def test_a_journal_directory_that_cannot_be_made_is_named(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    for under in (tmp_path / "afile", tmp_path / "afile" / "deeper"):
        url = sqlite_url(under / "keeper.sqlite")
        with pytest.raises(DatabaseError) as raised:
            KeeperDB(url)
        assert str(raised.value) == f"cannot open the keeper database {url}: {tmp_path / 'afile'} is not a directory"
    url = sqlite_url(Path("/proc/vaultbot-journal-test/keeper.sqlite"))  # not even root makes a directory there
    with pytest.raises(DatabaseError, match=r"^cannot open the keeper database \S+: cannot create the directory "
                                            r"/proc/vaultbot-journal-test: [^\n]+$"):
        KeeperDB(url)


def test_a_lock_file_that_is_a_directory_is_named(tmp_path: Path) -> None:
    url = written_journal(tmp_path / "keeper.sqlite")
    (tmp_path / "keeper.sqlite.lock").mkdir()
    db = KeeperDB(url)
    try:
        with pytest.raises(DatabaseError) as raised, journal_lock(db):
            pass
    finally:
        db.close()
    lock = tmp_path / "keeper.sqlite.lock"
    assert str(raised.value) == f"cannot lock the keeper journal {url}: {lock}: Is a directory"


def test_a_lock_held_with_a_holder_that_is_not_text_is_refused_without_a_pid(tmp_path: Path) -> None:
    url = written_journal(tmp_path / "keeper.sqlite")
    lock = tmp_path / "keeper.sqlite.lock"
    db = KeeperDB(url)
    with lock.open("wb") as holder:  # another open file: its lock conflicts with this process's own
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        holder.write(b"\xff\xfe\x00 not a pid")
        holder.flush()
        try:
            with pytest.raises(JournalLocked) as raised, journal_lock(db):
                pass
        finally:
            db.close()
    assert str(raised.value) == f"another keeper is running on the journal {url}; it holds {lock}"


def test_a_postgresql_journal_gone_before_its_lock_is_taken_is_one_line(postgres: PostgresProcess) -> None:
    url = postgres.create_database()
    db = KeeperDB(url)
    try:
        with postgres.admin() as admin:  # the database dropped under the open journal, its sessions ended
            admin.execute(f"DROP DATABASE {make_url(url).database} WITH (FORCE)")
        with pytest.raises(DatabaseError) as raised, journal_lock(db):
            pass
    finally:
        db.close()
    assert str(raised.value).startswith(f"cannot lock the keeper journal {db.shown_url}: ")
    assert "does not exist" in str(raised.value) and "\n" not in str(raised.value)

"""One keeper per journal: `journal_lock` is held for the life of a keeper process, so that a second
`keeper run` or `keeper once` on the same journal refuses to start instead of deciding and signing beside
the first (same key, same nonces, two rebalances where one was meant). Read-only commands (`status`,
`verify`, the web page) do not take it.

The lock dies with its holder, so a crash never leaves it behind:
- SQLite: an exclusive `flock` on `<database file>.lock`, which also records the holder's pid;
- PostgreSQL: a session-level advisory lock on a connection held open (outside any transaction, so no
  snapshot is kept open); a server that drops that connection releases it;
- any other database: no lock, with a warning.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from journal.db import DatabaseError, KeeperDB, one_line

log = logging.getLogger(__name__)

ADVISORY_LOCK_KEY = 0x7661756C74626F74  # "vaultbot": one keeper per PostgreSQL database


class JournalLocked(RuntimeError):
    """Another keeper process holds the journal; the message says which journal (and pid when known)."""


@contextmanager
def journal_lock(db: KeeperDB) -> Iterator[None]:
    """Hold the journal's keeper lock until the block ends; JournalLocked at once if another process has it."""
    url = make_url(db.url)
    backend = url.get_backend_name()
    if backend == "sqlite" and url.database not in (None, "", ":memory:"):
        with _file_lock(Path(f"{url.database}.lock"), db.shown_url):
            yield
    elif backend == "postgresql":
        with _advisory_lock(db):
            yield
    else:
        if backend != "sqlite":
            log.warning("no keeper lock on %s databases: make sure one keeper runs on %s", backend, db.shown_url)
        yield


@contextmanager
def _file_lock(path: Path, shown_url: str) -> Iterator[None]:
    try:  # a directory, or a file the keeper may not write, where the lock goes
        handle = path.open("a+", encoding="utf-8", errors="replace")
    except OSError as error:
        raise DatabaseError(f"cannot lock the keeper journal {shown_url}: {path}: {error.strerror or error}") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read(32).strip()  # a pid, written below; anything else is not shown
            raise JournalLocked(f"another keeper is running on the journal {shown_url}"
                                + (f" (pid {holder})" if holder.isdecimal() else "") + f"; it holds {path}") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _advisory_lock(db: KeeperDB) -> Iterator[None]:
    try:
        connection = db.engine.connect()
    except SQLAlchemyError as error:
        raise _cannot_lock(db, error) from None
    with connection:
        try:
            holds = connection.execute(text("SELECT pg_try_advisory_lock(:key)"),
                                       {"key": ADVISORY_LOCK_KEY}).scalar()
            connection.commit()  # the lock is the session's: no transaction stays open while it is held
            holder = None if holds else connection.execute(
                text("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                     "AND ((classid::bigint << 32) | objid::bigint) = :key"), {"key": ADVISORY_LOCK_KEY}).scalar()
            connection.commit()
        except SQLAlchemyError as error:
            raise _cannot_lock(db, error) from None
        if not holds:
            raise JournalLocked(f"another keeper is running on the journal {db.shown_url}"
                                + (f" (server backend pid {holder})" if holder is not None else ""))
        try:
            yield
        finally:
            try:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY})
                connection.commit()
            except SQLAlchemyError as error:  # the server went away: the lock ended with its session
                log.warning("keeper lock on %s not released: %s", db.shown_url, one_line(error))


def _cannot_lock(db: KeeperDB, error: SQLAlchemyError) -> DatabaseError:
    """The server gone since the journal opened, or refusing the session: one line, as every journal error."""
    return DatabaseError(f"cannot lock the keeper journal {db.shown_url}: {one_line(error)}")

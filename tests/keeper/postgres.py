"""A real PostgreSQL server for the journal tests: the binaries bundled in the `pgserver` wheel (dev extra).

One server per test session, in its own temp directory, listening on a unix socket there only (no TCP), stopped
and deleted at the end; each test gets a fresh database (`postgres_url`). `database_url` runs a journal test
on SQLite (the default) and on PostgreSQL.

PostgreSQL refuses to run as root, so a root test run (containers, CI) runs it as `nobody`. pgserver's own
`get_server` would instead `useradd` a user and chmod every parent directory, hence the binaries are driven here.
Test modules import the fixtures they use from here (`from tests.keeper.postgres import ...`).
"""

import importlib.util
import itertools
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import URL

from journal.db import sqlite_url

UNPRIVILEGED_USER = "nobody"
PGSERVER_WHEELS_BELOW = (3, 13)  # pgserver 0.1.4 ships wheels for CPython 3.11 and 3.12 (pyproject's marker)


def bundled_bin() -> Path:
    # found without importing pgserver: its import sets up a lock and runtime dir we do not use
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        if sys.version_info < PGSERVER_WHEELS_BELOW:
            raise RuntimeError("the Postgres tests need the `pgserver` package: pip install -e '.[dev]'")
        pytest.skip(f"pgserver has no wheel for Python {sys.version_info.major}.{sys.version_info.minor}: "
                    "the journal runs on SQLite only here")
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


class PostgresProcess:
    """initdb + pg_ctl start in a new temp directory; `stop` stops the server and deletes the directory."""

    def __init__(self) -> None:
        self.bin = bundled_bin()
        self.root = Path(tempfile.mkdtemp(prefix="vaultbot-pg-"))  # short: a socket path has ~100 bytes
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"  # the server's
        self.output = self.root / "commands.log"  # initdb's and pg_ctl's
        self.user = UNPRIVILEGED_USER if os.geteuid() == 0 else None
        self._names = itertools.count(1)
        try:
            self._own_root()
            self._run("initdb", "--auth=trust", "--username=postgres", "--encoding=UTF8", "--no-locale",
                      "--no-sync", "--no-instructions")
            # -h '': no TCP at all; -k: the socket lives in our directory; -F: no fsync (a throwaway cluster)
            self._run("pg_ctl", "--wait", "--timeout=60", f"--log={self.log}",
                      f"--options=-h '' -k '{self.root}' -F", "start")
        except BaseException:
            self.stop()
            raise

    def url(self, database: str = "postgres") -> str:
        return URL.create("postgresql+psycopg", username="postgres", database=database,
                          query={"host": str(self.root)}).render_as_string(hide_password=False)

    def admin(self) -> psycopg.Connection:
        """A superuser connection to the `postgres` database, outside any transaction (use it in `with`)."""
        return psycopg.connect(host=str(self.root), user="postgres", dbname="postgres", autocommit=True)

    def create_database(self) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        name = f"journal_{next(self._names)}"
        with self.admin() as admin:
            admin.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "--wait", "--mode=fast", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _own_root(self) -> None:
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin / program), f"--pgdata={self.data}", *args]
        as_user: dict[str, Any] = {}
        if self.user is not None:
            as_user = {"user": self.user, "group": pwd.getpwnam(self.user).pw_gid, "extra_groups": []}
        # output to a file, not a pipe: the server started by pg_ctl could hold a pipe open (pgserver saw hangs)
        with self.output.open("a") as output:
            try:
                subprocess.run(command, check=True, stdout=output, stderr=output, timeout=90, **as_user)
            except (OSError, subprocess.SubprocessError) as error:
                who = f" as {self.user} (PostgreSQL refuses root)" if self.user else ""
                logs = "".join(path.read_text() for path in (self.output, self.log) if path.exists())
                raise RuntimeError(f"test Postgres: {program}{who} failed in {self.root}: {error}\n{logs}") from error


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresProcess]:
    server = PostgresProcess()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres: PostgresProcess) -> str:
    """The SQLAlchemy URL of a fresh database on the session's server."""
    return postgres.create_database()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh journal URL, once on SQLite and once on the session's PostgreSQL server."""
    if request.param == "postgres":
        return request.getfixturevalue("postgres_url")
    return sqlite_url(tmp_path / "state" / "keeper.sqlite")

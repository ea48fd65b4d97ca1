"""The journal on a real PostgreSQL server: what only Postgres can break, and the keeper end to end on it.

The journal's own operations run on both SQLite and Postgres in test_db.py.
"""

import json
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from web3 import Web3

from chain.deployment import Deployment
from journal.db import CycleStatus, KeeperDB, TxStatus, utc_now
from strategy.decision_record import decision_hash_of
from tests.cli import vaultbot
from tests.keeper.keeper_world import (
    artifact_dir,
    config_file,
    funded,
    keeper_table,
    llama,
    once_rebalancing,
    rebalanced_hashes,
)
from tests.keeper.postgres import PostgresProcess, postgres, postgres_url


def test_the_server_listens_on_its_socket_only(postgres_url: str) -> None:
    db = KeeperDB(postgres_url)
    with db.engine.connect() as connection:
        address, listen = connection.execute(
            text("SELECT inet_server_addr(), current_setting('listen_addresses')")).one()
    db.close()
    assert (address, listen) == (None, "")  # no TCP address: this connection came over the unix socket


def test_times_are_utc_whatever_the_server_time_zone(postgres_url: str) -> None:
    far_east = make_url(postgres_url).update_query_dict({"options": "-c TimeZone=Pacific/Kiritimati"})  # UTC+14
    db = KeeperDB(far_east.render_as_string(hide_password=False))
    with db.engine.connect() as connection:
        assert connection.execute(text("SHOW TimeZone")).scalar_one() == "Pacific/Kiritimati"
    before = utc_now()
    cycle_id = db.start_cycle(dry_run=False)
    db.finish_cycle(cycle_id, CycleStatus.HELD)
    cycle = db.recent_cycles(1)[0]
    db.close()
    assert before <= cycle.started <= cycle.finished <= utc_now()


def test_a_connection_the_server_dropped_is_replaced(postgres: PostgresProcess, postgres_url: str) -> None:
    db = KeeperDB(postgres_url)
    cycle_id = db.start_cycle(dry_run=False)
    with postgres.admin() as admin:  # as a server restart or its idle_session_timeout would
        dropped = admin.execute("SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) "
                                "FROM pg_stat_activity WHERE datname = %s", [make_url(postgres_url).database])
        assert dropped.fetchone() == (1,)
    db.finish_cycle(cycle_id, CycleStatus.HELD)
    assert db.recent_cycles(1)[0].status == CycleStatus.HELD
    db.close()


@pytest.mark.anvil
def test_keeper_once_journals_in_postgres_and_verify_confirms_it(
        w3: Web3, funded: Deployment, keeper_table: dict, postgres_url: str, tmp_path: Path) -> None:
    # the server trusts local connections, so a password is accepted and ignored: it must never be shown
    keeper_table["service"]["database_url"] = postgres_url.replace("postgres@", "postgres:s3cret-pw@", 1)
    config = config_file(keeper_table, tmp_path)
    tx_hash, decision_hash = once_rebalancing(w3, funded, config)
    assert rebalanced_hashes(w3, funded) == [decision_hash]

    db = KeeperDB(postgres_url)
    [decision] = db.decisions_with_hash(decision_hash)
    assert decision_hash_of(json.loads(decision.record)) == decision_hash
    tx = db.transaction(tx_hash)
    assert (tx.status, tx.decision_id) == (TxStatus.MINED, decision.id) and tx.fee_paid > 0
    db.close()
    assert not list(tmp_path.glob("*.sqlite"))  # nothing went to a SQLite file

    verified = vaultbot("keeper", "verify", tx_hash, "--config", str(config))
    assert verified.exit_code == 0, verified.output
    assert "OK: the on-chain decision hash matches the journal's record" in verified.output

    status = vaultbot("keeper", "status", "--config", str(config))
    assert status.exit_code == 0, status.output
    assert "rebalanced" in status.output and "s3cret-pw" not in status.output and "***" in status.output

"""A journal with one row in each table, and the same journal damaged by hand (an SQL UPDATE on its file), for the
tests of what reading a damaged journal says."""

import sqlite3
from pathlib import Path

from journal.db import CycleStatus, KeeperDB, sqlite_url
from tests.keeper.keeper_world import config_file

MARKET = "0x" + "4d" * 20
DECISION_HASH, TX_HASH = "0x" + "33" * 32, "0x" + "44" * 32


def written_journal(path: Path) -> str:
    """A SQLite journal at `path` with a finished cycle, its decision, a sent transaction and a proposal: its URL."""
    db = KeeperDB(sqlite_url(path))
    try:
        cycle = db.start_cycle(dry_run=False)
        db.update_cycle(cycle, block_number=5)
        decision = db.record_decision(
            cycle, inputs_hash="0x" + "11" * 32, model_hash="0x" + "22" * 32,
            predictions={"pool-a": {"market": MARKET, "apy_pct": 4.2, "p_event": 0.01}}, targets={MARKET: 10**6},
            allocation_status="optimal", expected_gain=1.5, decision_hash=DECISION_HASH, record="{}")
        db.record_signed(decision, sender="0x" + "70" * 20, nonce=1, tx_hash=TX_HASH, raw_tx="0x02", gas_limit=1,
                         max_fee_per_gas=1, max_priority_fee_per_gas=1, chain_id=31337, genesis_hash="0x" + "0c" * 32,
                         built_on_block=4, built_on_hash="0x" + "0b" * 32)
        db.mark_sent(TX_HASH)
        db.record_proposal(decision, "0x" + "55" * 32, deadline=100)
        db.finish_cycle(cycle, CycleStatus.PROPOSED)
    finally:
        db.close()
    return sqlite_url(path)


def damage(path: Path, sql: str) -> None:
    """`sql` run on the journal file as someone editing it by hand would."""
    connection = sqlite3.connect(path)
    try:
        connection.execute(sql)
        connection.commit()
    finally:
        connection.close()


def offline_config(database_url: str, directory: Path) -> Path:
    """A keeper config on `database_url` whose RPC is a closed port: what reads only the journal needs no chain."""
    return config_file({"chain": {"rpc_urls": ["http://127.0.0.1:1"], "chain_id": 31337, "raw_key_env": "K",
                                  "vault": "0x" + "34" * 20}, "markets": {"p": "0x" + "12" * 20},
                        "service": {"database_url": database_url}}, directory)

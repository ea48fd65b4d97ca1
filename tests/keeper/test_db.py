"""The keeper's journal: cycles, decisions, transactions and their states across reopening.

Every test using `db` or `database_url` runs twice: on SQLite (the default) and on a real PostgreSQL server.
"""

import re
from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from journal.db import CycleStatus, DatabaseError, KeeperDB, TxStatus
from tests.keeper.postgres import database_url, postgres, postgres_url

SENDER = "0x" + "70" * 20
MARKET = "0x" + "4d" * 20


@pytest.fixture
def db(database_url: str) -> Iterator[KeeperDB]:
    journal = KeeperDB(database_url)
    yield journal
    journal.close()


def decision(db: KeeperDB, cycle_id: int, decision_hash: str = "0x" + "aa" * 32) -> int:
    return db.record_decision(
        cycle_id, inputs_hash="0x" + "01" * 32, model_hash="0x" + "02" * 32,
        predictions={"pool-a": {"apy_pct": 4.2, "p_event": 0.01}}, targets={MARKET: 2**70},
        allocation_status="optimal", expected_gain=12.5, decision_hash=decision_hash, record='{"x":1}',
    )


GENESIS, BLOCK = "0x" + "0c" * 32, "0x" + "0b" * 32


def sign(db: KeeperDB, decision_id: int, tx_hash: str, nonce: int = 7, max_fee: int = 2 * 10**9) -> None:
    db.record_signed(decision_id, sender=SENDER, nonce=nonce, tx_hash=tx_hash, raw_tx="0x02f8", gas_limit=300_000,
                     max_fee_per_gas=max_fee, max_priority_fee_per_gas=10**9, chain_id=31337, genesis_hash=GENESIS,
                     built_on_block=41, built_on_hash=BLOCK)


def receipt(tx_hash: str, status: int = 1) -> dict:
    return {"transactionHash": bytes.fromhex(tx_hash[2:]), "status": status, "blockNumber": 12, "gasUsed": 90_000,
            "effectiveGasPrice": 1_500_000_000, "logs": [{"data": b"\x01"}]}


def test_cycle_lifecycle_is_recorded_with_utc_times(db: KeeperDB) -> None:
    cycle_id = db.start_cycle(dry_run=True)
    running = db.recent_cycles()[0]
    assert (running.status, running.finished, running.dry_run) == (CycleStatus.RUNNING, None, True)
    db.update_cycle(cycle_id, block_number=5, share_price=str(10**30))
    db.finish_cycle(cycle_id, CycleStatus.REFUSED, "pool p: latest point is 40 h old")
    done = db.recent_cycles()[0]
    assert done.status == CycleStatus.REFUSED and done.reason.endswith("40 h old")
    assert done.started.tzinfo is not None and done.finished >= done.started
    assert done.share_price == str(10**30)
    assert db.last_share_price(before_cycle=cycle_id + 1).id == cycle_id
    assert db.last_share_price(before_cycle=cycle_id) is None


def test_signed_transaction_survives_reopening_and_is_pending(database_url: str) -> None:
    first = KeeperDB(database_url)
    decision_id = decision(first, first.start_cycle(dry_run=False))
    sign(first, decision_id, "0x" + "AB" * 32)
    first.close()  # as if the process died right after signing

    reopened = KeeperDB(database_url)
    [pending] = reopened.pending_transactions()
    assert (pending.tx_hash, pending.status, pending.nonce) == ("0x" + "ab" * 32, TxStatus.SIGNED, 7)
    assert (pending.chain_id, pending.genesis_hash, pending.built_on_block, pending.built_on_hash) == (
        31337, GENESIS, 41, BLOCK)  # the chain resume checks it against
    reopened.mark_sent(pending.tx_hash)
    assert reopened.pending_transactions()[0].status == TxStatus.SENT
    reopened.close()


def test_receipt_marks_mined_and_the_other_nonce_siblings_replaced(db: KeeperDB) -> None:
    decision_id = decision(db, db.start_cycle(dry_run=False))
    first, bumped = "0x" + "01" * 32, "0x" + "02" * 32
    sign(db, decision_id, first)
    sign(db, decision_id, bumped, max_fee=3 * 10**9)
    mined = db.record_receipt(receipt(bumped))
    assert mined.status == TxStatus.MINED and mined.fee_paid == 90_000 * 1_500_000_000
    assert db.transaction(first).status == TxStatus.REPLACED
    assert db.transaction(bumped).receipt["logs"] == [{"data": "0x01"}]
    assert db.pending_transactions() == []
    assert db.gas_spent_wei() == 90_000 * 1_500_000_000
    assert db.decision_of(mined).decision_hash == "0x" + "aa" * 32


def test_a_receipt_leaves_an_abandoned_version_of_its_nonce_abandoned(db: KeeperDB) -> None:
    """After a chain reset the same nonce is signed anew: its receipt must not rewrite the old chain's record."""
    abandoned, fresh = "0x" + "11" * 32, "0x" + "12" * 32
    sign(db, decision(db, db.start_cycle(dry_run=False)), abandoned)
    db.mark_abandoned(abandoned, "chain reset: ...")
    sign(db, decision(db, db.start_cycle(dry_run=False)), fresh)
    db.record_receipt(receipt(fresh))
    assert db.transaction(abandoned).status == TxStatus.ABANDONED
    assert db.transaction(abandoned).error == "chain reset: ..."
    assert db.pending_transactions() == []


def test_a_journal_of_an_older_version_gains_the_new_columns(database_url: str) -> None:
    old = KeeperDB(database_url)
    sign(old, decision(old, old.start_cycle(dry_run=False)), "0x" + "13" * 32)
    with old.engine.begin() as connection:  # the transactions table as it was before the chain columns
        for column in ("chain_id", "genesis_hash", "built_on_block", "built_on_hash"):
            connection.execute(text(f"ALTER TABLE transactions DROP COLUMN {column}"))
    old.close()
    upgraded = KeeperDB(database_url)
    [pending] = upgraded.pending_transactions()
    assert (pending.tx_hash, pending.chain_id, pending.genesis_hash) == ("0x" + "13" * 32, None, None)
    sign(upgraded, pending.decision_id, "0x" + "14" * 32, nonce=8)
    assert upgraded.transaction("0x" + "14" * 32).built_on_hash == BLOCK
    upgraded.close()


def test_reverted_receipt_and_give_up_are_failures(db: KeeperDB) -> None:
    decision_id = decision(db, db.start_cycle(dry_run=False))
    sign(db, decision_id, "0x" + "03" * 32, nonce=1)
    sign(db, decision_id, "0x" + "04" * 32, nonce=2)
    assert db.record_receipt(receipt("0x" + "03" * 32, status=0)).status == TxStatus.FAILED
    db.mark_failed("0x" + "04" * 32, "dropped by the node")
    assert db.transaction("0x" + "04" * 32).error == "dropped by the node"
    assert db.pending_transactions() == []


def test_decisions_are_found_by_hash_case_insensitively(db: KeeperDB) -> None:
    decision(db, db.start_cycle(dry_run=False), "0x" + "ee" * 32)
    assert [d.expected_gain for d in db.decisions_with_hash("0x" + "EE" * 32)] == [12.5]
    assert db.decisions_with_hash("0x" + "ff" * 32) == []


def test_a_transaction_hash_is_stored_once(db: KeeperDB, database_url: str) -> None:
    decision_id = decision(db, db.start_cycle(dry_run=False))
    sign(db, decision_id, "0x" + "05" * 32)
    with pytest.raises(DatabaseError, match=re.escape(make_url(database_url).database)):
        sign(db, decision_id, "0x" + "05" * 32)


def test_chain_numbers_keep_every_digit(db: KeeperDB) -> None:
    cycle_id = db.start_cycle(dry_run=False)
    db.update_cycle(cycle_id, block_number=2**63 - 1, total_assets=str(2**256 - 1))
    cycle = db.recent_cycles()[0]
    assert (cycle.block_number, cycle.total_assets) == (2**63 - 1, str(2**256 - 1))
    sign(db, decision(db, cycle_id), "0x" + "06" * 32, max_fee=2**63 - 1)
    assert db.last_decision().targets == {MARKET: 2**70}  # JSON keeps integers beyond 64 bits
    assert db.transaction("0x" + "06" * 32).max_fee_per_gas == 2**63 - 1


def test_a_nul_in_a_message_is_stored_escaped(db: KeeperDB) -> None:
    # a revert string may carry NUL bytes (a bytes32 turned into a string); PostgreSQL text cannot
    cycle_id = db.start_cycle(dry_run=False)
    sign(db, decision(db, cycle_id), "0x" + "07" * 32)
    reason = "ContractLogicError: market: cap\x00\x00"
    db.mark_failed("0x" + "07" * 32, reason)
    db.finish_cycle(cycle_id, CycleStatus.REVERTED, reason)
    stored = r"ContractLogicError: market: cap\x00\x00"
    assert db.recent_cycles()[0].reason == db.transaction("0x" + "07" * 32).error == stored


def test_a_url_in_a_message_is_stored_without_its_credentials(db: KeeperDB) -> None:
    cycle_id = db.start_cycle(dry_run=False)
    db.finish_cycle(cycle_id, CycleStatus.FAILED, "RpcUnavailable: tried https://user:pw@rpc.example/v3/"
                                                  "0123456789abcdef0123456789abcdef?apikey=k3y (timeout)")
    assert db.recent_cycles()[0].reason == "RpcUnavailable: tried https://***@rpc.example/v3/***?apikey=*** (timeout)"


def test_unknown_transaction_and_naive_times_are_refused(db: KeeperDB) -> None:
    with pytest.raises(DatabaseError, match="no transaction 0x99"):
        db.mark_sent("0x99")
    cycle_id = db.start_cycle(dry_run=False)
    with pytest.raises(DatabaseError, match="naive datetime"):
        db.update_cycle(cycle_id, finished=datetime(2024, 1, 1))


def test_unusable_database_url_names_it_without_password() -> None:
    with pytest.raises(DatabaseError, match=r"\*\*\*") as error:
        KeeperDB("postgresql+nosuchdriver://keeper:secret@127.0.0.1/db")
    assert "secret" not in str(error.value)

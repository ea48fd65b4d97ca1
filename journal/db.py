"""The keeper's journal: cycles, decisions and transactions in one SQL database (SQLAlchemy 2 ORM).

SQLite by default; any SQLAlchemy URL works (the tests also run it on PostgreSQL, postgresql+psycopg://...).
Every method commits before it returns, so whatever the keeper does next (broadcasting a signed transaction
above all) happens only after the database knows about it: a transaction is stored as `signed`, with its raw
bytes, before it is sent, and a restarted keeper finds it there and resumes it instead of signing a new one.

Amounts in wei that fit 64 bits (fees per gas, gas) are integers; uint256 values (share price, assets) are
decimal strings.

Schema changes: `create_all` makes missing tables, and opening a journal adds the columns a newer version
brought (all nullable: rows written before them hold NULL there). Columns are never renamed or dropped.
"""

import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Enum,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    TypeDecorator,
    create_engine,
    event,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    relationship,
    sessionmaker,
)
from web3 import Web3

from journal.predictions import forecasts_problem
from vaultbot.redact import redact


class CycleStatus(StrEnum):
    RUNNING = "running"  # started, not finished (a crash leaves it so)
    REBALANCED = "rebalanced"  # a rebalance was mined
    HELD = "held"  # the allocator kept the current positions
    SKIPPED = "skipped"  # nothing may be sent now (cooldown, paused, a transaction still pending)
    REFUSED = "refused"  # the data gate or a source refused the data
    REVERTED = "reverted"  # the vault refused the rebalance (simulation or mined revert)
    FAILED = "failed"  # anything else went wrong (RPC, model, transaction)
    DRY_RUN = "dry_run"  # a rebalance was decided and simulated, not sent
    ABANDONED = "abandoned"  # its transaction was given up unmined (chain reset, reorg, stale decision)
    PROPOSED = "proposed"  # the rebalance was over the daily budgets: proposed to the guardian instead


class TxStatus(StrEnum):
    SIGNED = "signed"  # stored, maybe not broadcast yet
    SENT = "sent"  # broadcast, no receipt yet
    MINED = "mined"  # receipt with status 1
    FAILED = "failed"  # receipt with status 0, or given up
    REPLACED = "replaced"  # another transaction with the same nonce was mined
    ABANDONED = "abandoned"  # never to be broadcast again: its chain is gone or its decision stale (see `error`)

    @property
    def pending(self) -> bool:
        return self in (TxStatus.SIGNED, TxStatus.SENT)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the journal stores UTC times only")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class MessageText(TypeDecorator[str]):
    """Free text from outside (revert reasons, error messages): PostgreSQL text cannot hold NUL, so it is escaped;
    URL credentials are masked, as every reader of the journal shows these (status, the depositors' page)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else redact(value.replace("\x00", "\\x00"))


class StrictBoolean(TypeDecorator[bool]):
    """A boolean that reads back only as one: SQLAlchemy reads any SQLite value as `bool(value)` ('x' as True), so a
    value other than 0 or 1 fails here, as a value no column type can read does (`_undecodable_row` names its row)."""

    impl = Boolean
    cache_ok = True

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], bool | None]:
        def read(value: Any) -> bool | None:
            if value is None or isinstance(value, bool):  # PostgreSQL's driver gives bools
                return value
            if type(value) is int and value in (0, 1):  # SQLite's integers, as SQLAlchemy writes them
                return value == 1
            raise ValueError(f"{value!r} is not a boolean")
        return read


def utc_now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Cycle(Base):
    __tablename__ = "cycles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
    finished: Mapped[datetime | None] = mapped_column(UtcDateTime)
    status: Mapped[CycleStatus] = mapped_column(Enum(CycleStatus, native_enum=False, length=16),
                                                default=CycleStatus.RUNNING)
    reason: Mapped[str | None] = mapped_column(MessageText)
    dry_run: Mapped[bool] = mapped_column(StrictBoolean, default=False)
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    chain_time: Mapped[int | None] = mapped_column(BigInteger)
    total_assets: Mapped[str | None] = mapped_column(String(80))
    share_price: Mapped[str | None] = mapped_column(String(80))  # assets per 10**decimals shares
    decision: Mapped["Decision | None"] = relationship(back_populates="cycle")


class Decision(Base):
    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycles.id"), unique=True)
    created: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
    inputs_hash: Mapped[str] = mapped_column(String(66))
    model_hash: Mapped[str] = mapped_column(String(66))
    # pool id -> the forecast of its market (`journal.predictions`)
    predictions: Mapped[dict[str, Any]] = mapped_column(JSON)
    targets: Mapped[dict[str, int]] = mapped_column(JSON)  # every market -> target (asset units)
    allocation_status: Mapped[str] = mapped_column(String(16))
    expected_gain: Mapped[float]
    decision_hash: Mapped[str] = mapped_column(String(66), index=True)
    record: Mapped[str] = mapped_column(Text)  # the canonical JSON that hashes to decision_hash
    cycle: Mapped[Cycle] = relationship(back_populates="decision")
    transactions: Mapped[list["Transaction"]] = relationship(back_populates="decision", order_by="Transaction.id")


class Transaction(Base):
    __tablename__ = "transactions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("decisions.id"))
    created: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
    updated: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now, onupdate=utc_now)
    sender: Mapped[str] = mapped_column(String(42))
    nonce: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(String(66), unique=True)
    raw_tx: Mapped[str] = mapped_column(Text)
    max_fee_per_gas: Mapped[int] = mapped_column(BigInteger)
    max_priority_fee_per_gas: Mapped[int] = mapped_column(BigInteger)
    gas_limit: Mapped[int] = mapped_column(BigInteger)
    # the vault function it calls (rebalance, propose_rebalance, report); NULL in rows from before: rebalances
    function: Mapped[str | None] = mapped_column(String(32))
    # the chain it was signed for and built on (NULL in rows journaled before these columns): resume checks them
    chain_id: Mapped[int | None] = mapped_column(BigInteger)
    genesis_hash: Mapped[str | None] = mapped_column(String(66))
    built_on_block: Mapped[int | None] = mapped_column(BigInteger)
    built_on_hash: Mapped[str | None] = mapped_column(String(66))
    status: Mapped[TxStatus] = mapped_column(Enum(TxStatus, native_enum=False, length=16), default=TxStatus.SIGNED)
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    gas_used: Mapped[int | None] = mapped_column(BigInteger)
    effective_gas_price: Mapped[int | None] = mapped_column(BigInteger)
    receipt: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(MessageText)
    decision: Mapped[Decision] = relationship(back_populates="transactions")

    @property
    def fee_paid(self) -> int | None:
        """Wei paid for gas, once mined."""
        if self.gas_used is None or self.effective_gas_price is None:
            return None
        return self.gas_used * self.effective_gas_price


class ProposalStatus(StrEnum):
    WAITING = "waiting"  # live on chain: the guardian may approve it, or has and the keeper runs it next
    EXECUTED = "executed"  # its rebalance was mined
    EXPIRED = "expired"  # its deadline passed before it ran
    REJECTED = "rejected"  # the guardian dropped it before its deadline


class ProposalRecord(Base):
    """A rebalance the keeper proposed to the guardian (`Vault.propose_rebalance`), under the decision it is."""

    __tablename__ = "proposals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    proposal_id: Mapped[str] = mapped_column(String(66), unique=True)  # what the guardian approves
    decision_id: Mapped[int] = mapped_column(ForeignKey("decisions.id"))
    decision_hash: Mapped[str] = mapped_column(String(66))
    deadline: Mapped[int] = mapped_column(BigInteger)  # chain time
    status: Mapped[ProposalStatus] = mapped_column(Enum(ProposalStatus, native_enum=False, length=16),
                                                   default=ProposalStatus.WAITING)
    created: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
    closed: Mapped[datetime | None] = mapped_column(UtcDateTime)


class NewsItem(Base):
    """A news item the keeper was served (`journal.news`): a feed serves its latest items only, the news features
    count them over weeks."""

    __tablename__ = "news_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # the order they were first seen in
    identity: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 of its (source, time, title)
    item: Mapped[str] = mapped_column(Text)  # JSON (NULs escaped, which PostgreSQL text cannot hold)
    seen: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)


class DatabaseError(RuntimeError):
    """The journal cannot be opened, read or written; names the database URL (without its password)."""


class JournalMissing(DatabaseError):
    """There is no journal where one is only read: the keeper has not run with it."""


class DamagedRow(Exception):
    """A journal row that does not hold what the keeper writes (the file edited by hand, or damaged). Raised inside
    `KeeperDB.session`, which turns it into a DatabaseError naming the journal."""

    def __init__(self, table: str, row_id: object, what: str) -> None:
        super().__init__(f"row {row_id} of table {table} is damaged: {what}")


def one_line(error: SQLAlchemyError) -> str:
    """`error` without SQLAlchemy's [SQL: ...], [parameters: ...] and "Background on this error at" lines, its
    driver's own lines joined: every journal error is one line."""
    return " ".join(error._message().split())  # str() is _message() with those lines appended


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


JOURNAL_BACKENDS = ("sqlite", "postgresql")  # the databases the journal is tested on, whose drivers it ships


def checked_database_url(url: str) -> str:
    """`url` when it is a SQLAlchemy URL of a journal backend; ValueError saying what it is not."""
    try:
        backend = make_url(url).get_backend_name()
    except (ArgumentError, ValueError):
        raise ValueError("not a database URL (e.g. sqlite:////var/lib/vaultbot/keeper.sqlite or "
                         "postgresql+psycopg://user@host/db)") from None
    if backend not in JOURNAL_BACKENDS:
        raise ValueError(f"a {backend} database; the journal runs on {' or '.join(JOURNAL_BACKENDS)}")
    return url


class KeeperDB:
    """Opens the journal at `url`; each method is one committed unit of work.

    `create`: a journal that is not there is made (the SQLite file and its directory, the tables), as the keeper
    needs; without it, what only reads the journal gets a `DatabaseError` naming it and nothing is made. Either
    way a journal from an older version gets the tables and columns a newer one brought.
    """

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = url
        try:
            self.shown_url = redact(make_url(url).render_as_string(hide_password=True))  # for messages: no secret
        except ArgumentError:
            raise DatabaseError(f"cannot open the keeper database {redact(url)!r}: not a database URL") from None
        file = _sqlite_file(url)
        try:
            if file is not None and file.exists() and not file.is_file():  # /dev/null, a directory: SQLite fails late
                raise OSError(f"{file} is not a regular file")
            if not create and file is not None and not file.is_file():  # before connecting, which would make it
                raise self._not_there("no such file")
            self.engine = _engine(url)
            if not create and not inspect(self.engine).has_table(Cycle.__tablename__):
                self.engine.dispose()
                raise self._not_there("the database holds no keeper tables")
            Base.metadata.create_all(self.engine)
            _add_new_columns(self.engine)
        except SQLAlchemyError as error:
            raise DatabaseError(f"cannot open the keeper database {self.shown_url}: {one_line(error)}") from error
        except (ImportError, OSError) as error:  # no driver for the URL; a SQLite file or directory that cannot be
            raise DatabaseError(f"cannot open the keeper database {self.shown_url}: {error}") from None
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def _not_there(self, why: str) -> JournalMissing:
        return JournalMissing(f"no keeper journal at {self.shown_url}: {why}, the keeper has not run with it")

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed on success, rolled back on error."""
        with self._sessions() as session:
            try:
                yield session
                session.commit()
            except SQLAlchemyError as error:
                session.rollback()
                raise DatabaseError(f"keeper database {self.shown_url}: {one_line(error)}") from error
            except DamagedRow as damaged:
                session.rollback()
                raise DatabaseError(f"keeper database {self.shown_url}: {damaged}") from None
            except (ValueError, LookupError, TypeError) as error:
                # a stored value its column's type cannot read (SQLAlchemy raises these bare, naming no row): which
                session.rollback()
                found = _undecodable_row(self.engine)
                if found is None:
                    raise
                raise DatabaseError(f"keeper database {self.shown_url}: {found}") from error
            except BaseException:
                session.rollback()
                raise

    # -- cycles ------------------------------------------------------------------------------------------

    def start_cycle(self, *, dry_run: bool) -> int:
        with self.session() as session:
            cycle = Cycle(dry_run=dry_run, started=utc_now())
            session.add(cycle)
            session.flush()
            return cycle.id

    def update_cycle(self, cycle_id: int, **fields: Any) -> None:
        """Sets chain facts (block_number, chain_time, total_assets, share_price) on a running cycle."""
        with self.session() as session:
            cycle = session.get_one(Cycle, cycle_id)
            for name, value in fields.items():
                setattr(cycle, name, value)

    def finish_cycle(self, cycle_id: int, status: CycleStatus, reason: str | None = None) -> None:
        with self.session() as session:
            cycle = session.get_one(Cycle, cycle_id)
            cycle.status, cycle.reason, cycle.finished = status, reason, utc_now()

    def recent_cycles(self, limit: int = 10) -> list[Cycle]:
        with self.session() as session:
            return list(session.scalars(select(Cycle).order_by(Cycle.id.desc()).limit(limit)))

    def last_share_price(self, before_cycle: int) -> Cycle | None:
        """The latest earlier cycle that read the share price (for the realised yield)."""
        with self.session() as session:
            query = (select(Cycle).where(Cycle.id < before_cycle, Cycle.share_price.is_not(None))
                     .order_by(Cycle.id.desc()).limit(1))
            return session.scalars(query).first()

    # -- decisions ---------------------------------------------------------------------------------------

    def record_decision(self, cycle_id: int, **fields: Any) -> int:
        with self.session() as session:
            decision = Decision(cycle_id=cycle_id, created=utc_now(), **fields)
            session.add(decision)
            session.flush()
            return decision.id

    def last_decision(self) -> Decision | None:
        with self.session() as session:
            return session.scalars(select(Decision).order_by(Decision.id.desc()).limit(1)).first()

    def repeat_decision(self, decision_id: int, cycle_id: int) -> int:
        """Decision `decision_id` journaled again for `cycle_id`, which carries it out (an approved proposal):
        the same record and hash."""
        with self.session() as session:
            original = session.get_one(Decision, decision_id)
            repeated = Decision(
                cycle_id=cycle_id, created=utc_now(), inputs_hash=original.inputs_hash,
                model_hash=original.model_hash, predictions=original.predictions, targets=original.targets,
                allocation_status=original.allocation_status, expected_gain=original.expected_gain,
                decision_hash=original.decision_hash, record=original.record,
            )
            session.add(repeated)
            session.flush()
            return repeated.id

    def decisions_between(self, start: datetime | None, end: datetime | None) -> list[Decision]:
        """The decisions journaled at `start` or later and before `end` (None: unbounded), oldest first."""
        query = select(Decision).order_by(Decision.id)
        if start is not None:
            query = query.where(Decision.created >= start)
        if end is not None:
            query = query.where(Decision.created < end)
        with self.session() as session:
            return list(session.scalars(query))

    def decisions_with_hash(self, decision_hash: str) -> list[Decision]:
        with self.session() as session:
            query = select(Decision).where(Decision.decision_hash == decision_hash.lower()).order_by(Decision.id)
            return list(session.scalars(query))

    # -- transactions ------------------------------------------------------------------------------------

    def record_signed(self, decision_id: int, *, sender: str, nonce: int, tx_hash: str, raw_tx: str,
                      max_fee_per_gas: int, max_priority_fee_per_gas: int, gas_limit: int, chain_id: int,
                      genesis_hash: str, built_on_block: int, built_on_hash: str, function: str = "rebalance") -> None:
        """Stores a signed transaction and the chain it was built on; called before it is broadcast."""
        with self.session() as session:
            session.add(Transaction(
                decision_id=decision_id, sender=sender, nonce=nonce, tx_hash=tx_hash.lower(), raw_tx=raw_tx,
                max_fee_per_gas=max_fee_per_gas, max_priority_fee_per_gas=max_priority_fee_per_gas,
                gas_limit=gas_limit, function=function, chain_id=chain_id, genesis_hash=genesis_hash.lower(),
                built_on_block=built_on_block, built_on_hash=built_on_hash.lower(), status=TxStatus.SIGNED,
                created=utc_now(), updated=utc_now(),
            ))

    def mark_sent(self, tx_hash: str) -> None:
        with self.session() as session:
            tx = _tx(session, tx_hash)
            if tx.status == TxStatus.SIGNED:
                tx.status = TxStatus.SENT

    def record_receipt(self, receipt: Mapping[str, Any]) -> Transaction:
        """Marks the mined transaction mined or failed, and every other pending one of its nonce replaced."""
        tx_hash = to_hex(receipt["transactionHash"])
        with self.session() as session:
            tx = _tx(session, tx_hash)
            tx.status = TxStatus.MINED if receipt["status"] == 1 else TxStatus.FAILED
            tx.block_number = receipt["blockNumber"]
            tx.gas_used = receipt["gasUsed"]
            tx.effective_gas_price = receipt.get("effectiveGasPrice")
            tx.receipt = _jsonable(receipt)
            # pending only: an abandoned or settled one of the same nonce (an earlier chain's) keeps its status
            siblings = select(Transaction).where(Transaction.sender == tx.sender, Transaction.nonce == tx.nonce,
                                                 Transaction.id != tx.id, Transaction.status.in_(_PENDING))
            for sibling in session.scalars(siblings):
                sibling.status = TxStatus.REPLACED
            return tx

    def mark_failed(self, tx_hash: str, error: str) -> None:
        with self.session() as session:
            tx = _tx(session, tx_hash)
            tx.status, tx.error = TxStatus.FAILED, error

    def mark_abandoned(self, tx_hash: str, reason: str) -> None:
        with self.session() as session:
            tx = _tx(session, tx_hash)
            tx.status, tx.error = TxStatus.ABANDONED, reason

    def pending_transactions(self) -> list[Transaction]:
        """Signed or sent transactions, oldest first: a restart must resume these, never sign anew."""
        with self.session() as session:
            query = (select(Transaction).where(Transaction.status.in_(_PENDING))
                     .order_by(Transaction.id))
            return list(session.scalars(query))

    def transaction(self, tx_hash: str) -> Transaction | None:
        with self.session() as session:
            query = select(Transaction).where(Transaction.tx_hash == tx_hash.lower())
            return session.scalars(query).first()

    def decision_of(self, tx: Transaction) -> Decision:
        with self.session() as session:
            return session.get_one(Decision, tx.decision_id)

    # -- proposals ---------------------------------------------------------------------------------------

    def record_proposal(self, decision_id: int, proposal_id: str, deadline: int) -> None:
        with self.session() as session:
            decision_hash = session.get_one(Decision, decision_id).decision_hash
            session.add(ProposalRecord(proposal_id=proposal_id.lower(), decision_id=decision_id,
                                       decision_hash=decision_hash, deadline=deadline,
                                       status=ProposalStatus.WAITING, created=utc_now()))

    def waiting_proposals(self) -> list[ProposalRecord]:
        """The keeper's proposals not yet executed, expired or rejected, oldest first."""
        with self.session() as session:
            query = (select(ProposalRecord).where(ProposalRecord.status == ProposalStatus.WAITING)
                     .order_by(ProposalRecord.id))
            return list(session.scalars(query))

    def close_proposal(self, proposal_id: str, status: ProposalStatus) -> None:
        with self.session() as session:
            query = select(ProposalRecord).where(ProposalRecord.proposal_id == proposal_id.lower())
            proposal = session.scalars(query).one()
            proposal.status, proposal.closed = status, utc_now()

    def proposal(self, proposal_id: str) -> ProposalRecord | None:
        with self.session() as session:
            query = select(ProposalRecord).where(ProposalRecord.proposal_id == proposal_id.lower())
            return session.scalars(query).first()

    def gas_spent_wei(self) -> int:
        with self.session() as session:
            mined = select(Transaction).where(Transaction.gas_used.is_not(None))
            return sum(tx.fee_paid or 0 for tx in session.scalars(mined))


_PENDING = [status for status in TxStatus if status.pending]


def _add_new_columns(engine: Engine) -> None:
    """The columns of the model a journal written by an older version lacks, added (nullable, no default)."""
    with engine.begin() as connection:
        existing = inspect(connection)
        for table in Base.metadata.sorted_tables:
            have = {column["name"] for column in existing.get_columns(table.name)}
            for column in table.columns:
                if column.name not in have:
                    kind = column.type.compile(dialect=engine.dialect)
                    connection.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))


def _sqlite_file(url: str) -> Path | None:
    """The file of a SQLite journal (None: another database, or SQLite in memory): the one kind of journal that
    connecting creates."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _engine(url: str) -> Engine:
    parsed, file = make_url(url), _sqlite_file(url)
    if file is not None:
        _make_directory(file.parent)
    # a server may drop idle connections (restart, idle_session_timeout): test each one before a unit of work
    engine = create_engine(url, pool_pre_ping=True)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _make_directory(directory: Path) -> None:
    """`directory` and its parents made; OSError saying why not (an ancestor that is a file, no permission)."""
    for ancestor in (directory, *directory.parents):  # mkdir would say "File exists" of a file in the way
        if ancestor.exists():
            if not ancestor.is_dir():
                raise OSError(f"{ancestor} is not a directory")
            break
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OSError(f"cannot create the directory {directory}: {error.strerror or error}") from None


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    # WAL lets `vaultbot keeper status` read while the service writes; FULL sync makes a commit durable.
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


# -- reading rows back: a journal edited by hand or damaged is named, row and column, never a traceback ------------

def _expected(column: Column[Any]) -> tuple[tuple[type, ...], str]:
    """The Python types a column's values read as, and how a message names them."""
    kind = column.type
    if isinstance(kind, UtcDateTime):
        return (datetime,), "a timestamp"
    if isinstance(kind, Enum):  # before String, which it is
        return (kind.enum_class or str,), "one of " + ", ".join(kind.enums)
    if isinstance(kind, JSON):
        return (dict,), "a JSON object"
    if isinstance(kind, StrictBoolean):
        return (bool,), "a boolean"
    if isinstance(kind, Integer):
        return (int,), "an integer"
    if isinstance(kind, Float):
        return (int, float), "a number"
    return (str,), "text"


def _targets_problem(targets: Mapping[str, Any]) -> str | None:
    for market, target in targets.items():
        if not Web3.is_address(market):
            return f"the market {_shown(market)} is not an address"
        if isinstance(target, bool) or not isinstance(target, int) or target < 0:
            return f"the target of {market} is {_shown(target)}, not a whole amount"
    return None


# what the readers take from a JSON column beyond its being an object
_SHAPES: dict[str, Callable[[Any], str | None]] = {"decisions.predictions": forecasts_problem,
                                                  "decisions.targets": _targets_problem}


def _shown(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _value_problem(column: Column[Any], value: Any) -> str | None:
    """What is wrong with `value`, read from `column` (None: nothing)."""
    if value is None:
        return None if column.nullable else f"{column.name} is empty (NULL)"
    types, noun = _expected(column)
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        return f"{column.name} holds {_shown(value)}, not {noun}"
    if isinstance(value, float) and not math.isfinite(value):  # SQLite reads '1e999' as inf; the keeper writes none
        return f"{column.name} holds {value}, not a finite number"
    shape = _SHAPES.get(f"{column.table.name}.{column.name}")
    problem = None if shape is None else shape(value)
    return None if problem is None else f"{column.name}: {problem}"


@event.listens_for(Base, "load", propagate=True)
def _check_loaded(row: Base, _context: Any) -> None:
    """Every row the ORM reads is checked before a reader sees it (values its column's type could not read fail
    before this: `_undecodable_row`)."""
    state = inspect(row)
    for attribute in state.mapper.column_attrs:
        if attribute.key in state.dict:  # a column the query did not load is not checked
            [column] = attribute.columns
            problem = _value_problem(column, state.dict[attribute.key])  # type: ignore[arg-type]
            if problem is not None:
                raise DamagedRow(row.__tablename__, state.dict.get("id"), problem)


def _undecodable_row(engine: Engine) -> DamagedRow | None:
    """The first row, in any table, with a stored value its column's type cannot read (a `started` that is no
    timestamp, a `predictions` that is no JSON, a `status` no status) or reads as what `_check_loaded` refuses.
    Read raw, as the driver gives it; only on a failure, so it costs nothing otherwise. None: none found."""
    dialect = engine.dialect
    quote = dialect.identifier_preparer.quote
    try:
        with engine.connect() as connection:
            for table in Base.metadata.sorted_tables:
                columns = list(table.columns)
                readers = [column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns]
                names = ", ".join(quote(column.name) for column in columns)
                for raw in connection.exec_driver_sql(f"SELECT {names} FROM {quote(table.name)} ORDER BY id"):
                    for column, reader, stored in zip(columns, readers, raw, strict=True):
                        try:
                            value = stored if reader is None or stored is None else reader(stored)
                        except (ValueError, LookupError, TypeError):
                            _, noun = _expected(column)
                            return DamagedRow(table.name, raw[0], f"{column.name} holds {_shown(stored)}, not {noun}")
                        problem = _value_problem(column, value)
                        if problem is not None:
                            return DamagedRow(table.name, raw[0], problem)
    except SQLAlchemyError:
        return None  # the original error says more than a failed search for its row
    return None


def _tx(session: Session, tx_hash: str) -> Transaction:
    tx = session.scalars(select(Transaction).where(Transaction.tx_hash == tx_hash.lower())).first()
    if tx is None:
        raise DatabaseError(f"no transaction {tx_hash} in the keeper database")
    return tx


def to_hex(value: Any) -> str:
    """bytes, HexBytes or a hex string as lowercase 0x hex."""
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    text = str(value).lower()
    return text if text.startswith("0x") else "0x" + text


def _jsonable(value: Any) -> Any:
    """A receipt as plain JSON: bytes as 0x hex, nested attribute dicts as objects."""
    if isinstance(value, (bytes, bytearray)):
        return to_hex(value)
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    return value

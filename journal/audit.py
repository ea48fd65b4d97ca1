"""Audit a rebalance transaction against the keeper's journal (`vaultbot keeper verify TX`).

Checks, each reported: the transaction was mined and succeeded; it emitted exactly one `Rebalanced` from the
vault; the journal holds a decision with that hash whose stored record is canonical and hashes to it
(`strategy.decision_record.verify`); the record names this vault and chain; and each `MarketAllocated` moved its
market to the record's target (up to `TARGET_TOLERANCE` base units of ERC-4626 rounding).

The report ends in one verdict line. Only `MISMATCH` says the chain and the journal disagree (a record that
does not hash to the on-chain hash, or one the transaction did not carry out); a hash that names no
transaction, a decision hash given for a transaction hash, a transaction that is not a rebalance, one not mined
yet or reverted, and a decision another journal holds each get a verdict of their own.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from eth_typing import HexStr
from sqlalchemy import select
from web3 import Web3
from web3.exceptions import TransactionNotFound
from web3.types import TxReceipt

from chain.events import emitted
from chain.vault_reader import VaultReader, VaultSnapshot
from journal.db import Decision, KeeperDB, Transaction, TxStatus, to_hex
from strategy.decision_record import DecisionError, is_hash, verify
from strategy.units import format_units

# ERC-4626 conversions round down on the way in and out of a market: a position lands a unit or two off.
TARGET_TOLERANCE = 2


class NotAHash(ValueError):
    """The text given for a transaction hash is not one (0x + 64 hex digits)."""


def transaction_hash(text: str) -> HexStr:
    """`text` as a lowercase 0x hash, or `NotAHash` saying what is wrong with it."""
    cleaned = text.strip().lower()
    if is_hash(cleaned):
        return HexStr(cleaned)
    digits = cleaned.removeprefix("0x")
    if not cleaned.startswith("0x"):
        wrong = "it does not start with 0x"
    elif not re.fullmatch(r"[0-9a-f]*", digits):
        wrong = "it holds characters that are not hex digits"
    else:
        wrong = f"it has {len(digits)} hex digits"
    raise NotAHash(f"not a transaction hash (0x + 64 hex digits, 32 bytes): {wrong}")


class AuditVerdict(StrEnum):
    OK = "OK"
    NOT_FOUND = "NOT FOUND"
    NOT_MINED = "NOT MINED YET"
    DECISION_HASH = "NOT A TRANSACTION HASH"
    REVERTED = "REVERTED"
    NOT_A_REBALANCE = "NOT A REBALANCE"
    NOT_IN_JOURNAL = "NOT IN THIS JOURNAL"
    MISMATCH = "MISMATCH"


@dataclass(frozen=True)
class Labels:
    """How the vault's amounts and markets are written for people: asset units, markets by name."""

    decimals: int
    symbol: str
    names: Mapping[str, str]  # checksum address -> the market's name

    @classmethod
    def of(cls, reader: VaultReader, snapshot: VaultSnapshot) -> "Labels":
        return cls(snapshot.asset_decimals, reader.asset.functions.symbol().call(),
                   {market.address: market.name for market in snapshot.markets})

    def assets(self, amount: int) -> str:
        return format_units(amount, self.decimals, self.symbol)

    def name(self, market: str) -> str:
        """The market's name, or its address for one the vault no longer lists."""
        return self.names.get(Web3.to_checksum_address(market), Web3.to_checksum_address(market))


@dataclass
class AuditReport:
    tx_hash: HexStr
    verdict: AuditVerdict = AuditVerdict.OK
    why: str = "the on-chain decision hash matches the journal's record"
    facts: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.verdict == AuditVerdict.OK

    def fact(self, text: str) -> None:
        self.facts.append(text)

    def problem(self, text: str) -> None:
        self.problems.append(text)
        self.conclude(AuditVerdict.MISMATCH, "the chain and the journal's record disagree (see the problems above)")

    def conclude(self, verdict: AuditVerdict, why: str) -> "AuditReport":
        self.verdict, self.why = verdict, why
        return self

    def lines(self) -> list[str]:
        """Hashes whole (never cut, so they can be copied), then the one verdict line."""
        return [f"transaction {self.tx_hash}", *(f"  {f}" for f in self.facts),
                *(f"  problem: {p}" for p in self.problems), f"{self.verdict}: {self.why}"]


def verify_transaction(db: KeeperDB, reader: VaultReader, tx_hash: str) -> AuditReport:
    """The audit of `tx_hash` (`NotAHash` unless it is 0x + 64 hex digits)."""
    w3, vault = reader.w3, reader.contract
    report = AuditReport(transaction_hash(tx_hash))
    try:
        receipt = w3.eth.get_transaction_receipt(report.tx_hash)
    except TransactionNotFound:
        return _not_mined(db, w3, report)
    if receipt["status"] != 1:
        return report.conclude(AuditVerdict.REVERTED,
                               f"it failed in block {receipt['blockNumber']} and changed nothing")
    rebalanced = emitted(vault, "Rebalanced", receipt)
    if not rebalanced:
        return report.conclude(AuditVerdict.NOT_A_REBALANCE, f"{_what_it_did(reader, report.tx_hash)}; it emitted no "
                                                        "Rebalanced, so there is no decision to check")
    if len(rebalanced) > 1:
        report.problem(f"expected one Rebalanced event from vault {vault.address}, found {len(rebalanced)}")
        return report
    on_chain = to_hex(rebalanced[0]["args"]["decision_hash"])
    report.fact(f"block {receipt['blockNumber']}: Rebalanced with decision hash {on_chain}")

    decisions = db.decisions_with_hash(on_chain)
    if not decisions:
        return report.conclude(AuditVerdict.NOT_IN_JOURNAL, f"the journal {db.shown_url} has no decision with hash "
                                                       f"{on_chain}: check it against the journal of the keeper "
                                                       "that sent it (--config)")
    decision = decisions[-1]
    try:
        record = verify(decision.record, on_chain)
    except DecisionError as error:
        report.problem(f"stored record of decision {decision.id}: {error}")
        return report.conclude(AuditVerdict.MISMATCH, f"the journal's record of decision {decision.id} does not hash "
                               "to the on-chain decision hash: it was changed after it was sent")
    report.fact(f"journal decision {decision.id} (cycle {decision.cycle_id}): stored record hashes to it")
    if record["vault"] != vault.address.lower() or record["chain_id"] != w3.eth.chain_id:
        report.problem(f"the record is for vault {record['vault']} on chain {record['chain_id']}, "
                       f"the transaction for {vault.address.lower()} on chain {w3.eth.chain_id}")
    _compare_targets(report, record["targets"], reader, receipt)
    return report


def _not_mined(db: KeeperDB, w3: Web3, report: AuditReport) -> AuditReport:
    """No receipt: a transaction still waiting, a decision hash given instead, or nothing at all."""
    try:
        w3.eth.get_transaction(report.tx_hash)
        return report.conclude(AuditVerdict.NOT_MINED,
                               "the node knows it, but it is in no block yet; verify it once it is mined")
    except TransactionNotFound:
        pass
    decisions = db.decisions_with_hash(report.tx_hash)
    if not decisions:
        return report.conclude(AuditVerdict.NOT_FOUND, f"chain {w3.eth.chain_id} has no transaction with this hash, "
                               f"and the journal {db.shown_url} no decision with it")
    decision = decisions[-1]
    sent = _sent_for(db, decisions)
    then = f"verify its transaction {sent.tx_hash} instead" if sent is not None else "no transaction was sent for it"
    return report.conclude(AuditVerdict.DECISION_HASH, f"it is the decision hash of journal decision {decision.id} "
                                                  f"(cycle {decision.cycle_id}); {then}")


def _sent_for(db: KeeperDB, decisions: list[Decision]) -> Transaction | None:
    """The transaction that carried the decision out: the mined one, else the last signed."""
    with db.session() as session:
        query = select(Transaction).where(Transaction.decision_id.in_([decision.id for decision in decisions]))
        sent = list(session.scalars(query.order_by(Transaction.id)))
    mined = [tx for tx in sent if tx.status == TxStatus.MINED]
    carried = mined or sent
    return carried[-1] if carried else None


def _what_it_did(reader: VaultReader, tx_hash: HexStr) -> str:
    """'it calls deposit on the vault', or where else it went."""
    tx = reader.w3.eth.get_transaction(tx_hash)
    vault = reader.contract
    if tx["to"] is None or Web3.to_checksum_address(tx["to"]) != vault.address:
        return f"it was sent to {tx['to'] or 'no address (it creates a contract)'}, not to the vault {vault.address}"
    try:
        function, _ = vault.decode_function_input(tx["input"])
    except ValueError:
        return "it calls a function the vault's ABI does not name"
    return f"it calls {function.fn_name} on the vault"


def _compare_targets(report: AuditReport, targets: dict[str, int], reader: VaultReader, receipt: TxReceipt) -> None:
    moved = {event["args"]["market"].lower(): event["args"]["assets_after"]
             for event in emitted(reader.contract, "MarketAllocated", receipt)}
    labels = Labels.of(reader, reader.snapshot())
    if set(moved) != set(targets):
        report.problem(f"markets moved {sorted(map(labels.name, moved))} differ from the record's "
                       f"{sorted(map(labels.name, targets))}")
        return
    for market, target in sorted(targets.items(), key=lambda item: labels.name(item[0])):
        after = moved[market]
        line = (f"market {labels.name(market)} ({Web3.to_checksum_address(market)}): target {labels.assets(target)}, "
                f"after {labels.assets(after)}")
        if abs(after - target) > TARGET_TOLERANCE:
            report.problem(line)
        else:
            report.fact(line)

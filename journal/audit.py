"""Audit a rebalance transaction against the keeper's journal (`vaultbot keeper verify TX`).

Checks, each reported: the transaction was mined and succeeded; it emitted exactly one `Rebalanced` from the
vault; the journal holds a decision with that hash whose stored record is canonical and hashes to it
(`strategy.decision_record.verify`); the record names this vault and chain; and each `MarketAllocated` moved its
market to the record's target (up to `TARGET_TOLERANCE` base units of ERC-4626 rounding).
"""

from dataclasses import dataclass, field

from web3 import Web3
from web3.contract import Contract
from web3.exceptions import TransactionNotFound
from web3.logs import DISCARD

from journal.db import KeeperDB, to_hex
from strategy.decision_record import DecisionError, verify

# ERC-4626 conversions round down on the way in and out of a market: a position lands a unit or two off.
TARGET_TOLERANCE = 2


@dataclass
class AuditReport:
    tx_hash: str
    ok: bool = True
    facts: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def fact(self, text: str) -> None:
        self.facts.append(text)

    def problem(self, text: str) -> None:
        self.ok = False
        self.problems.append(text)

    def lines(self) -> list[str]:
        verdict = "OK: the on-chain decision hash matches the journal's record" if self.ok else "MISMATCH"
        return [f"transaction {self.tx_hash}", *(f"  {f}" for f in self.facts),
                *(f"  problem: {p}" for p in self.problems), verdict]


def verify_transaction(db: KeeperDB, w3: Web3, vault: Contract, tx_hash: str) -> AuditReport:
    report = AuditReport(tx_hash.lower())
    try:
        receipt = w3.eth.get_transaction_receipt(tx_hash)
    except (TransactionNotFound, ValueError) as error:
        report.problem(f"no receipt on chain {w3.eth.chain_id}: {error}")
        return report
    if receipt["status"] != 1:
        report.problem(f"the transaction reverted (block {receipt['blockNumber']})")
        return report
    rebalanced = vault.events.Rebalanced().process_receipt(receipt, errors=DISCARD)
    if len(rebalanced) != 1:
        report.problem(f"expected one Rebalanced event from vault {vault.address}, found {len(rebalanced)}")
        return report
    on_chain = to_hex(rebalanced[0]["args"]["decision_hash"])
    report.fact(f"block {receipt['blockNumber']}: Rebalanced with decision hash {on_chain}")

    decisions = db.decisions_with_hash(on_chain)
    if not decisions:
        report.problem(f"the journal {db.shown_url} has no decision with hash {on_chain}")
        return report
    try:
        record = verify(decisions[-1].record, on_chain)
    except DecisionError as error:
        report.problem(f"stored record of decision {decisions[-1].id}: {error}")
        return report
    report.fact(f"journal decision {decisions[-1].id} (cycle {decisions[-1].cycle_id}): stored record hashes to it")
    if record["vault"] != vault.address.lower() or record["chain_id"] != w3.eth.chain_id:
        report.problem(f"the record is for vault {record['vault']} on chain {record['chain_id']}, "
                       f"the transaction for {vault.address.lower()} on chain {w3.eth.chain_id}")
    _compare_targets(report, record["targets"], vault, receipt)
    return report


def _compare_targets(report: AuditReport, targets: dict[str, int], vault: Contract, receipt: dict) -> None:
    moved = {event["args"]["market"].lower(): event["args"]["assets_after"]
             for event in vault.events.MarketAllocated().process_receipt(receipt, errors=DISCARD)}
    if set(moved) != set(targets):
        report.problem(f"markets moved {sorted(moved)} differ from the record's {sorted(targets)}")
        return
    for market, target in sorted(targets.items()):
        after = moved[market]
        line = f"market {Web3.to_checksum_address(market)}: target {target}, after {after}"
        if abs(after - target) > TARGET_TOLERANCE:
            report.problem(line)
        else:
            report.fact(line)

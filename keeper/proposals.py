"""Rebalances beyond the vault's daily budgets: proposed to the guardian, run by the keeper once approved.

The keeper plans within what the daily budgets leave (`chain.vault_reader` folds them into the per-rebalance
limits), yet the chain can still find a move over them: a loss the lossless mirror does not model (a market's
entry fee), a budget tightened since it was read. When the simulation of `rebalance` refuses with "vault: over
daily budget", the cycle sends `propose_rebalance` with the same allocations and decision hash instead, unless
one of its proposals is still live: the guardian decides one at a time, and nothing is proposed twice. The
guardian approves that exact id (`vaultbot vault approve ID`) before its deadline; the keeper's next cycle runs
it, under the decision it was journaled with, before it plans anything new.

A proposal is journaled (`journal.db.ProposalRecord`) when its transaction is mined, and closed once, by the
first cycle that no longer finds it live: executed (the vault emitted `Rebalanced` with its decision hash),
expired (its deadline passed), or rejected (it left the vault before its deadline; only the guardian drops one).
"""

import logging
from datetime import UTC, datetime

from web3.contract import Contract
from web3.types import TxReceipt

from chain.errors import ContractRevert
from chain.events import emitted
from chain.vault_reader import Proposal, VaultReader
from journal.db import KeeperDB, ProposalRecord, ProposalStatus, Transaction, to_hex
from strategy.guardrails import Reason

log = logging.getLogger(__name__)


def over_budget(revert: ContractRevert) -> bool:
    """A refusal, before anything was mined, for the daily budgets: the move needs the guardian."""
    return revert.receipt is None and revert.reason == Reason.OVER_DAILY_BUDGET


def live_proposals(db: KeeperDB, reader: VaultReader) -> list[Proposal]:
    """The keeper's journaled proposals still live on the vault, oldest first; each one that is not is closed in
    the journal, once."""
    waiting = db.waiting_proposals()
    if not waiting:
        return []  # nothing to look up: the vault's logs are read only while a proposal waits
    now = reader.w3.eth.get_block("latest")
    live = {proposal.id: proposal for proposal in reader.proposals(now["number"])}
    ours = []
    for record in waiting:
        if record.proposal_id in live:
            ours.append(live[record.proposal_id])
            continue
        status = _closed_as(record, reader, now["number"], now["timestamp"])
        db.close_proposal(record.proposal_id, status)
        log.warning("proposal %s (decision %s) %s", record.proposal_id, record.decision_hash, status.value,
                    extra={"decision_hash": record.decision_hash})
    return ours


def approved(proposals: list[Proposal]) -> Proposal | None:
    """The oldest proposal the guardian approved: the keeper runs it before planning anew."""
    return next((proposal for proposal in proposals if proposal.approved), None)


def record_proposed(db: KeeperDB, vault: Contract, tx: Transaction, receipt: TxReceipt) -> str:
    """Journals the proposal a mined `propose_rebalance` made; what the cycle's reason says about it."""
    [event] = emitted(vault, "RebalanceProposed", receipt)
    proposal_id, deadline = to_hex(event["args"]["id"]), event["args"]["deadline"]
    db.record_proposal(tx.decision_id, proposal_id, deadline)
    return (f"over the daily budget: proposed, waiting for the guardian: id {proposal_id}, "
            f"deadline {chain_time(deadline)}")


def waiting_text(proposal: Proposal) -> str:
    """Why the keeper does not propose again while `proposal` is live."""
    state = "approved, not yet run" if proposal.approved else "waiting for the guardian"
    return f"proposal {proposal.id} is {state} (deadline {chain_time(proposal.deadline)}): not proposed again"


def chain_time(timestamp: int) -> str:
    return f"{datetime.fromtimestamp(timestamp, UTC):%Y-%m-%d %H:%M:%S} UTC"


def _closed_as(record: ProposalRecord, reader: VaultReader, number: int, now: int) -> ProposalStatus:
    """Why a journaled proposal is no longer live on the vault (block `number`, time `now`): run, if its rebalance
    was mined since it was proposed."""
    proposed = reader.proposals_since(record.deadline, number)
    if any(event.decision_hash == record.decision_hash for event in reader.rebalance_events(proposed, number)):
        return ProposalStatus.EXECUTED
    return ProposalStatus.EXPIRED if now > record.deadline else ProposalStatus.REJECTED

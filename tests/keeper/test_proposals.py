"""Beyond the daily budgets and on quiet days, on a real anvil: the keeper proposes a move the vault finds over
its daily loss budget instead of sending it, once; runs it after the guardian approves that exact id; never runs
an expired or rejected one; and a held cycle reports the markets' values when the vault's last report is old.

Every market charges an entry fee the keeper's lossless mirror does not model, and the daily loss budget is
tightened to 1 bp: the first move into the markets loses about 2.5 bp, within the 10 bp per rebalance.
"""

import pytest
from web3 import Web3

from chain.deployment import Deployment
from chain.params import Param
from config import Config
from journal.db import CycleStatus, ProposalStatus, TxStatus
from keeper.startup import open_keeper
from tests.cli import vaultbot
from tests.keeper.keeper_world import (
    artifact_dir,
    config_file,
    config_of,
    funded,
    journal,
    keeper_config,
    keeper_table,
    llama,
    rebalanced_hashes,
    transact,
)

pytestmark = pytest.mark.anvil

FEE = 5 * 10**14  # 5 bp of every deposit (1e18 = 100 %)
DAY = 86_400

__all__ = ["artifact_dir", "funded", "keeper_config", "keeper_table", "llama"]  # fixtures


@pytest.fixture
def fee_charged(w3: Web3, funded: Deployment) -> Deployment:
    """Markets with an entry fee and a 1 bp daily loss budget (a tightening: applied at once)."""
    for market in funded.markets:
        transact(w3, funded.contract(w3, "MockMarket", market.address).functions.set_deposit_fee(FEE), funded.admin)
    transact(w3, vault_of(w3, funded).functions.submit_param(Param.DAILY_LOSS_BPS, 1), funded.admin)
    return funded


def vault_of(w3: Web3, deployment: Deployment):
    return deployment.contract(w3, "Vault", deployment.vault)


def proposed_events(w3: Web3, deployment: Deployment) -> list[dict]:
    return list(vault_of(w3, deployment).events.RebalanceProposed().get_logs(from_block=deployment.deployed_at))


def one_cycle(config: Config):
    with open_keeper(config) as keeper:
        return keeper.run_cycle()


def later(w3: Web3, seconds: int) -> None:
    w3.provider.make_request("evm_increaseTime", [seconds])
    w3.provider.make_request("evm_mine", [])


def test_over_the_daily_budget_the_keeper_proposes_once_then_runs_the_approved_proposal(
        w3: Web3, fee_charged: Deployment, keeper_config: Config) -> None:
    nonce = w3.eth.get_transaction_count(fee_charged.keeper)
    first = one_cycle(keeper_config)
    assert first.status == CycleStatus.PROPOSED and first.succeeded, first.reason
    [event] = proposed_events(w3, fee_charged)
    proposal_id = "0x" + bytes(event["args"]["id"]).hex()
    assert first.reason.startswith(f"over the daily budget: proposed, waiting for the guardian: id {proposal_id}, "
                                   "deadline ")
    assert "0x" + bytes(event["args"]["decision_hash"]).hex() == first.decision_hash
    assert rebalanced_hashes(w3, fee_charged) == [] and w3.eth.get_transaction_count(fee_charged.keeper) == nonce + 1

    second = one_cycle(keeper_config)  # the same kind of move, decided anew: not proposed again
    assert second.status == CycleStatus.SKIPPED, second.reason
    assert f"proposal {proposal_id} is waiting for the guardian" in second.reason
    assert len(proposed_events(w3, fee_charged)) == 1 and w3.eth.get_transaction_count(fee_charged.keeper) == nonce + 1

    transact(w3, vault_of(w3, fee_charged).functions.approve_rebalance(event["args"]["id"]), fee_charged.guardian)
    third = one_cycle(keeper_config)
    assert third.status == CycleStatus.REBALANCED, third.reason
    assert third.reason.startswith(f"the guardian's approved proposal {proposal_id}: transaction ")
    assert third.decision_hash == first.decision_hash
    assert rebalanced_hashes(w3, fee_charged) == [first.decision_hash]
    vault = vault_of(w3, fee_charged)
    for allocation in event["args"]["allocations"]:
        position, target = vault.functions.position(allocation["market"]).call(), allocation["assets"]
        assert abs(position - target) <= target * FEE // 10**18 + 2  # the entry fee is all it lost

    db = journal(keeper_config)
    proposing, running = db.decisions_with_hash(first.decision_hash)
    assert (proposing.cycle_id, running.cycle_id) == (first.cycle_id, third.cycle_id)
    assert running.record == proposing.record  # journaled as the decision it was
    assert db.proposal(proposal_id).status == ProposalStatus.EXECUTED
    tx = db.transaction(third.tx_hash)
    assert (tx.decision_id, tx.function, tx.status) == (running.id, "rebalance", TxStatus.MINED)
    assert db.transaction(first.tx_hash).function == "propose_rebalance"
    db.close()


def test_keeper_status_lists_the_proposal_waiting_for_the_guardian(
        w3: Web3, fee_charged: Deployment, keeper_table: dict, tmp_path) -> None:
    path = config_file(keeper_table, tmp_path)
    before = vaultbot("keeper", "status", "--config", str(path))  # before the keeper's first cycle: no journal
    assert before.exit_code == 0 and "no proposal waiting for the guardian" in before.output, before.output
    assert before.output.startswith("no keeper journal at sqlite:///") and not (tmp_path / "keeper.sqlite").exists()
    assert one_cycle(config_of(keeper_table)).status == CycleStatus.PROPOSED
    [event] = proposed_events(w3, fee_charged)
    status = vaultbot("keeper", "status", "--config", str(path))
    assert status.exit_code == 0, status.output
    assert (f"proposal beyond the daily budgets 0x{bytes(event['args']['id']).hex()}: decision "
            f"0x{bytes(event['args']['decision_hash']).hex()}, deadline ") in status.output
    assert "approved no: waiting for the guardian" in status.output and "proposed" in status.output


def test_an_approved_proposal_past_its_deadline_is_not_run_and_is_journaled_expired_once(
        w3: Web3, fee_charged: Deployment, keeper_config: Config) -> None:
    first = one_cycle(keeper_config)
    assert first.status == CycleStatus.PROPOSED, first.reason
    [event] = proposed_events(w3, fee_charged)
    transact(w3, vault_of(w3, fee_charged).functions.approve_rebalance(event["args"]["id"]), fee_charged.guardian)
    later(w3, DAY + 60)  # past the proposal's one-day deadline

    second = one_cycle(keeper_config)  # plans anew: the same move is over the refilled budget, a new proposal
    assert second.status == CycleStatus.PROPOSED and second.decision_hash != first.decision_hash, second.reason
    assert rebalanced_hashes(w3, fee_charged) == []
    db = journal(keeper_config)
    expired = db.proposal("0x" + bytes(event["args"]["id"]).hex())
    assert expired.status == ProposalStatus.EXPIRED and expired.closed is not None
    db.close()

    assert one_cycle(keeper_config).status == CycleStatus.SKIPPED  # the new one waits; nothing is proposed again
    db = journal(keeper_config)
    assert db.proposal(expired.proposal_id).closed == expired.closed  # closed once
    assert len(db.waiting_proposals()) == 1 and len(proposed_events(w3, fee_charged)) == 2
    db.close()


def test_a_rejected_proposal_is_journaled_rejected_and_the_keeper_may_propose_again(
        w3: Web3, fee_charged: Deployment, keeper_config: Config) -> None:
    assert one_cycle(keeper_config).status == CycleStatus.PROPOSED
    [event] = proposed_events(w3, fee_charged)
    transact(w3, vault_of(w3, fee_charged).functions.reject_rebalance(event["args"]["id"]), fee_charged.guardian)
    assert one_cycle(keeper_config).status == CycleStatus.PROPOSED
    db = journal(keeper_config)
    assert db.proposal("0x" + bytes(event["args"]["id"]).hex()).status == ProposalStatus.REJECTED
    db.close()
    assert rebalanced_hashes(w3, fee_charged) == []


def test_dry_run_over_the_budget_proposes_nothing(w3: Web3, fee_charged: Deployment, keeper_config: Config) -> None:
    with open_keeper(keeper_config) as keeper:
        outcome = keeper.run_cycle(dry_run=True)
    assert outcome.status == CycleStatus.DRY_RUN and "would propose it to the guardian" in outcome.reason
    assert proposed_events(w3, fee_charged) == []


# -- quiet days -----------------------------------------------------------------------------------------


@pytest.fixture
def paused(w3: Web3, funded: Deployment) -> Deployment:
    """The guardian paused the vault: every cycle holds, and only a report can move the share price."""
    transact(w3, vault_of(w3, funded).functions.pause(), funded.guardian)
    return funded


def test_a_held_cycle_reports_when_the_last_report_is_old_and_not_when_it_is_fresh(
        w3: Web3, paused: Deployment, keeper_table: dict) -> None:
    keeper_table["service"]["report_interval_s"] = 3600
    config = config_of(keeper_table)
    vault = vault_of(w3, paused)
    nonce = w3.eth.get_transaction_count(paused.keeper)
    fresh = one_cycle(config)
    assert fresh.status == CycleStatus.HELD and fresh.tx_hash is None, fresh.reason
    assert w3.eth.get_transaction_count(paused.keeper) == nonce

    later(w3, 2 * 3600)
    due = one_cycle(config)
    assert due.status == CycleStatus.HELD and "; reported the markets' values: transaction 0x" in due.reason
    receipt = w3.eth.get_transaction_receipt(due.tx_hash)
    assert vault.functions.last_report().call() == w3.eth.get_block(receipt["blockNumber"])["timestamp"]
    db = journal(config)
    tx = db.transaction(due.tx_hash)
    assert (tx.function, tx.status) == ("report", TxStatus.MINED)
    assert db.recent_cycles(1)[0].reason == due.reason
    db.close()

    assert one_cycle(config).tx_hash is None  # reported just now
    assert w3.eth.get_transaction_count(paused.keeper) == nonce + 1


def test_a_report_over_the_daily_loss_budget_is_journaled_as_refused(
        w3: Web3, funded: Deployment, keeper_table: dict) -> None:
    vault, market = vault_of(w3, funded), funded.markets[0].address
    transact(w3, vault.functions.rebalance([(market, 50_000 * 10**6)], b"\x01" * 32), funded.keeper)
    transact(w3, vault.functions.pause(), funded.guardian)
    # a tenth of 50,000 lost: about 17 bp of the vault, more than the 10 bp daily loss budget
    transact(w3, funded.contract(w3, "MockMarket", market).functions.inject_loss(1_000), funded.admin)
    keeper_table["service"]["report_interval_s"] = 3600
    later(w3, 2 * 3600)
    nonce = w3.eth.get_transaction_count(funded.keeper)
    outcome = one_cycle(config_of(keeper_table))
    assert outcome.status == CycleStatus.REVERTED and outcome.failure_kind == "revert"
    assert "the report of the markets' values (the last one" in outcome.reason
    assert outcome.reason.endswith("was refused: vault: over daily budget")
    assert w3.eth.get_transaction_count(funded.keeper) == nonce  # refused at estimation: nothing sent
    db = journal(config_of(keeper_table))
    assert db.recent_cycles(1)[0].reason == outcome.reason and db.pending_transactions() == []
    db.close()

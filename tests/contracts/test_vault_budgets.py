"""Rolling daily budgets and the keeper's proposals beyond them.

Beyond the day's loss or turnover budget, a rebalance runs only as the exact move the keeper proposed and the
guardian approved before the proposal's deadline, and only once. The `invested` world (1M, 300k in market 0,
200k in market 1) with the daily turnover budget tightened to 10 % of the vault.
"""

import boa
import pytest
from eth_abi import encode
from eth_utils import keccak

from tests.contracts.world import DAY, USDC, Param, apply_param, events, positions, rebalance

K = 1_000 * USDC
FRACTION = 10**18
DECISION = b"\x07" * 32
OTHER_DECISION = b"\x08" * 32


@pytest.fixture
def budgeted(invested):
    apply_param(invested.vault, invested.accounts.admin, Param.DAILY_TURNOVER_BPS, 1_000)  # a tightening: at once
    # the fixture's 500k spent half the vault's turnover; it fades at the new 10 % a day
    assert invested.vault.budgets()[1] == 0
    boa.env.time_travel(seconds=5 * DAY)
    return invested


def allocations(world, market0: int, market2: int = 0) -> list[tuple[str, int]]:
    return [(world.markets[0].address, market0), (world.markets[2].address, market2)]


def run(world, allocation: list[tuple[str, int]], decision: bytes = DECISION) -> None:
    with boa.env.prank(world.accounts.keeper):
        world.vault.rebalance(allocation, decision)


def propose(world, allocation: list[tuple[str, int]], decision: bytes = DECISION) -> bytes:
    with boa.env.prank(world.accounts.keeper):
        return world.vault.propose_rebalance(allocation, decision)


def approve(world, proposal: bytes) -> None:
    with boa.env.prank(world.accounts.guardian):
        world.vault.approve_rebalance(proposal)


OVER = (150 * K, 0)  # 150k out of market 0: 15 % of the vault, over the 10 % a day


def test_budgets_are_spent_and_refill_over_a_day(budgeted):
    vault = budgeted.vault
    loss_size, turnover_size = vault.daily_loss_bps() * FRACTION // 10_000, FRACTION // 10
    assert vault.budgets() == (loss_size, turnover_size)
    run(budgeted, allocations(budgeted, 250 * K))  # 50k: 5 %
    assert vault.budgets() == (loss_size, turnover_size // 2)
    boa.env.time_travel(seconds=DAY // 4)
    assert vault.budgets()[1] == turnover_size // 2 + turnover_size // 4
    boa.env.time_travel(seconds=DAY)
    assert vault.budgets() == (loss_size, turnover_size)  # full, never more


def test_over_budget_rebalance_reverts(budgeted):
    with boa.reverts("vault: over daily budget"):
        run(budgeted, allocations(budgeted, *OVER))
    run(budgeted, allocations(budgeted, 200 * K))  # 100k: exactly the budget


def test_proposal_id_is_the_hash_of_the_exact_move(budgeted):
    allocation = allocations(budgeted, *OVER)
    expected = keccak(encode(["(address,uint256)[]", "bytes32"], [allocation, DECISION]))
    assert budgeted.vault.proposal_id(allocation, DECISION) == expected
    assert propose(budgeted, allocation) == expected
    (proposed,) = events(budgeted.vault, "RebalanceProposed")
    deadline = boa.env.timestamp + budgeted.vault.PROPOSAL_TTL()
    assert (proposed.id, proposed.decision_hash, proposed.deadline) == (expected, DECISION, deadline)
    assert [tuple(a) for a in proposed.allocations] == allocation
    assert tuple(budgeted.vault.proposals(expected)) == (deadline, False)


def test_a_proposal_approved_in_time_runs_once(budgeted):
    vault, m = budgeted.vault, budgeted.markets
    allocation = allocations(budgeted, *OVER)
    proposal = propose(budgeted, allocation)
    with boa.reverts("vault: over daily budget"):  # proposed is not approved
        run(budgeted, allocation)
    boa.env.time_travel(seconds=vault.PROPOSAL_TTL() // 2)
    approve(budgeted, proposal)
    assert events(vault, "RebalanceApproved")[0].id == proposal
    run(budgeted, allocation)
    assert positions(budgeted) == [150 * K, 200 * K, 0]
    assert tuple(vault.proposals(proposal)) == (0, False)
    boa.env.time_travel(seconds=vault.min_rebalance_interval())
    with boa.reverts("vault: over daily budget"):  # used up
        run(budgeted, allocations(budgeted, 300 * K))
    assert m[0].balanceOf(vault.address) == m[0].convertToShares(150 * K)


def test_an_expired_proposal_does_not_run(budgeted):
    vault = budgeted.vault
    allocation = allocations(budgeted, *OVER)
    proposal = propose(budgeted, allocation)
    approve(budgeted, proposal)
    boa.env.time_travel(seconds=vault.PROPOSAL_TTL() + 1)
    with boa.reverts("vault: over daily budget"):
        run(budgeted, allocation)
    late = propose(budgeted, allocations(budgeted, 140 * K))
    boa.env.time_travel(seconds=vault.PROPOSAL_TTL() + 1)
    with boa.env.prank(budgeted.accounts.guardian), boa.reverts("vault: no live proposal"):
        vault.approve_rebalance(late)


def test_a_rejected_proposal_does_not_run(budgeted):
    vault = budgeted.vault
    allocation = allocations(budgeted, *OVER)
    proposal = propose(budgeted, allocation)
    approve(budgeted, proposal)
    with boa.env.prank(budgeted.accounts.guardian):
        vault.reject_rebalance(proposal)
        assert events(vault, "RebalanceRejected")[0].id == proposal
        with boa.reverts("vault: no live proposal"):
            vault.approve_rebalance(proposal)
        with boa.reverts("vault: no live proposal"):
            vault.reject_rebalance(proposal)
    with boa.reverts("vault: over daily budget"):
        run(budgeted, allocation)


def test_an_approval_covers_only_the_exact_allocations_and_decision(budgeted):
    allocation = allocations(budgeted, *OVER)
    approve(budgeted, propose(budgeted, allocation))
    with boa.reverts("vault: over daily budget"):
        run(budgeted, allocations(budgeted, 140 * K))  # a different move
    with boa.reverts("vault: over daily budget"):
        run(budgeted, allocations(budgeted, 150 * K, 1))  # one wei more elsewhere
    with boa.reverts("vault: over daily budget"):
        run(budgeted, allocation, OTHER_DECISION)  # the same move for another decision
    run(budgeted, allocation)


def test_the_keepers_report_spends_the_loss_budget_the_guardians_does_not(invested):
    vault, accounts, m0 = invested.vault, invested.accounts, invested.markets[0]
    with boa.env.prank(accounts.operator):
        m0.inject_loss(50)  # 1.5k: 15 bps of the vault
    with boa.env.anchor():
        with boa.env.prank(accounts.keeper):
            vault.report()  # within the 30 bps a day
        assert vault.budgets()[0] == pytest.approx(15 * FRACTION // 10_000, rel=1e-3)
    with boa.env.prank(accounts.operator):
        m0.inject_loss(100)  # another ~3k: 45 bps in all
    with boa.env.prank(accounts.keeper), boa.reverts("vault: over daily budget"):
        vault.report()
    before = vault.budgets()
    with boa.env.prank(accounts.guardian):
        vault.report()
    assert vault.budgets() == before
    assert vault.totalAssets() == pytest.approx(1_000 * K - 4_485 * USDC, abs=2)

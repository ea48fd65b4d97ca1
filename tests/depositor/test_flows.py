"""Plans and their execution on the devnet: preview vs simulation, a revert that slips past the checks,
and the guard checked again after an approval. (Chain modules are imported in the tests, as everywhere in
this package, so a missing one fails its tests, not the whole collection.)"""

from typing import TYPE_CHECKING

import pytest

from depositor.errors import Refusal
from tests.depositor.conftest import (
    SHARE,
    USDC,
    deposit_directly,
    lock_in_markets,
    token,
    transact,
    vault_contract,
)

if TYPE_CHECKING:
    from web3 import Web3

    from chain.deployment import Deployment
    from depositor.vault import DepositorVault

pytestmark = pytest.mark.anvil


def test_a_plan_needing_approval_previews_then_simulates_once_approved(
        depositor_vault: "DepositorVault", w3: "Web3", devnet: "Deployment", chain_snapshot: None) -> None:
    from depositor.flows import plan_action

    account = devnet.depositors[0]
    before = plan_action(depositor_vault, "deposit", account, 100 * USDC)
    assert [s.label.split()[0] for s in before.steps] == ["approve", "deposit"]
    assert (before.simulated, before.outcome, before.guard.bound) == (False, 100 * SHARE, 100 * SHARE * 9_950 // 10_000)
    transact(w3, token(w3, devnet).functions.approve(devnet.vault, 100 * USDC), account)
    after = plan_action(depositor_vault, "deposit", account, 100 * USDC, guard_bound=before.guard.bound)
    assert [s.label.split()[0] for s in after.steps] == ["deposit"]
    assert (after.simulated, after.outcome, after.guard) == (True, 100 * SHARE, before.guard)


def test_a_revert_after_the_checks_is_decoded(depositor_vault: "DepositorVault", w3: "Web3", devnet: "Deployment",
                                              chain_snapshot: None) -> None:
    from depositor.accounts import UnlockedSender
    from depositor.flows import execute, plan_action

    account = devnet.depositors[0]
    transact(w3, token(w3, devnet).functions.approve(devnet.vault, 100 * USDC), account)
    plan = plan_action(depositor_vault, "deposit", account, 100 * USDC)
    transact(w3, vault_contract(w3, devnet).functions.pause(), devnet.guardian)  # between check and send
    with pytest.raises(Refusal, match=r"^the vault is paused: .*\[vault: paused\]$"):
        execute(depositor_vault, plan, UnlockedSender(w3, account))
    assert vault_contract(w3, devnet).functions.balanceOf(account).call() == 0


def test_the_guard_is_checked_again_after_the_approval(
        depositor_vault: "DepositorVault", w3: "Web3", devnet: "Deployment", chain_snapshot: None) -> None:
    from depositor.accounts import UnlockedSender
    from depositor.flows import execute, plan_action

    account, other = devnet.depositors[0], devnet.depositors[1]
    deposit_directly(w3, devnet, other, 1_000 * USDC)
    plan = plan_action(depositor_vault, "deposit", account, 100 * USDC)
    assert len(plan.steps) == 2

    def price_jumps(step: object, receipt: object) -> None:  # a 10 % donation lands right after the approval
        transact(w3, token(w3, devnet).functions.transfer(devnet.vault, 100 * USDC), other)

    with pytest.raises(Refusal, match=r"^price moved past the guard: the deposit would mint 90\.9"):
        execute(depositor_vault, plan, UnlockedSender(w3, account), on_mined=price_jumps)
    assert token(w3, devnet).functions.allowance(account, devnet.vault).call() == 100 * USDC, "approval went through"
    assert vault_contract(w3, devnet).functions.balanceOf(account).call() == 0, "the deposit was not sent"


def test_withdrawing_max_redeems_every_share_only_when_the_whole_position_is_liquid(
        depositor_vault: "DepositorVault", w3: "Web3", devnet: "Deployment", chain_snapshot: None) -> None:
    from depositor.flows import Guard, plan_request

    account = devnet.depositors[0]
    deposit_directly(w3, devnet, account, 10_000 * USDC)
    whole = plan_request(depositor_vault, "withdraw", account, "max")
    assert (whole.action, whole.amount, whole.outcome) == ("redeem", 10_000 * SHARE, 10_000 * USDC)
    assert whole.guard == Guard(10_000 * USDC * 9_950 // 10_000, minimum=True), "the redemption's guard"
    exact = plan_request(depositor_vault, "withdraw", account, "10,000")
    assert (exact.action, exact.amount) == ("withdraw", 10_000 * USDC), "an amount typed is withdrawn exactly"

    lock_in_markets(w3, devnet, 4_000 * USDC, 1_000 * USDC)  # only 5,000 are liquid now
    part = plan_request(depositor_vault, "withdraw", account, "max")
    assert (part.action, part.amount) == ("withdraw", 5_000 * USDC), "what is liquid, not the whole position"

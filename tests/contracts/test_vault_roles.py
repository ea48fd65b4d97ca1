"""Vault construction, roles (two-step admin, keeper, guardian), pause and emergency withdrawal,
and a matrix of every privileged function against every role."""

import boa
import pytest

from tests.contracts.world import (
    DAY,
    MAX_UINT256,
    USDC,
    Param,
    deploy_vault,
    events,
    idle,
    positions,
    rebalance,
)


def test_constructor_sets_roles_and_initial_parameters(token, accounts):
    vault = deploy_vault(token, accounts, decimals_offset=2, timelock=DAY)
    assert (vault.admin(), vault.keeper(), vault.guardian()) == (accounts.admin, accounts.keeper, accounts.guardian)
    assert vault.asset() == token.address
    assert vault.decimals() == 6 + 2
    assert (vault.name(), vault.symbol()) == ("Vault USDC", "vUSDC")
    assert vault.min_rebalance_interval() == 0
    assert vault.max_turnover_bps() == 10_000
    assert vault.max_loss_bps() == 0
    assert vault.min_idle_bps() == 0
    assert vault.deposit_limit() == MAX_UINT256
    assert vault.performance_fee_bps() == 0
    assert vault.timelock() == DAY
    # no loss allowed without the admin's say; turnover and price growth start at their upper bound
    assert vault.daily_loss_bps() == 0
    assert vault.daily_turnover_bps() == vault.max_price_growth_bps() == vault.MAX_RATE_BPS()
    assert vault.budgets() == (0, vault.MAX_RATE_BPS() * 10**18 // 10_000)
    assert vault.total_held() == 0
    assert vault.high_water_mark() == USDC  # one whole share is worth one whole asset
    assert vault.markets() == [] and vault.withdraw_queue() == []
    assert not vault.paused()


def test_constructor_rejects_a_timelock_above_the_maximum(token, accounts, vault):
    with boa.reverts("vault: bad value"):
        deploy_vault(token, accounts, timelock=vault.MAX_TIMELOCK() + 1)


def test_admin_transfer_takes_two_steps(vault, accounts):
    newcomer = boa.env.generate_address()
    with boa.env.prank(accounts.admin):
        vault.transfer_admin(newcomer)
    (started,) = events(vault, "AdminTransferStarted")
    assert (started.admin, started.pending_admin) == (accounts.admin, newcomer)
    assert vault.admin() == accounts.admin and vault.pending_admin() == newcomer

    with boa.env.prank(accounts.alice):
        with boa.reverts("vault: not pending admin"):
            vault.accept_admin()
    with boa.env.prank(newcomer):
        vault.accept_admin()
    (transferred,) = events(vault, "AdminTransferred")
    assert (transferred.previous_admin, transferred.new_admin) == (accounts.admin, newcomer)
    assert vault.admin() == newcomer and vault.pending_admin() == "0x" + "00" * 20

    with boa.env.prank(accounts.admin):
        with boa.reverts("vault: not admin"):
            vault.set_keeper(accounts.admin)


@pytest.mark.parametrize(
    ("setter", "getter", "event", "field"),
    [
        ("set_keeper", "keeper", "KeeperSet", "keeper"),
        ("set_guardian", "guardian", "GuardianSet", "guardian"),
        ("set_fee_recipient", "fee_recipient", "FeeRecipientSet", "fee_recipient"),
    ],
)
def test_role_setters_set_and_log(vault, accounts, setter, getter, event, field):
    newcomer = boa.env.generate_address()
    with boa.env.prank(accounts.admin):
        getattr(vault, setter)(newcomer)
    (logged,) = events(vault, event)
    assert getattr(logged, field) == newcomer
    assert getattr(vault, getter)() == newcomer


def test_the_admin_publishes_where_decision_bundles_are_and_can_take_it_back(vault, accounts):
    assert vault.decisions_uri() == ""
    with boa.env.prank(accounts.admin):
        vault.set_decisions_uri("https://keeper.example/vaultbot")
    (logged,) = events(vault, "DecisionsUriSet")
    assert logged.uri == "https://keeper.example/vaultbot" == vault.decisions_uri()
    with boa.env.prank(accounts.admin):
        vault.set_decisions_uri("")
    assert vault.decisions_uri() == ""
    with boa.env.prank(accounts.admin), boa.reverts():
        vault.set_decisions_uri("x" * 257)  # longer than the view holds: refused by the ABI decoder


def test_fee_recipient_cannot_be_the_zero_address(vault, accounts):
    with boa.env.prank(accounts.admin):
        with boa.reverts("vault: zero address"):
            vault.set_fee_recipient("0x" + "00" * 20)


@pytest.mark.parametrize("role", ["admin", "guardian"])
def test_pause_stops_deposits_mints_and_rebalances_only(invested, role):
    vault, accounts = invested.vault, invested.accounts
    with boa.env.prank(getattr(accounts, role)):
        vault.pause()
    (paused,) = events(vault, "Paused")
    assert paused.account == getattr(accounts, role)
    assert vault.paused()
    assert vault.maxDeposit(accounts.bob) == 0 and vault.maxMint(accounts.bob) == 0
    with boa.env.prank(accounts.bob):
        with boa.reverts("vault: paused"):
            vault.deposit(1, accounts.bob)
        with boa.reverts("vault: paused"):
            vault.mint(1, accounts.bob)
    with boa.reverts("vault: paused"):
        rebalance(invested, {})

    # leaving is never paused, and may draw on the markets
    with boa.env.prank(accounts.alice):
        vault.withdraw(600_000 * USDC, accounts.alice, accounts.alice)
        vault.redeem(vault.balanceOf(accounts.alice) // 2, accounts.alice, accounts.alice)
    assert vault.balanceOf(accounts.alice) > 0


def test_unpause_reopens_deposits(vault, accounts):
    with boa.env.prank(accounts.guardian):
        vault.pause()
    with boa.env.prank(accounts.admin):
        vault.unpause()
    assert events(vault, "Unpaused")[0].account == accounts.admin
    assert not vault.paused()
    with boa.env.prank(accounts.bob):
        vault.deposit(USDC, accounts.bob)


def test_emergency_withdraw_all_pauses_and_pulls_what_markets_pay(invested):
    vault, accounts, markets = invested.vault, invested.accounts, invested.markets
    total = vault.totalAssets()
    with boa.env.prank(accounts.operator):
        markets[1].set_liquidity(50_000 * USDC)
    with boa.env.prank(accounts.guardian):
        vault.emergency_withdraw_all()
    withdrawals = {log.market: log.assets for log in events(vault, "EmergencyWithdrawal")}
    assert withdrawals == {
        markets[0].address: 300_000 * USDC,
        markets[1].address: 50_000 * USDC,
        markets[2].address: 0,
    }
    assert vault.paused()
    assert positions(invested) == [0, 150_000 * USDC, 0]
    assert idle(invested) == 850_000 * USDC
    assert vault.totalAssets() == total


ROLES = ("admin", "keeper", "guardian", "operator", "fee_recipient", "alice")
QUEUED = (Param.MAX_LOSS_BPS, 50)  # a loosening, queued for the accept_param and revoke_pending_param rows


def allocations(world) -> list[tuple[str, int]]:
    return [(world.markets[0].address, 0)]


# Every privileged function: its arguments (from the world and the id of a proposed rebalance), who may call it,
# the revert for others.
PRIVILEGED = {
    "transfer_admin": (lambda w, pid: [w.accounts.bob], {"admin"}, "vault: not admin"),
    "set_keeper": (lambda w, pid: [w.accounts.bob], {"admin"}, "vault: not admin"),
    "set_guardian": (lambda w, pid: [w.accounts.bob], {"admin"}, "vault: not admin"),
    "set_fee_recipient": (lambda w, pid: [w.accounts.bob], {"admin"}, "vault: not admin"),
    "set_decisions_uri": (lambda w, pid: ["http://keeper.example/"], {"admin"}, "vault: not admin"),
    "unpause": (lambda w, pid: [], {"admin"}, "vault: not admin"),
    "submit_param": (lambda w, pid: [Param.MAX_LOSS_BPS, 0], {"admin"}, "vault: not admin"),
    "accept_param": (lambda w, pid: [QUEUED[0]], {"admin"}, "vault: not admin"),
    "submit_market": (lambda w, pid: [w.markets[0].address, 0, 0], {"admin"}, "vault: not admin"),
    "accept_market": (lambda w, pid: [w.markets[0].address], {"admin"}, "vault: not admin"),
    "submit_market_removal": (lambda w, pid: [w.markets[2].address], {"admin"}, "vault: not admin"),
    "remove_market": (lambda w, pid: [w.markets[1].address], {"admin"}, "vault: not admin"),
    "set_withdraw_queue": (lambda w, pid: [[m.address for m in reversed(w.markets)]], {"admin"}, "vault: not admin"),
    "pause": (lambda w, pid: [], {"admin", "guardian"}, "vault: not guardian"),
    "emergency_withdraw_all": (lambda w, pid: [], {"admin", "guardian"}, "vault: not guardian"),
    "revoke_pending_param": (lambda w, pid: [QUEUED[0]], {"admin", "guardian"}, "vault: not guardian"),
    "revoke_pending_caps": (lambda w, pid: [w.markets[0].address], {"admin", "guardian"}, "vault: not guardian"),
    "revoke_pending_removal": (lambda w, pid: [w.markets[1].address], {"admin", "guardian"}, "vault: not guardian"),
    "report": (lambda w, pid: [], {"admin", "guardian", "keeper"}, "vault: not reporter"),
    "rebalance": (lambda w, pid: [allocations(w), b"\x00" * 32], {"keeper"}, "vault: not keeper"),
    "propose_rebalance": (lambda w, pid: [allocations(w), b"\x01" * 32], {"keeper"}, "vault: not keeper"),
    # the guardian is the human in the loop of the keeper's proposals: not even the admin stands in
    "approve_rebalance": (lambda w, pid: [pid], {"guardian"}, "vault: not guardian"),
    "reject_rebalance": (lambda w, pid: [pid], {"guardian"}, "vault: not guardian"),
}


@pytest.mark.parametrize("function", sorted(PRIVILEGED))
def test_privileged_functions_reject_every_other_role(world, function):
    """Every row's call is made ready (a queued parameter, caps and removal past the timelock, a live proposal),
    so that the allowed roles succeed and the others fail on the role check alone."""
    vault, accounts, markets = world.vault, world.accounts, world.markets
    with boa.env.prank(accounts.admin):
        vault.submit_param(*QUEUED)
        vault.submit_market(markets[0].address, 6_000, 0)  # a raise of cap_bps, queued
        vault.submit_market_removal(markets[1].address)
    boa.env.time_travel(seconds=vault.timelock())
    with boa.env.prank(accounts.keeper):
        proposal = vault.propose_rebalance(allocations(world), b"\x02" * 32)
    arguments, allowed, reason = PRIVILEGED[function]
    call = getattr(vault, function)
    for role in ROLES:
        with boa.env.prank(getattr(accounts, role)), boa.env.anchor():
            if role in allowed:
                call(*arguments(world, proposal))
            else:
                with boa.reverts(reason):
                    call(*arguments(world, proposal))


def test_the_table_covers_every_state_changing_function(vault):
    """A new privileged function must get a row: every external non-view function is in the table or open to
    all by design."""
    open_to_all = {"accept_admin", "deposit", "mint", "withdraw", "redeem", "transfer", "transferFrom", "approve",
                   "permit"}
    abi = vault.abi
    mutating = {item["name"] for item in abi if item.get("type") == "function"
                and item.get("stateMutability") not in ("view", "pure")}
    assert mutating - open_to_all == set(PRIVILEGED)

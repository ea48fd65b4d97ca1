"""A listed market turns hostile (tests/contracts/HostileMarket.vy): it reverts, lies, moves its price for a block,
pulls only part of a supply or charges an entry fee. Depositors' funds in idle and in healthy markets stay
withdrawable, the broken market can be isolated and written off, and none of it passes a guardrail.

The `hostile` world: alice's 1M; market 0 holds 300k, the hostile market 200k, 500k idle (market 1 and 2 empty).
"""

import boa
import pytest
from boa.contracts.vyper.vyper_contract import VyperContract

from tests.contracts.world import (
    BASE_CAP_ABS,
    BASE_CAP_BPS,
    BPS,
    DAY,
    USDC,
    WAD,
    Param,
    World,
    apply_param,
    deploy_hostile_market,
    events,
    idle,
    list_market,
    rebalance,
)

K = 1_000 * USDC
YEAR = 365 * DAY
WHOLE_SHARE = 10**9  # 6 asset decimals + offset 3
FLAGS = {
    "previewRedeem": 1,
    "balanceOf": 2,
    "maxWithdraw": 4,
    "withdraw": 8,
    "redeem": 16,
    "deposit": 32,
    "convertToAssets": 64,
    "maxRedeem": 128,
}
ALL = sum(FLAGS.values())
# The views a report reads, each alone and together, and everything at once.
VIEW_BREAKS = {"previewRedeem": 1, "balanceOf": 2, "both views": 3, "everything": ALL}


@pytest.fixture
def hostile(world: World) -> VyperContract:
    market = deploy_hostile_market(world.token, world.accounts.operator, 0)
    list_market(world.vault, world.accounts.admin, market, BASE_CAP_BPS, BASE_CAP_ABS)
    with boa.env.prank(world.accounts.alice):
        world.vault.deposit(1_000 * K, world.accounts.alice)
    rebalance(world, {world.markets[0]: 300 * K, market: 200 * K})
    boa.env.time_travel(seconds=world.vault.min_rebalance_interval())
    return market


def operate(market: VyperContract, operator: str, **switches: int) -> None:
    with boa.env.prank(operator):
        for name, value in switches.items():
            getattr(market, f"set_{name}")(value)


def real_total(world: World, *extra: VyperContract) -> int:
    """What the vault really owns: idle plus every position at the market's own honest price."""
    return idle(world) + sum(m.convertToAssets(m.balanceOf(world.vault.address)) for m in [*world.markets, *extra])


# ---------------------------------------------------------------- a market that reverts


@pytest.mark.parametrize("broken", list(VIEW_BREAKS))
def test_a_market_reverting_on_its_views_blocks_nothing_else(world, hostile, broken):
    vault, accounts = world.vault, world.accounts
    operate(hostile, accounts.operator, reverts=VIEW_BREAKS[broken])
    assert vault.totalAssets() == 1_000 * K  # stored: the market keeps its last value
    assert vault.position(hostile.address) == 200 * K
    with boa.env.prank(accounts.keeper):
        vault.report()  # skips the market, values the others
    assert vault.totalAssets() == 1_000 * K
    with boa.env.prank(accounts.bob):
        vault.deposit(10 * K, accounts.bob)
    rebalance(world, {world.markets[1]: 1 * K})  # the keeper still works around it
    alice = accounts.alice
    assert vault.maxWithdraw(alice) >= 800 * K  # idle and market 0 at least
    with boa.env.prank(alice):
        vault.withdraw(100 * K, alice, alice)  # idle covers it
        vault.withdraw(650 * K, alice, alice)  # idle and market 0 cover it
        vault.redeem(vault.balanceOf(alice) // 100, alice, alice)
    with boa.env.prank(accounts.bob):
        vault.redeem(vault.balanceOf(accounts.bob), accounts.bob, accounts.bob)


@pytest.mark.parametrize("broken", list(VIEW_BREAKS))
def test_the_withdraw_queue_can_leave_a_broken_market_out(world, hostile, broken):
    vault, accounts, m = world.vault, world.accounts, world.markets
    operate(hostile, accounts.operator, reverts=VIEW_BREAKS[broken])
    queue = [m[0].address, m[1].address, m[2].address]
    with boa.env.prank(accounts.admin):
        vault.set_withdraw_queue(queue)
    assert vault.withdraw_queue() == queue
    alice = accounts.alice
    with boa.env.prank(alice):
        vault.withdraw(800 * K, alice, alice)  # all of idle and market 0
        with boa.reverts("vault: not enough liquidity"):
            vault.withdraw(1, alice, alice)  # the rest is in the market left out
    assert vault.totalAssets() == 200 * K


@pytest.mark.parametrize("broken", ["withdraw", "maxWithdraw", "everything"])
def test_withdrawals_skip_a_market_that_reverts_on_withdraw(world, hostile, broken):
    vault, accounts, m0 = world.vault, world.accounts, world.markets[0]
    operate(hostile, accounts.operator, reverts=ALL if broken == "everything" else FLAGS[broken])
    with boa.env.prank(accounts.admin):  # the broken market first: withdrawals must go past it
        vault.set_withdraw_queue([hostile.address, m0.address])
    alice = accounts.alice
    with boa.env.prank(alice):
        vault.withdraw(700 * K, alice, alice)
    assert m0.balanceOf(vault.address) == m0.convertToShares(100 * K)
    assert vault.position(m0.address) == 100 * K
    assert vault.totalAssets() == 300 * K  # 100k in market 0, the broken 200k still counted
    with boa.env.prank(alice), boa.reverts("vault: not enough liquidity"):
        vault.withdraw(100 * K + 1, alice, alice)


def test_a_withdrawal_from_a_market_whose_balance_of_reverts_is_not_counted_twice(world, hostile):
    """The market pays the withdrawal but cannot say what the vault has left: the vault takes the shares it
    spent off its own count, so the assets withdrawn are not counted both in idle and in the market."""
    vault, accounts = world.vault, world.accounts
    operate(hostile, accounts.operator, reverts=FLAGS["balanceOf"])
    with boa.env.prank(accounts.admin):
        vault.set_withdraw_queue([hostile.address])
    alice = accounts.alice
    with boa.env.prank(alice):
        vault.withdraw(600 * K, alice, alice)  # 500k idle, 100k from the market
    assert vault.totalAssets() == 400 * K
    operate(hostile, accounts.operator, reverts=0)
    assert vault.totalAssets() == real_total(world, hostile) == 400 * K


def test_a_broken_market_is_removed_after_the_timelock_and_written_off(world, hostile):
    vault, accounts = world.vault, world.accounts
    operate(hostile, accounts.operator, reverts=ALL)
    with boa.env.prank(accounts.admin):
        vault.submit_market_removal(hostile.address)
        with boa.reverts("vault: timelock"):
            vault.remove_market(hostile.address)
    assert tuple(vault.market_config(hostile.address)) == (True, 0, 0)
    boa.env.time_travel(seconds=vault.timelock())
    with boa.env.prank(accounts.admin):
        vault.remove_market(hostile.address)
    (removed,) = events(vault, "MarketRemoved")
    assert (removed.market, removed.written_off) == (hostile.address, 200 * K)
    assert hostile.address not in vault.markets() and hostile.address not in vault.withdraw_queue()
    assert vault.totalAssets() == 800 * K
    assert world.token.allowance(vault.address, hostile.address) == 0
    # alice's claim is what is really left; she can take all of it
    alice = accounts.alice
    assert vault.maxWithdraw(alice) == vault.convertToAssets(vault.balanceOf(alice)) == pytest.approx(800 * K, abs=1)
    with boa.env.prank(alice):
        vault.redeem(vault.balanceOf(alice), alice, alice)


def test_emergency_withdraw_all_takes_what_the_healthy_markets_pay(world, hostile):
    vault, accounts, m = world.vault, world.accounts, world.markets
    operate(hostile, accounts.operator, reverts=ALL)
    with boa.env.prank(accounts.guardian):
        vault.emergency_withdraw_all()
    pulled = {log.market: (log.assets, log.ok) for log in events(vault, "EmergencyWithdrawal")}
    assert pulled == {
        m[0].address: (300 * K, True),
        m[1].address: (0, True),
        m[2].address: (0, True),
        hostile.address: (0, False),
    }
    assert vault.paused()
    assert idle(world) == 800 * K
    assert vault.position(m[0].address) == 0
    assert vault.totalAssets() == 1_000 * K  # the broken market keeps its value until written off


@pytest.mark.parametrize("broken", ["redeem", "maxRedeem"])
def test_emergency_withdraw_all_skips_a_market_that_reverts_on_redeem(world, hostile, broken):
    vault, accounts, m0 = world.vault, world.accounts, world.markets[0]
    operate(hostile, accounts.operator, reverts=FLAGS[broken])
    with boa.env.prank(accounts.guardian):
        vault.emergency_withdraw_all()
    pulled = {log.market: (log.assets, log.ok) for log in events(vault, "EmergencyWithdrawal")}
    assert pulled[m0.address] == (300 * K, True) and pulled[hostile.address] == (0, False)
    assert hostile.balanceOf(vault.address) > 0 and idle(world) == 800 * K


# ---------------------------------------------------------------- lying previews and a moved price


def test_lying_previews_move_the_books_only_within_the_growth_bound(world, hostile):
    """A market claiming its shares are worth 10x is booked at the accepted price grown for one hour."""
    vault, accounts = world.vault, world.accounts
    operate(hostile, accounts.operator, preview_lie=10 * WAD)
    elapsed = boa.env.timestamp - vault.last_report()
    with boa.env.prank(accounts.keeper):
        vault.report()
    growth = 200 * K * vault.max_price_growth_bps() * elapsed // (BPS * YEAR)
    assert vault.position(hostile.address) <= 200 * K + growth + 1
    assert vault.totalAssets() <= 1_000 * K + growth + 1
    # a lie downwards counts in full: a real loss for the keeper's budget, so only the guardian can book it
    operate(hostile, accounts.operator, preview_lie=WAD // 2)
    with boa.env.prank(accounts.keeper), boa.reverts("vault: over daily budget"):
        vault.report()
    with boa.env.prank(accounts.guardian):
        vault.report()
    assert vault.position(hostile.address) == pytest.approx(100 * K, abs=2)


def test_a_price_spike_does_not_pass_a_loss_check(world):
    """A listed market where bob holds 1M doubles its share price for the block in which the keeper supplies
    100k: at the market's own price the supply looks like a gain, but once the price is back the vault's
    shares are worth ~52k. The vault counts them at its accepted price and rejects the move."""
    vault, accounts, token = world.vault, world.accounts, world.token
    spiky = deploy_hostile_market(token, accounts.operator, 1)
    list_market(vault, accounts.admin, spiky, BASE_CAP_BPS, BASE_CAP_ABS)
    with boa.env.prank(accounts.alice):
        vault.deposit(1_000 * K, accounts.alice)
    with boa.env.prank(accounts.bob):
        token.approve(spiky.address, 1_000 * K)
        spiky.deposit(1_000 * K, accounts.bob)
    boa.env.time_travel(seconds=3_600)
    operate(spiky, accounts.operator, price_factor=2 * WAD)
    at_market_price = spiky.previewDeposit(100 * K) * spiky.convertToAssets(10**12) // 10**12
    assert at_market_price >= 99 * K  # the loss the market's own price shows is within 10 bps of 1M
    with boa.reverts("vault: loss exceeded"):
        rebalance(world, {spiky: 100 * K})
    # the premise: the same supply by anyone else really loses about half once the price is back
    carol = boa.env.generate_address("carol")
    token.mint(carol, 100 * K)
    with boa.env.prank(carol):
        token.approve(spiky.address, 100 * K)
        shares = spiky.deposit(100 * K, carol)
    operate(spiky, accounts.operator, price_factor=WAD)
    assert spiky.convertToAssets(shares) == pytest.approx(52_381 * USDC, rel=1e-3)


def test_a_price_spike_earns_no_performance_fee(world, hostile):
    """A one-block doubling of the market's price: nobody crystallises a fee with deposit(0), a report in that
    block books at most the accepted growth, and the high-water mark stays at the real share price."""
    vault, accounts = world.vault, world.accounts
    with boa.env.prank(accounts.keeper):
        vault.report()
    mark, fee_shares = vault.high_water_mark(), vault.balanceOf(accounts.fee_recipient)
    boa.env.time_travel(seconds=12)
    operate(hostile, accounts.operator, price_factor=2 * WAD)
    with boa.env.prank(accounts.bob):
        vault.deposit(0, accounts.bob)
    assert not events(vault, "FeeAccrued")
    assert vault.high_water_mark() == mark
    with boa.env.prank(accounts.keeper):
        vault.report()
    bound = 200 * K * vault.max_price_growth_bps() * 12 // (BPS * YEAR)  # what 12 s of accepted growth is worth
    assert vault.totalAssets() <= 1_000 * K + bound + 1
    operate(hostile, accounts.operator, price_factor=WAD)  # the spike is over
    with boa.env.prank(accounts.guardian):
        vault.report()
    real_price = real_total(world, hostile) * WHOLE_SHARE // vault.totalSupply()
    assert vault.high_water_mark() - real_price <= real_price * vault.max_price_growth_bps() * 12 // (BPS * YEAR) + 1
    fee_value = vault.convertToAssets(vault.balanceOf(accounts.fee_recipient) - fee_shares)
    assert fee_value <= bound // 10 + 1  # 10 % of at most the accepted growth


# ---------------------------------------------------------------- allowances


def test_a_partial_pull_leaves_no_allowance(world, hostile):
    vault, accounts, token = world.vault, world.accounts, world.token
    operate(hostile, accounts.operator, pull_bps=5_000)
    rebalance(world, {hostile: 300 * K})  # the market takes only 50k of the 100k approved
    assert token.allowance(vault.address, hostile.address) == 0
    assert vault.position(hostile.address) == 250 * K
    assert idle(world) == 450 * K
    assert vault.totalAssets() == 1_000 * K


def test_remove_market_resets_a_leftover_allowance(world, hostile):
    vault, accounts, token = world.vault, world.accounts, world.token
    rebalance(world, {hostile: 0})
    with boa.env.prank(vault.address):  # an allowance left over, as the old vault left one after a partial pull
        token.approve(hostile.address, 50 * K)
    with boa.env.prank(accounts.admin):
        vault.remove_market(hostile.address)
    assert token.allowance(vault.address, hostile.address) == 0


def test_a_market_reverting_on_deposit_fails_only_the_rebalance_into_it(world, hostile):
    vault, accounts = world.vault, world.accounts
    operate(hostile, accounts.operator, reverts=FLAGS["deposit"])
    with boa.reverts("market: broken"):
        rebalance(world, {hostile: 250 * K})
    rebalance(world, {world.markets[1]: 100 * K})
    assert world.token.allowance(vault.address, hostile.address) == 0

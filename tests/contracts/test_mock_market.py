"""MockMarket: interest accrual, liquidity limit, injected losses, the deposit fee and operator rights."""

import math

import boa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backtest.execution import execute
from tests.contracts.world import (
    MAX_UINT256,
    USDC,
    WAD,
    events,
    read_guardrails,
    read_state,
    rebalance,
)

BP = WAD // 10_000  # a deposit fee of one basis point

YEAR = 365 * 86_400
TEN_PERCENT_A_YEAR = WAD // 10 // YEAR


@pytest.fixture
def market(markets):
    return markets[0]


@pytest.fixture
def supplied(market, token, accounts):
    """Alice supplies 1000 USDC to the market."""
    with boa.env.prank(accounts.alice):
        token.approve(market.address, MAX_UINT256)
        market.deposit(1_000 * USDC, accounts.alice)
    return market


def set_rate(market, accounts, rate):
    with boa.env.prank(accounts.operator):
        market.set_rate(rate)


def set_fee(market, accounts, fee):
    with boa.env.prank(accounts.operator):
        market.set_deposit_fee(fee)


def test_views_include_interest_before_it_is_minted(supplied, token, accounts):
    set_rate(supplied, accounts, TEN_PERCENT_A_YEAR)
    boa.env.time_travel(seconds=YEAR)
    expected_interest = 1_000 * USDC * TEN_PERCENT_A_YEAR * YEAR // WAD
    assert supplied.pending_interest() == expected_interest
    assert supplied.totalAssets() == 1_000 * USDC + expected_interest
    assert token.balanceOf(supplied.address) == 1_000 * USDC  # nothing minted yet
    # a state change mints it; the view does not move
    total_before = supplied.totalAssets()
    with boa.env.prank(accounts.bob):
        token.approve(supplied.address, 1)
        supplied.deposit(1, accounts.bob)
    assert token.balanceOf(supplied.address) == total_before + 1
    assert supplied.pending_interest() == 0
    assert supplied.last_accrual() == boa.env.timestamp


def test_set_rate_accrues_at_the_old_rate_first(supplied, accounts):
    set_rate(supplied, accounts, TEN_PERCENT_A_YEAR)
    boa.env.time_travel(seconds=YEAR // 2)
    set_rate(supplied, accounts, 0)
    assert events(supplied, "RateSet")[0].rate_per_second == 0
    value = supplied.totalAssets()
    assert value == 1_000 * USDC + 1_000 * USDC * TEN_PERCENT_A_YEAR * (YEAR // 2) // WAD
    boa.env.time_travel(seconds=YEAR)
    assert supplied.totalAssets() == value


@pytest.mark.parametrize("fee", [0, 25 * BP // 10, 1_000 * BP])  # none, 2.5 bps, the 10 % maximum
def test_previews_equal_actions(supplied, token, accounts, fee):
    set_rate(supplied, accounts, TEN_PERCENT_A_YEAR)
    set_fee(supplied, accounts, fee)
    boa.env.time_travel(seconds=12_345)
    with boa.env.prank(accounts.bob):
        token.approve(supplied.address, MAX_UINT256)
        expected = supplied.previewDeposit(777 * USDC)
        assert supplied.deposit(777 * USDC, accounts.bob) == expected
        expected = supplied.previewMint(555 * USDC)
        assert supplied.mint(555 * USDC, accounts.bob) == expected
        expected = supplied.previewWithdraw(100 * USDC)
        assert supplied.withdraw(100 * USDC, accounts.bob, accounts.bob) == expected
        expected = supplied.previewRedeem(50 * USDC)
        assert supplied.redeem(50 * USDC, accounts.bob, accounts.bob) == expected


def test_liquidity_caps_max_withdraw_and_max_redeem(supplied, accounts):
    assert supplied.maxWithdraw(accounts.alice) == 1_000 * USDC
    assert supplied.maxRedeem(accounts.alice) == supplied.balanceOf(accounts.alice)
    with boa.env.prank(accounts.operator):
        supplied.set_liquidity(100 * USDC)
    assert events(supplied, "LiquiditySet")[0].max_assets == 100 * USDC
    assert supplied.maxWithdraw(accounts.alice) == 100 * USDC
    assert supplied.previewRedeem(supplied.maxRedeem(accounts.alice)) <= 100 * USDC
    with boa.env.prank(accounts.alice):
        with boa.reverts("market: withdraw more than max"):
            supplied.withdraw(100 * USDC + 1, accounts.alice, accounts.alice)
        with boa.reverts("market: redeem more than max"):
            supplied.redeem(supplied.maxRedeem(accounts.alice) + 1, accounts.alice, accounts.alice)
        supplied.withdraw(100 * USDC, accounts.alice, accounts.alice)


def test_inject_loss_sends_assets_to_the_operator(supplied, token, accounts):
    with boa.env.prank(accounts.operator):
        supplied.inject_loss(2_500)
    (loss,) = events(supplied, "LossInjected")
    assert (loss.bps, loss.assets) == (2_500, 250 * USDC)
    assert token.balanceOf(accounts.operator) == 250 * USDC
    assert supplied.totalAssets() == 750 * USDC
    assert supplied.maxWithdraw(accounts.alice) == 750 * USDC


@pytest.mark.parametrize(
    "call",
    [lambda m: m.set_rate(1), lambda m: m.set_liquidity(1), lambda m: m.inject_loss(1), lambda m: m.set_deposit_fee(1)],
)
def test_operator_functions_reject_others(market, accounts, call):
    with boa.env.prank(accounts.alice):
        with boa.reverts("market: not operator"):
            call(market)


def test_inject_loss_rejects_more_than_everything(market, accounts):
    with boa.env.prank(accounts.operator):
        with boa.reverts("market: bad bps"):
            market.inject_loss(10_001)


# ---------------------------------------------------------------- deposit fee


def test_the_deposit_fee_goes_to_the_operator_not_to_the_shareholders(supplied, token, accounts):
    set_fee(supplied, accounts, 3 * BP)
    assert events(supplied, "DepositFeeSet")[0].fee == 3 * BP
    with boa.env.prank(accounts.bob):
        token.approve(supplied.address, MAX_UINT256)
        shares = supplied.deposit(10_000 * USDC + 1, accounts.bob)
    fee = math.ceil((10_000 * USDC + 1) * 3 / 10_000)  # rounded up, against the depositor
    (paid,) = events(supplied, "DepositFeePaid")
    (deposit,) = events(supplied, "Deposit")
    assert (paid.sender, paid.assets) == (accounts.bob, fee)
    assert (deposit.assets, deposit.shares) == (10_000 * USDC + 1, shares)  # the whole amount taken
    assert token.balanceOf(accounts.operator) == fee
    assert supplied.totalAssets() == 11_000 * USDC + 1 - fee  # the fee left the market
    assert supplied.maxWithdraw(accounts.bob) == 10_000 * USDC + 1 - fee
    assert supplied.maxWithdraw(accounts.alice) == 1_000 * USDC  # earlier holders gain nothing from it


def test_a_sole_shareholder_does_not_get_the_fee_back(market, token, accounts):
    set_fee(market, accounts, 10 * BP)
    with boa.env.prank(accounts.alice):
        token.approve(market.address, MAX_UINT256)
        shares = market.deposit(1_000 * USDC, accounts.alice)
        assert market.redeem(shares, accounts.alice, accounts.alice) == 1_000 * USDC - USDC  # 10 bps of 1000
    assert token.balanceOf(accounts.operator) == USDC


def test_mint_charges_the_fee_on_top_of_the_shares_worth(supplied, token, accounts):
    set_fee(supplied, accounts, 50 * BP)
    with boa.env.prank(accounts.bob):
        token.approve(supplied.address, MAX_UINT256)
        worth = supplied.convertToAssets(400 * USDC)
        assets = supplied.mint(400 * USDC, accounts.bob)
    (paid,) = events(supplied, "DepositFeePaid")
    assert paid.assets == assets - worth == token.balanceOf(accounts.operator)
    assert assets == math.ceil(worth * 10_000 / 9_950)  # the least amount whose net pays for the shares
    assert assets - math.ceil(assets * 50 / 10_000) == worth
    assert supplied.previewDeposit(assets - 1) < 400 * USDC <= supplied.previewDeposit(assets)


def test_no_fee_means_no_fee_event_and_no_transfer_to_the_operator(supplied, token, accounts):
    assert supplied.deposit_fee() == 0
    with boa.env.prank(accounts.bob):
        token.approve(supplied.address, MAX_UINT256)
        assert supplied.deposit(500 * USDC, accounts.bob) == supplied.balanceOf(accounts.bob)
        assert events(supplied, "DepositFeePaid") == []
    assert token.balanceOf(accounts.operator) == 0 and supplied.totalAssets() == 1_500 * USDC


def test_the_deposit_fee_is_bounded(market, accounts):
    assert market.MAX_DEPOSIT_FEE() == WAD // 10
    set_fee(market, accounts, WAD // 10)
    assert market.deposit_fee() == WAD // 10
    with boa.env.prank(accounts.operator):
        with boa.reverts("market: fee too high"):
            market.set_deposit_fee(WAD // 10 + 1)
    assert market.maxDeposit(accounts.alice) == market.maxMint(accounts.alice) == MAX_UINT256  # no limit but funds


@settings(suppress_health_check=[*settings.default.suppress_health_check, HealthCheck.function_scoped_fixture])
@given(
    fee=st.integers(0, WAD // 10),
    assets=st.integers(0, 10**9 * USDC),
    shares=st.integers(0, 10**9 * USDC),
    interest=st.integers(0, 10**6 * USDC),
)
def test_previews_with_a_fee_are_exact_and_mint_is_the_cheapest_way_to_its_shares(
    supplied, token, accounts, fee, assets, shares, interest
):
    with boa.env.anchor():
        token.mint(supplied.address, interest)  # share price above 1
        set_fee(supplied, accounts, fee)
        token.mint(accounts.bob, 10**30)  # enough for any mint at a share price up to 1000
        with boa.env.prank(accounts.bob):
            token.approve(supplied.address, MAX_UINT256)
            minted = supplied.previewDeposit(assets)
            before = token.balanceOf(accounts.operator)
            assert supplied.deposit(assets, accounts.bob) == minted
            assert token.balanceOf(accounts.operator) - before == math.ceil(assets * fee / WAD)
            cost = supplied.previewMint(shares)
            # EIP-4626: a preview includes the fee; mint's price is the least that buys the shares
            assert supplied.previewDeposit(cost) >= shares
            assert cost == 0 or supplied.previewDeposit(cost - 1) < shares
            assert supplied.mint(shares, accounts.bob) == cost


def test_the_vault_sees_the_fee_as_a_loss_exactly_as_the_python_mirror(invested, accounts):
    """A rebalance that supplies fee-charging markets ends where `backtest.execution` (fast mode) says it does,
    and one whose fees cost more than max_loss_bps is rejected by both with the same reason."""
    world = invested
    m = world.markets
    for market in m:
        set_fee(market, accounts, 4 * BP)
    before = read_state(world.vault, world.token)
    guardrails = read_guardrails(world.vault)
    now = boa.env.timestamp
    cheap = {m[0].address: 300_000 * USDC, m[1].address: 100_000 * USDC, m[2].address: 150_000 * USDC}
    expected = execute(before, cheap, now, guardrails, 4.0)
    assert expected.accepted and expected.slippage == math.ceil(150_000 * USDC * 4 / 10_000)
    rebalance(world, {market: cheap[market.address] for market in m})
    (done,) = events(world.vault, "Rebalanced")
    assert read_state(world.vault, world.token).positions == expected.state.positions
    assert done.total_before - done.total_after == expected.slippage and done.moved == expected.moved

    boa.env.time_travel(seconds=world.vault.min_rebalance_interval())
    for market in m:
        set_fee(market, accounts, 30 * BP)  # 30 bps of 400k moved is more than 10 bps of the vault
    before = read_state(world.vault, world.token)
    dear = {m[1].address: 500_000 * USDC}
    rejected = execute(before, dear, boa.env.timestamp, guardrails, 30.0)
    assert rejected.rejections == ["vault: loss exceeded"]
    with boa.reverts("vault: loss exceeded"):
        rebalance(world, {m[1]: 500_000 * USDC})

"""MockMarket: interest accrual, liquidity limit, injected losses and operator rights."""

import boa
import pytest

from tests.contracts.world import MAX_UINT256, USDC, WAD, events

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


def test_previews_equal_actions(supplied, token, accounts):
    set_rate(supplied, accounts, TEN_PERCENT_A_YEAR)
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
    "call", [lambda m: m.set_rate(1), lambda m: m.set_liquidity(1), lambda m: m.inject_loss(1)]
)
def test_operator_functions_reject_others(market, accounts, call):
    with boa.env.prank(accounts.alice):
        with boa.reverts("market: not operator"):
            call(market)


def test_inject_loss_rejects_more_than_everything(market, accounts):
    with boa.env.prank(accounts.operator):
        with boa.reverts("market: bad bps"):
            market.inject_loss(10_001)

"""Vault deposits and withdrawals: idle first then the withdraw queue, liquidity-aware max*, deposit limit,
allowances, the share token's events and EIP-2612 permits."""

import boa
import pytest
from eth_account import Account

from tests.contracts.world import USDC, Param, apply_param, events, idle, positions

K = 1_000 * USDC
ZERO_ADDRESS = "0x" + "00" * 20


def share_transfers(vault) -> list[tuple[str, str, int]]:
    """(from, to, shares) of the vault-share Transfer events of the vault's last call."""
    return [(log.sender, log.receiver, log.value) for log in events(vault, "Transfer") if log.address == vault.address]


def test_deposit_mints_previewed_shares_and_stays_idle(vault, token, accounts):
    expected = vault.previewDeposit(1_000 * USDC)
    with boa.env.prank(accounts.alice):
        shares = vault.deposit(1_000 * USDC, accounts.bob)
    (deposit,) = events(vault, "Deposit")
    assert share_transfers(vault) == [(ZERO_ADDRESS, accounts.bob, shares)]
    assert shares == expected == 1_000 * USDC * 10**3  # empty vault: 10**offset shares per asset unit
    assert (deposit.sender, deposit.owner, deposit.assets, deposit.shares) == (
        accounts.alice,
        accounts.bob,
        1_000 * USDC,
        shares,
    )
    assert vault.balanceOf(accounts.bob) == shares
    assert token.balanceOf(vault.address) == vault.totalAssets() == 1_000 * USDC


def test_mint_takes_the_previewed_assets(vault, token, accounts):
    expected = vault.previewMint(5 * 10**9)
    before = token.balanceOf(accounts.alice)
    with boa.env.prank(accounts.alice):
        assets = vault.mint(5 * 10**9, accounts.alice)
    assert assets == expected == 5 * USDC
    assert token.balanceOf(accounts.alice) == before - assets


def test_withdraw_is_served_from_idle_first(invested):
    vault, alice = invested.vault, invested.accounts.alice
    with boa.env.prank(alice):
        burned = vault.withdraw(400 * K, alice, alice)
    (withdrawal,) = events(vault, "Withdraw")
    assert share_transfers(vault) == [(alice, ZERO_ADDRESS, burned)]
    assert (withdrawal.receiver, withdrawal.owner, withdrawal.assets, withdrawal.shares) == (
        alice, alice, 400 * K, burned)
    assert positions(invested) == [300 * K, 200 * K, 0]
    assert idle(invested) == 100 * K


@pytest.mark.parametrize(
    ("order", "expected"),
    [((0, 1, 2), [0, 200 * K, 0]), ((1, 2, 0), [200 * K, 0, 0]), ((2, 1, 0), [200 * K, 0, 0])],
)
def test_withdraw_then_draws_on_markets_in_queue_order(invested, order, expected):
    vault, alice, m = invested.vault, invested.accounts.alice, invested.markets
    with boa.env.prank(invested.accounts.admin):
        vault.set_withdraw_queue([m[i].address for i in order])
    with boa.env.prank(alice):
        vault.withdraw(800 * K, alice, alice)
    assert positions(invested) == expected
    assert idle(invested) == 0


def test_max_withdraw_and_max_redeem_follow_market_liquidity(invested):
    vault, accounts, m = invested.vault, invested.accounts, invested.markets
    with boa.env.prank(accounts.operator):
        m[0].set_liquidity(10 * K)
        m[1].set_liquidity(20 * K)
    alice = accounts.alice
    assert vault.maxWithdraw(alice) == 530 * K  # 500k idle + 10k + 20k, below her 1M
    max_shares = vault.maxRedeem(alice)
    assert max_shares < vault.balanceOf(alice)
    assert max_shares == vault.convertToShares(530 * K)  # the liquid amount in shares, rounded down
    assert vault.previewRedeem(max_shares) <= 530 * K
    with boa.env.prank(alice):
        # within her claim but beyond what idle and the queue pay now
        with boa.reverts("vault: not enough liquidity"):
            vault.withdraw(530 * K + 1, alice, alice)
        with boa.reverts("vault: not enough liquidity"):
            vault.redeem(max_shares + vault.convertToShares(USDC), alice, alice)
        # beyond her claim
        with boa.reverts("vault: withdraw more than max"):
            vault.withdraw(vault.convertToAssets(vault.balanceOf(alice)) + 1, alice, alice)
        with boa.reverts("vault: redeem more than max"):
            vault.redeem(vault.balanceOf(alice) + 1, alice, alice)
        with boa.env.anchor():
            vault.redeem(max_shares, alice, alice)
        vault.withdraw(530 * K, alice, alice)
    assert positions(invested) == [290 * K, 180 * K, 0]
    assert vault.maxWithdraw(alice) == 30 * K  # the markets still pay 10k + 20k per call


def test_a_small_holder_can_take_everything_while_idle_covers_it(invested):
    vault, token, bob = invested.vault, invested.token, invested.accounts.bob
    with boa.env.prank(bob):
        shares = vault.deposit(1_234 * USDC, bob)
    assert vault.maxRedeem(bob) == shares
    worth = vault.convertToAssets(shares)
    assert vault.maxWithdraw(bob) == worth <= 1_234 * USDC
    before = token.balanceOf(bob)
    with boa.env.prank(bob):
        vault.redeem(shares, bob, bob)
    assert token.balanceOf(bob) - before == worth


def test_deposit_limit_bounds_deposit_and_mint(invested):
    vault, accounts = invested.vault, invested.accounts
    apply_param(vault, accounts.admin, Param.DEPOSIT_LIMIT, 1_500 * K)  # a tightening: at once
    assert vault.maxDeposit(accounts.bob) == 500 * K
    max_shares = vault.maxMint(accounts.bob)
    assert max_shares == vault.previewDeposit(500 * K)
    with boa.env.prank(accounts.bob):
        with boa.reverts("vault: deposit more than max"):
            vault.deposit(500 * K + 1, accounts.bob)
        with boa.reverts("vault: mint more than max"):
            vault.mint(max_shares + 1, accounts.bob)
        with boa.env.anchor():
            vault.mint(max_shares, accounts.bob)
        vault.deposit(500 * K, accounts.bob)
    assert vault.maxDeposit(accounts.bob) == 0 and vault.maxMint(accounts.bob) == 0


def test_deposit_limit_below_total_assets_means_no_room(invested):
    apply_param(invested.vault, invested.accounts.admin, Param.DEPOSIT_LIMIT, 10 * K)
    assert invested.vault.maxDeposit(invested.accounts.bob) == 0
    assert invested.vault.maxMint(invested.accounts.bob) == 0


def test_withdrawing_for_someone_else_spends_their_allowance(invested):
    vault, alice, bob = invested.vault, invested.accounts.alice, invested.accounts.bob
    with boa.env.prank(bob):
        with boa.reverts("erc20: insufficient allowance"):
            vault.withdraw(K, bob, alice)
    with boa.env.prank(alice):
        vault.approve(bob, 10**18)
    (approval,) = events(vault, "Approval")
    assert (approval.owner, approval.spender, approval.value) == (alice, bob, 10**18)
    with boa.env.prank(bob):
        shares = vault.withdraw(K, bob, alice)
    (withdrawal,) = events(vault, "Withdraw")
    assert (withdrawal.sender, withdrawal.receiver, withdrawal.owner) == (bob, bob, alice)
    assert vault.allowance(alice, bob) == 10**18 - shares


def test_vault_does_not_expose_erc20_minting_or_ownership(vault):
    for name in ("mint_to", "set_minter", "is_minter", "burn", "burn_from", "transfer_ownership", "owner"):
        assert not hasattr(vault, name)


def test_permit_sets_an_allowance_from_a_signature(vault, accounts):
    owner = Account.create()
    deadline = boa.env.timestamp + 3_600
    permit = {"owner": owner.address, "spender": accounts.bob, "value": 123, "nonce": 0, "deadline": deadline}
    domain = {"name": "Vault USDC", "version": "1", "chainId": boa.eval("chain.id"), "verifyingContract": vault.address}
    fields = [("owner", "address"), ("spender", "address"), ("value", "uint256"), ("nonce", "uint256"),
              ("deadline", "uint256")]
    types = {"Permit": [{"name": name, "type": kind} for name, kind in fields]}
    signed = owner.sign_typed_data(domain, types, permit)
    signature = (signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big"))
    vault.permit(owner.address, accounts.bob, 123, deadline, *signature)
    assert vault.allowance(owner.address, accounts.bob) == 123
    assert vault.nonces(owner.address) == 1
    with boa.reverts("erc20: invalid signature"):  # a signature works once
        vault.permit(owner.address, accounts.bob, 123, deadline, *signature)

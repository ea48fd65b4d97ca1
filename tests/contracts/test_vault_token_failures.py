"""A token that returns False instead of reverting must not fool the vault: every transfer's result is checked."""

from pathlib import Path

import boa
import pytest

from tests.contracts.world import USDC, deploy_market, deploy_vault, fund, list_market

SILENT_TOKEN = Path(__file__).with_name("SilentToken.vy")


@pytest.fixture
def silent(accounts):
    """A vault over SilentToken with one listed market; alice deposited 1000, all idle."""
    token = boa.load(str(SILENT_TOKEN))
    vault = deploy_vault(token, accounts)
    market = deploy_market(token, accounts.operator, 0)
    list_market(vault, accounts.admin, market, 10_000, 10**30)
    fund(token, vault, accounts.alice, 10_000 * USDC)
    with boa.env.prank(accounts.alice):
        vault.deposit(1_000 * USDC, accounts.alice)
    return token, vault, market


def test_deposit_reverts_when_transfer_from_returns_false(silent, accounts):
    token, vault, _ = silent
    token.set_failing(False, True, False)
    with boa.env.prank(accounts.alice):
        with boa.reverts("vault: transferFrom failed"):
            vault.deposit(USDC, accounts.alice)
        with boa.reverts("vault: transferFrom failed"):
            vault.mint(10**9, accounts.alice)


def test_withdraw_reverts_when_transfer_returns_false(silent, accounts):
    token, vault, _ = silent
    token.set_failing(True, False, False)
    with boa.env.prank(accounts.alice):
        with boa.reverts("vault: transfer failed"):
            vault.withdraw(USDC, accounts.alice, accounts.alice)
        with boa.reverts("vault: transfer failed"):
            vault.redeem(10**9, accounts.alice, accounts.alice)


def test_rebalance_reverts_when_approve_returns_false(silent, accounts):
    token, vault, market = silent
    token.set_failing(False, False, True)
    with boa.env.prank(accounts.keeper):
        with boa.reverts("vault: approve failed"):
            vault.rebalance([(market.address, 100 * USDC)], b"\x00" * 32)
    token.set_failing(False, False, False)
    with boa.env.prank(accounts.keeper):
        vault.rebalance([(market.address, 100 * USDC)], b"\x00" * 32)
    assert vault.position(market.address) == 100 * USDC

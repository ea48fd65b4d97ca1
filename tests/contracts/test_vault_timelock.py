"""The timelock cannot be sidestepped: a pending change is one per key, is cancelled by a tightening or a
removal, lapses, and is accepted by the admin only."""

import boa
import pytest

from tests.contracts.world import BASE_CAP_ABS, BASE_CAP_BPS, DAY, USDC, Param, events

MONTH = 30 * DAY


def test_a_loosening_overridden_by_a_tightening_cannot_be_applied_later(vault, accounts):
    with boa.env.prank(accounts.admin):
        vault.submit_param(Param.MAX_LOSS_BPS, 50)  # queued
        vault.submit_param(Param.MAX_LOSS_BPS, 5)  # applied at once, and cancels the 50
    boa.env.time_travel(seconds=MONTH)
    with boa.env.prank(accounts.admin), boa.reverts("vault: not queued"):
        vault.accept_param(Param.MAX_LOSS_BPS)
    assert vault.max_loss_bps() == 5


def test_caps_raised_then_lowered_cannot_be_raised_later(vault, accounts, markets):
    m0 = markets[0].address
    with boa.env.prank(accounts.admin):
        vault.submit_market(m0, BASE_CAP_BPS + 1_000, BASE_CAP_ABS)
        vault.submit_market(m0, 1_000, BASE_CAP_ABS)
    boa.env.time_travel(seconds=MONTH)
    with boa.env.prank(accounts.admin), boa.reverts("vault: not queued"):
        vault.accept_market(m0)
    assert tuple(vault.market_config(m0)) == (True, 1_000, BASE_CAP_ABS)


@pytest.mark.parametrize("kind", ["param", "caps"])
def test_a_lapsed_change_cannot_be_accepted(vault, accounts, markets, kind):
    with boa.env.prank(accounts.admin):
        if kind == "param":
            vault.submit_param(Param.MAX_LOSS_BPS, 50)
        else:
            vault.submit_market(markets[0].address, BASE_CAP_BPS + 1, BASE_CAP_ABS)
    boa.env.time_travel(seconds=DAY + vault.PENDING_EXPIRY() + 1)
    with boa.env.prank(accounts.admin), boa.reverts("vault: expired"):
        if kind == "param":
            vault.accept_param(Param.MAX_LOSS_BPS)
        else:
            vault.accept_market(markets[0].address)
    assert vault.max_loss_bps() == 10
    assert vault.market_config(markets[0].address).cap_bps == BASE_CAP_BPS


def test_a_market_removed_while_a_cap_raise_is_queued_cannot_be_relisted_from_that_queue(vault, accounts, markets):
    m2 = markets[2].address  # holds nothing: removed at once
    with boa.env.prank(accounts.admin):
        vault.submit_market(m2, 10_000, 100 * BASE_CAP_ABS)
        vault.remove_market(m2)
    assert events(vault, "CapsRevoked")[0].market == m2
    assert tuple(vault.pending_caps(m2)) == (0, 0, 0)
    boa.env.time_travel(seconds=DAY)
    for caller, reason in ((accounts.alice, "vault: not admin"), (accounts.admin, "vault: not queued")):
        with boa.env.prank(caller), boa.reverts(reason):
            vault.accept_market(m2)
    assert m2 not in vault.markets()
    assert not vault.market_config(m2).enabled


def test_a_forced_removal_cancels_a_queued_cap_raise(vault, accounts, markets):
    m0 = markets[0].address
    with boa.env.prank(accounts.admin):
        vault.submit_market(m0, 10_000, 100 * BASE_CAP_ABS)
        vault.submit_market_removal(m0)
    assert events(vault, "CapsRevoked")[0].market == m0
    boa.env.time_travel(seconds=DAY)
    with boa.env.prank(accounts.admin), boa.reverts("vault: not queued"):
        vault.accept_market(m0)
    assert tuple(vault.market_config(m0)) == (True, 0, 0)


@pytest.mark.parametrize("stranger", ["alice", "keeper", "guardian", "operator"])
def test_a_stranger_cannot_accept(vault, accounts, markets, token, stranger):
    from tests.contracts.world import deploy_market

    fresh = deploy_market(token, accounts.operator, 42)
    with boa.env.prank(accounts.admin):
        vault.submit_param(Param.MAX_LOSS_BPS, 50)
        vault.submit_market(markets[0].address, BASE_CAP_BPS + 1, BASE_CAP_ABS)
        vault.submit_market(fresh.address, 1_000, USDC)
    boa.env.time_travel(seconds=DAY)
    with boa.env.prank(getattr(accounts, stranger)):
        with boa.reverts("vault: not admin"):
            vault.accept_param(Param.MAX_LOSS_BPS)
        with boa.reverts("vault: not admin"):
            vault.accept_market(markets[0].address)
        with boa.reverts("vault: not admin"):
            vault.accept_market(fresh.address)
    assert vault.max_loss_bps() == 10 and fresh.address not in vault.markets()

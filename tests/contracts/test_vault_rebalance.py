"""rebalance: order of work, every guardrail with its revert reason, and the events.

The `invested` world: total 1M, market 0 holds 300k, market 1 200k, 500k idle; caps
50 % / 5M per market, idle floor 5 %, turnover 50 %, loss 0.1 %, cooldown 1 h.
"""

import boa

from tests.contracts.world import (
    BASE_CAP_ABS,
    USDC,
    Param,
    apply_param,
    deploy_market,
    events,
    idle,
    list_market,
    positions,
    rebalance,
)

K = 1_000 * USDC
DECISION = bytes(range(32))


def set_caps(world, market, cap_bps, cap_abs):
    with boa.env.prank(world.accounts.admin):
        world.vault.submit_market(market.address, cap_bps, cap_abs)


def test_success_moves_funds_and_logs_every_market(invested):
    vault, m = invested.vault, invested.markets
    rebalance(invested, {m[0]: 100 * K, m[2]: 250 * K}, DECISION)
    allocated = [(e.market, e.assets_before, e.assets_after) for e in events(vault, "MarketAllocated")]
    (done,) = events(vault, "Rebalanced")
    assert allocated == [(m[0].address, 300 * K, 100 * K), (m[2].address, 0, 250 * K)]
    assert (done.keeper, done.decision_hash) == (invested.accounts.keeper, DECISION)
    assert (done.total_before, done.total_after, done.idle_after, done.moved) == (
        1_000 * K, 1_000 * K, 450 * K, 450 * K)
    assert positions(invested) == [100 * K, 200 * K, 250 * K]  # market 1 not named, kept
    assert idle(invested) == 450 * K
    assert vault.last_rebalance() == boa.env.timestamp


def test_decision_hash_is_an_indexed_topic(invested):
    vault = invested.vault
    rebalance(invested, {}, DECISION)
    (raw,) = [log for log in vault.get_logs(strict=False) if type(log).__name__ == "Rebalanced"]
    topics = [t.to_bytes(32, "big") for t in vault._computation._log_entries[-1][2]]
    assert raw.decision_hash == DECISION and topics[1] == DECISION


def test_withdrawals_happen_before_supplies(invested):
    m = invested.markets
    rebalance(invested, {m[1]: 450 * K, m[2]: 200 * K})
    boa.env.time_travel(seconds=3_600)  # idle is now the 50k floor
    # market 2 is named first, but its extra 200k can only come from market 0's withdrawal
    rebalance(invested, {m[2]: 400 * K, m[0]: 100 * K})
    assert positions(invested) == [100 * K, 450 * K, 400 * K]
    assert idle(invested) == 50 * K


def test_target_zero_redeems_every_share(invested):
    m0 = invested.markets[0]
    with boa.env.prank(invested.accounts.operator):
        m0.set_rate(10**9)
    boa.env.time_travel(seconds=3_600)
    rebalance(invested, {m0: 0})
    assert m0.balanceOf(invested.vault.address) == 0


def test_cooldown(invested):
    m0 = invested.markets[0]
    rebalance(invested, {m0: 310 * K})
    boa.env.time_travel(seconds=3_599)
    with boa.reverts("vault: cooldown"):
        rebalance(invested, {m0: 320 * K})
    boa.env.time_travel(seconds=1)
    rebalance(invested, {m0: 320 * K})


def test_paused_vault_does_not_rebalance(invested):
    with boa.env.prank(invested.accounts.guardian):
        invested.vault.pause()
    with boa.reverts("vault: paused"):
        rebalance(invested, {})


def test_unlisted_market_is_not_allowed(invested, token, accounts):
    stranger = deploy_market(token, accounts.operator, 77)
    with boa.reverts("vault: market not allowed"):
        rebalance(invested, {stranger: K})


def test_a_market_may_be_named_once(invested):
    m0 = invested.markets[0]
    allocations = [(m0.address, 100 * K), (m0.address, 200 * K)]
    with boa.env.prank(invested.accounts.keeper):
        with boa.reverts("vault: duplicate market"):
            invested.vault.rebalance(allocations, DECISION)


def test_absolute_cap(invested):
    m2 = invested.markets[2]
    set_caps(invested, m2, 5_000, 100 * K)
    with boa.reverts("vault: cap exceeded"):
        rebalance(invested, {m2: 100 * K + 1})
    rebalance(invested, {m2: 100 * K})


def test_relative_cap_is_measured_against_total_after(invested):
    m2 = invested.markets[2]
    set_caps(invested, m2, 1_000, BASE_CAP_ABS)
    with boa.reverts("vault: cap exceeded"):
        rebalance(invested, {m2: 100 * K + 1})
    rebalance(invested, {m2: 100 * K})


def test_caps_only_bind_markets_that_went_up(invested):
    m0 = invested.markets[0]
    set_caps(invested, m0, 1_000, 50 * K)  # market 0 already holds 300k
    rebalance(invested, {m0: 200 * K})  # still above both caps, but lower: allowed
    boa.env.time_travel(seconds=3_600)
    with boa.reverts("vault: cap exceeded"):
        rebalance(invested, {m0: 200 * K + 1})


def test_idle_floor(invested):
    m2 = invested.markets[2]
    with boa.reverts("vault: idle below floor"):
        rebalance(invested, {m2: 450 * K + 1})
    rebalance(invested, {m2: 450 * K})  # leaves exactly 5 %


def test_idle_floor_does_not_bind_when_idle_does_not_go_down(invested):
    m = invested.markets
    apply_param(invested.vault, invested.accounts.admin, Param.MIN_IDLE_BPS, 8_000)  # tighter: at once
    rebalance(invested, {m[0]: 100 * K, m[1]: 400 * K})  # idle stays at 500k < 80 %
    boa.env.time_travel(seconds=3_600)
    with boa.reverts("vault: idle below floor"):
        rebalance(invested, {m[2]: 1})
    rebalance(invested, {m[0]: 0})  # idle goes up: allowed


def test_turnover_limit(invested):
    m = invested.markets
    with boa.reverts("vault: turnover exceeded"):
        rebalance(invested, {m[0]: 0, m[2]: 200 * K + 1})  # 300k + 200k + 1 > 50 % of 1M
    rebalance(invested, {m[0]: 0, m[2]: 200 * K})


def test_loss_limit(invested):
    """A market's entry fee makes a supply lossy: 2 % of 100k is 20 bps of the vault, above the 10 bps limit."""
    vault, accounts, m2 = invested.vault, invested.accounts, invested.markets[2]
    with boa.env.prank(accounts.operator):
        m2.set_deposit_fee(2 * 10**16)
    with boa.reverts("vault: loss exceeded"):
        rebalance(invested, {m2: 100 * K})
    apply_param(vault, accounts.admin, Param.MAX_LOSS_BPS, 30)
    rebalance(invested, {m2: 100 * K})  # 20 bps is within the 30 bps of the day's loss budget too
    (done,) = events(vault, "Rebalanced")
    assert done.total_before - done.total_after == 2 * K


def test_loss_is_measured_at_the_accepted_price(invested, token, accounts):
    """A market whose share price was inflated by a donation after listing: the vault's one share is worth
    ~125k at the market's price, but the vault counts it at the price it accepted (the listing price grown at
    most `max_price_growth_bps`), so the 150k supply is a 150k loss even at a 3 % limit."""
    vault = invested.vault
    poisoned = deploy_market(token, accounts.operator, 66)
    list_market(vault, accounts.admin, poisoned, 5_000, 5_000 * K)
    with boa.env.prank(accounts.bob):
        token.approve(poisoned.address, 1)
        poisoned.deposit(1, accounts.bob)
        poisoned.redeem(1, accounts.bob, accounts.bob)  # leaves supply 0, one wei behind
        token.transfer(poisoned.address, 100 * K)  # 1 share now costs ~100k
    apply_param(vault, accounts.admin, Param.MAX_LOSS_BPS, 300)
    with boa.reverts("vault: loss exceeded"):
        rebalance(invested, {poisoned: 150 * K})  # gets 1 share worth ~125k at the market's price
    assert vault.position(poisoned.address) == 0


def test_supplying_more_than_idle_reverts(invested):
    apply_param(invested.vault, invested.accounts.admin, Param.MAX_TURNOVER_BPS, 10_000)
    apply_param(invested.vault, invested.accounts.admin, Param.MIN_IDLE_BPS, 0)
    with boa.reverts("vault: insufficient idle"):
        rebalance(invested, {invested.markets[2]: 500 * K + 1})


def test_fee_is_accrued_at_the_start(invested):
    """The rebalance reports first, then accrues the fee: the fee dilutes shares, not assets, so total_before is
    the full reported totalAssets (what `position` previews), gain included."""
    vault, m0 = invested.vault, invested.markets[0]
    with boa.env.prank(invested.accounts.operator):
        m0.set_rate(10**10)
    boa.env.time_travel(seconds=86_400)
    stored = vault.totalAssets()
    reported = idle(invested) + sum(positions(invested))
    assert reported > stored  # the day's interest, not booked yet
    rebalance(invested, {m0: 300 * K})
    fee = events(vault, "FeeAccrued")
    (done,) = events(vault, "Rebalanced")
    assert fee and fee[0].shares > 0
    assert done.total_before == reported == vault.totalAssets()

"""Timelocked changes: parameters and markets tighten at once and loosen after the timelock.

Pending changes are one per key (a parameter, a market's caps, a market's removal), carry the value they set,
lapse `PENDING_EXPIRY` after they become valid, and are accepted by the admin only.
"""

import boa
import pytest

from tests.contracts.world import (
    BASE_CAP_ABS,
    BASE_CAP_BPS,
    BASE_PARAMS,
    DAY,
    USDC,
    Param,
    apply_param,
    deploy_market,
    deploy_token,
    events,
    list_market,
    rebalance,
)

GETTERS = {
    Param.MIN_REBALANCE_INTERVAL: "min_rebalance_interval",
    Param.MAX_TURNOVER_BPS: "max_turnover_bps",
    Param.MAX_LOSS_BPS: "max_loss_bps",
    Param.MIN_IDLE_BPS: "min_idle_bps",
    Param.DEPOSIT_LIMIT: "deposit_limit",
    Param.PERFORMANCE_FEE_BPS: "performance_fee_bps",
    Param.TIMELOCK: "timelock",
    Param.DAILY_LOSS_BPS: "daily_loss_bps",
    Param.DAILY_TURNOVER_BPS: "daily_turnover_bps",
    Param.MAX_PRICE_GROWTH_BPS: "max_price_growth_bps",
}
# (tighter, looser) than the world's BASE_PARAMS.
CHANGES = {
    Param.MIN_REBALANCE_INTERVAL: (7_200, 60),
    Param.MAX_TURNOVER_BPS: (2_000, 8_000),
    Param.MAX_LOSS_BPS: (5, 50),
    Param.MIN_IDLE_BPS: (1_000, 100),
    Param.DEPOSIT_LIMIT: (1_000 * USDC, 50_000_000 * USDC),
    Param.PERFORMANCE_FEE_BPS: (500, 2_000),
    Param.TIMELOCK: (2 * DAY, DAY // 2),
    Param.DAILY_LOSS_BPS: (10, 100),
    Param.DAILY_TURNOVER_BPS: (10_000, 50_000),
    Param.MAX_PRICE_GROWTH_BPS: (1_000, 50_000),
}
NOTHING_PENDING = (0, 0)


def get(vault, param: Param) -> int:
    return getattr(vault, GETTERS[param])()


def test_constant_ids_match_the_spec(vault):
    for param in Param:
        assert getattr(vault, f"PARAM_{param.name}")() == param


@pytest.mark.parametrize("param", list(Param))
@pytest.mark.parametrize("kind", ["tighter", "equal"])
def test_tightening_or_equal_applies_at_once(vault, accounts, param, kind):
    value = CHANGES[param][0] if kind == "tighter" else BASE_PARAMS[param]
    with boa.env.prank(accounts.admin):
        vault.submit_param(param, value)
    (logged,) = events(vault, "ParamSet")
    assert (logged.param, logged.value) == (param, value)
    assert not events(vault, "ParamSubmitted")
    assert not events(vault, "ParamRevoked")  # nothing was queued to cancel
    assert get(vault, param) == value


@pytest.mark.parametrize("param", list(Param))
def test_loosening_waits_for_the_timelock_and_only_the_admin_accepts(vault, accounts, param):
    value = CHANGES[param][1]
    with boa.env.prank(accounts.admin):
        vault.submit_param(param, value)
    (queued,) = events(vault, "ParamSubmitted")
    valid_at = boa.env.timestamp + DAY
    assert (queued.param, queued.value, queued.valid_at) == (param, value, valid_at)
    assert tuple(vault.pending_param(param)) == (value, valid_at)
    assert get(vault, param) == BASE_PARAMS[param]

    boa.env.time_travel(seconds=DAY - 1)
    with boa.env.prank(accounts.admin), boa.reverts("vault: timelock"):
        vault.accept_param(param)
    boa.env.time_travel(seconds=1)
    for stranger in (accounts.alice, accounts.guardian, accounts.keeper):
        with boa.env.prank(stranger), boa.reverts("vault: not admin"):
            vault.accept_param(param)
    with boa.env.prank(accounts.admin):
        vault.accept_param(param)
    (logged,) = events(vault, "ParamSet")
    assert (logged.param, logged.value) == (param, value)
    assert get(vault, param) == value
    assert tuple(vault.pending_param(param)) == NOTHING_PENDING
    with boa.env.prank(accounts.admin), boa.reverts("vault: not queued"):
        vault.accept_param(param)


def test_a_new_loosening_replaces_the_pending_one(vault, accounts):
    param = Param.MAX_LOSS_BPS
    with boa.env.prank(accounts.admin):
        vault.submit_param(param, 50)
        boa.env.time_travel(seconds=DAY // 2)
        vault.submit_param(param, 40)  # one pending value per parameter, with a fresh delay
    assert tuple(vault.pending_param(param)) == (40, boa.env.timestamp + DAY)
    boa.env.time_travel(seconds=DAY // 2)
    with boa.env.prank(accounts.admin), boa.reverts("vault: timelock"):
        vault.accept_param(param)  # the first submission's delay does not count
    boa.env.time_travel(seconds=DAY // 2)
    with boa.env.prank(accounts.admin):
        vault.accept_param(param)
    assert vault.max_loss_bps() == 40


def test_a_change_lapses_after_the_expiry(vault, accounts):
    param, value = Param.MAX_LOSS_BPS, CHANGES[Param.MAX_LOSS_BPS][1]
    expiry = vault.PENDING_EXPIRY()
    with boa.env.prank(accounts.admin):
        vault.submit_param(param, value)
    boa.env.time_travel(seconds=DAY + expiry)
    with boa.env.anchor(), boa.env.prank(accounts.admin):  # the last second it is valid
        vault.accept_param(param)
    boa.env.time_travel(seconds=1)
    with boa.env.prank(accounts.admin), boa.reverts("vault: expired"):
        vault.accept_param(param)
    assert vault.max_loss_bps() == BASE_PARAMS[param]


@pytest.mark.parametrize("revoker", ["guardian", "admin"])
def test_revoked_change_cannot_be_accepted(vault, accounts, revoker):
    param, value = Param.MAX_LOSS_BPS, CHANGES[Param.MAX_LOSS_BPS][1]
    with boa.env.prank(accounts.admin):
        vault.submit_param(param, value)
    with boa.env.prank(getattr(accounts, revoker)):
        vault.revoke_pending_param(param)
    assert events(vault, "ParamRevoked")[0].param == param
    assert tuple(vault.pending_param(param)) == NOTHING_PENDING
    boa.env.time_travel(seconds=DAY)
    with boa.env.prank(accounts.admin), boa.reverts("vault: not queued"):
        vault.accept_param(param)


def test_a_tightening_cancels_the_pending_loosening(vault, accounts):
    param = Param.MAX_LOSS_BPS
    with boa.env.prank(accounts.admin):
        vault.submit_param(param, 50)
        vault.submit_param(param, 5)
    assert events(vault, "ParamRevoked")[0].param == param
    assert vault.max_loss_bps() == 5
    assert tuple(vault.pending_param(param)) == NOTHING_PENDING


def test_revoke_rejects_what_is_not_queued(vault, accounts, markets):
    with boa.env.prank(accounts.guardian):
        with boa.reverts("vault: not queued"):
            vault.revoke_pending_param(Param.MAX_LOSS_BPS)
        with boa.reverts("vault: not queued"):
            vault.revoke_pending_caps(markets[0].address)
        with boa.reverts("vault: not queued"):
            vault.revoke_pending_removal(markets[0].address)


def test_accepting_a_change_never_submitted_reverts(vault, accounts):
    with boa.env.prank(accounts.admin), boa.reverts("vault: not queued"):
        vault.accept_param(Param.MAX_LOSS_BPS)


def test_shortening_the_timelock_waits_for_the_current_one(vault, accounts):
    with boa.env.prank(accounts.admin):
        vault.submit_param(Param.TIMELOCK, 0)
    assert events(vault, "ParamSubmitted")[0].valid_at == boa.env.timestamp + DAY


@pytest.mark.parametrize(
    ("param", "too_high"),
    [
        (Param.MAX_TURNOVER_BPS, 10_001),
        (Param.MAX_LOSS_BPS, 10_001),
        (Param.MIN_IDLE_BPS, 10_001),
        (Param.PERFORMANCE_FEE_BPS, 3_001),
        (Param.TIMELOCK, 30 * DAY + 1),
        (Param.MIN_REBALANCE_INTERVAL, 365 * DAY + 1),
        (Param.DAILY_LOSS_BPS, 100_001),
        (Param.DAILY_TURNOVER_BPS, 100_001),
        (Param.MAX_PRICE_GROWTH_BPS, 100_001),
    ],
)
def test_values_out_of_bounds_are_rejected(vault, accounts, param, too_high):
    with boa.env.prank(accounts.admin):
        with boa.reverts("vault: bad value"):
            vault.submit_param(param, too_high)
        vault.submit_param(param, too_high - 1)  # the bound itself is allowed


def test_each_parameter_is_set_alone(vault, accounts):
    """Nine parameters share one storage slot: setting each to its bound and back must leave every other as it was."""
    bounds = {Param.MIN_REBALANCE_INTERVAL: 365 * DAY, Param.MAX_TURNOVER_BPS: 10_000, Param.MAX_LOSS_BPS: 10_000,
              Param.MIN_IDLE_BPS: 10_000, Param.DEPOSIT_LIMIT: 2**256 - 1, Param.PERFORMANCE_FEE_BPS: 3_000,
              Param.TIMELOCK: 30 * DAY, Param.DAILY_LOSS_BPS: 100_000, Param.DAILY_TURNOVER_BPS: 100_000,
              Param.MAX_PRICE_GROWTH_BPS: 100_000}
    assert set(bounds) == set(GETTERS) == set(Param)

    def others(param: Param) -> dict[Param, int]:
        return {other: getattr(vault, getter)() for other, getter in GETTERS.items() if other != param}

    for param, bound in bounds.items():
        before = others(param)
        for value in (bound, 1):
            apply_param(vault, accounts.admin, param, value)
            assert getattr(vault, GETTERS[param])() == value
            assert others(param) == before


def test_unknown_parameter_is_rejected(vault, accounts):
    with boa.env.prank(accounts.admin):
        with boa.reverts("vault: bad param"):
            vault.submit_param(max(Param) + 1, 0)


# ---------------------------------------------------------------- markets


@pytest.fixture
def new_market(token, accounts):
    return deploy_market(token, accounts.operator, 99)


def test_listing_a_market_is_queued_then_appended_to_the_queue(vault, accounts, markets, new_market):
    with boa.env.prank(accounts.admin):
        vault.submit_market(new_market.address, 2_000, 100 * USDC)
    (queued,) = events(vault, "CapsSubmitted")
    valid_at = boa.env.timestamp + DAY
    assert (queued.market, queued.cap_bps, queued.cap_abs, queued.valid_at) == (
        new_market.address, 2_000, 100 * USDC, valid_at)
    assert tuple(vault.pending_caps(new_market.address)) == (2_000, 100 * USDC, valid_at)
    assert not vault.market_config(new_market.address).enabled
    with boa.env.prank(accounts.admin), boa.reverts("vault: timelock"):
        vault.accept_market(new_market.address)
    boa.env.time_travel(seconds=DAY)
    with boa.env.prank(accounts.alice), boa.reverts("vault: not admin"):
        vault.accept_market(new_market.address)
    with boa.env.prank(accounts.admin):
        vault.accept_market(new_market.address)
    (capped,) = events(vault, "MarketCapSet")
    assert (capped.market, capped.cap_bps, capped.cap_abs) == (new_market.address, 2_000, 100 * USDC)
    assert tuple(vault.market_config(new_market.address)) == (True, 2_000, 100 * USDC)
    assert tuple(vault.pending_caps(new_market.address)) == (0, 0, 0)
    # priced at listing (one share per asset in an empty market), holding nothing yet
    assert tuple(vault.holdings(new_market.address)) == (0, 10**27)
    expected = [m.address for m in markets] + [new_market.address]
    assert vault.markets() == expected and vault.withdraw_queue() == expected


def test_market_over_another_asset_is_rejected(vault, accounts):
    other_token = deploy_token()
    foreign = deploy_market(other_token, accounts.operator, 98)
    with boa.env.prank(accounts.admin):
        with boa.reverts("vault: wrong asset"):
            vault.submit_market(foreign.address, 1_000, USDC)


def test_market_cap_bps_is_bounded(vault, accounts, new_market):
    with boa.env.prank(accounts.admin):
        with boa.reverts("vault: bad value"):
            vault.submit_market(new_market.address, 10_001, USDC)


def test_lowering_caps_applies_at_once_and_cancels_a_queued_raise(vault, accounts, markets):
    with boa.env.prank(accounts.admin):
        vault.submit_market(markets[0].address, BASE_CAP_BPS + 1, BASE_CAP_ABS)
        vault.submit_market(markets[0].address, 1_000, 10 * USDC)
    assert events(vault, "MarketCapSet")[0].cap_bps == 1_000
    assert events(vault, "CapsRevoked")[0].market == markets[0].address
    assert tuple(vault.market_config(markets[0].address)) == (True, 1_000, 10 * USDC)
    assert tuple(vault.pending_caps(markets[0].address)) == (0, 0, 0)
    boa.env.time_travel(seconds=DAY)
    with boa.env.prank(accounts.admin), boa.reverts("vault: not queued"):
        vault.accept_market(markets[0].address)


@pytest.mark.parametrize(
    ("cap_bps", "cap_abs"),
    [(BASE_CAP_BPS + 1, BASE_CAP_ABS), (BASE_CAP_BPS, BASE_CAP_ABS + 1), (BASE_CAP_BPS + 1, 0)],
)
def test_raising_either_cap_is_queued(vault, accounts, markets, cap_bps, cap_abs):
    with boa.env.prank(accounts.admin):
        vault.submit_market(markets[0].address, cap_bps, cap_abs)
    (queued,) = events(vault, "CapsSubmitted")
    assert (queued.market, queued.cap_bps, queued.cap_abs) == (markets[0].address, cap_bps, cap_abs)
    assert tuple(vault.market_config(markets[0].address)) == (True, BASE_CAP_BPS, BASE_CAP_ABS)
    boa.env.time_travel(seconds=DAY)
    with boa.env.prank(accounts.admin):
        vault.accept_market(markets[0].address)
    assert tuple(vault.market_config(markets[0].address)) == (True, cap_bps, cap_abs)
    assert len(vault.markets()) == len(markets)  # not listed twice


@pytest.mark.parametrize("revoker", ["guardian", "admin"])
def test_revoked_caps_cannot_be_accepted(vault, accounts, new_market, revoker):
    with boa.env.prank(accounts.admin):
        vault.submit_market(new_market.address, 1_000, USDC)
    with boa.env.prank(getattr(accounts, revoker)):
        vault.revoke_pending_caps(new_market.address)
    assert events(vault, "CapsRevoked")[0].market == new_market.address
    boa.env.time_travel(seconds=DAY)
    with boa.env.prank(accounts.admin), boa.reverts("vault: not queued"):
        vault.accept_market(new_market.address)
    assert not vault.market_config(new_market.address).enabled


def test_at_most_sixteen_markets(vault, accounts, token):
    extra = [deploy_market(token, accounts.operator, 10 + i) for i in range(vault.MAX_MARKETS() - 3)]
    for market in extra:
        list_market(vault, accounts.admin, market, 1_000, USDC)
    one_too_many = deploy_market(token, accounts.operator, 50)
    with boa.env.prank(accounts.admin):
        with boa.reverts("vault: too many markets"):
            vault.submit_market(one_too_many.address, 1_000, USDC)


def test_listings_queued_while_there_was_room_cannot_overfill(vault, accounts, token):
    for i in range(vault.MAX_MARKETS() - 4):
        list_market(vault, accounts.admin, deploy_market(token, accounts.operator, 10 + i), 1_000, USDC)
    last, one_too_many = (deploy_market(token, accounts.operator, 50 + i) for i in range(2))
    with boa.env.prank(accounts.admin):  # 15 listed: both are accepted into the queue
        vault.submit_market(last.address, 1_000, USDC)
        vault.submit_market(one_too_many.address, 1_000, USDC)
    boa.env.time_travel(seconds=DAY)
    with boa.env.prank(accounts.admin):
        vault.accept_market(last.address)
        with boa.reverts("vault: too many markets"):
            vault.accept_market(one_too_many.address)
    assert len(vault.markets()) == vault.MAX_MARKETS()


def test_remove_market_at_once_only_with_an_empty_position(invested):
    vault, accounts, markets = invested.vault, invested.accounts, invested.markets
    with boa.env.prank(accounts.admin):
        with boa.reverts("vault: not queued"):  # holding shares: only a forced removal, after the timelock
            vault.remove_market(markets[0].address)
    rebalance(invested, {markets[0]: 0})
    with boa.env.prank(accounts.admin):
        vault.remove_market(markets[0].address)
    (removed,) = events(vault, "MarketRemoved")
    assert (removed.market, removed.written_off) == (markets[0].address, 0)
    remaining = [markets[1].address, markets[2].address]
    assert vault.markets() == remaining and vault.withdraw_queue() == remaining
    assert tuple(vault.market_config(markets[0].address)) == (False, 0, 0)
    assert tuple(vault.holdings(markets[0].address)) == (0, 0)
    boa.env.time_travel(seconds=DAY)
    with boa.reverts("vault: market not allowed"):
        rebalance(invested, {markets[0]: 1})


def test_forced_removal_zeroes_the_caps_then_writes_off_after_the_timelock(invested):
    vault, accounts, markets = invested.vault, invested.accounts, invested.markets
    total = vault.totalAssets()
    with boa.env.prank(accounts.admin):
        vault.submit_market_removal(markets[0].address)
    (submitted,) = events(vault, "MarketRemovalSubmitted")
    assert (submitted.market, submitted.valid_at) == (markets[0].address, boa.env.timestamp + DAY)
    assert vault.pending_removal(markets[0].address) == boa.env.timestamp + DAY
    assert tuple(vault.market_config(markets[0].address)) == (True, 0, 0)  # no new supplies from now on
    boa.env.time_travel(seconds=DAY - 1)
    with boa.env.prank(accounts.admin), boa.reverts("vault: timelock"):
        vault.remove_market(markets[0].address)
    boa.env.time_travel(seconds=1)
    with boa.env.prank(accounts.admin):
        vault.remove_market(markets[0].address)
    assert events(vault, "MarketRemoved")[0].written_off == 300_000 * USDC
    assert vault.totalAssets() == total - 300_000 * USDC
    assert vault.total_held() == 200_000 * USDC
    assert vault.pending_removal(markets[0].address) == 0


@pytest.mark.parametrize("revoker", ["guardian", "admin"])
def test_revoked_removal_cannot_be_carried_out(invested, revoker):
    vault, accounts, m0 = invested.vault, invested.accounts, invested.markets[0]
    with boa.env.prank(accounts.admin):
        vault.submit_market_removal(m0.address)
    with boa.env.prank(getattr(accounts, revoker)):
        vault.revoke_pending_removal(m0.address)
    assert events(vault, "MarketRemovalRevoked")[0].market == m0.address
    boa.env.time_travel(seconds=DAY)
    with boa.env.prank(accounts.admin), boa.reverts("vault: not queued"):
        vault.remove_market(m0.address)
    assert m0.address in vault.markets()


def test_remove_market_rejects_unlisted(vault, accounts, new_market):
    with boa.env.prank(accounts.admin):
        with boa.reverts("vault: market not allowed"):
            vault.remove_market(new_market.address)
        with boa.reverts("vault: market not allowed"):
            vault.submit_market_removal(new_market.address)


def test_withdraw_queue_can_be_reordered(vault, accounts, markets):
    order = [markets[2].address, markets[0].address, markets[1].address]
    with boa.env.prank(accounts.admin):
        vault.set_withdraw_queue(order)
    assert events(vault, "WithdrawQueueSet")[0].markets == order
    assert vault.withdraw_queue() == order
    assert vault.markets() == [m.address for m in markets]


@pytest.mark.parametrize("queue", [lambda m: [m[0], m[1]], lambda m: [m[2]], lambda m: []])
def test_withdraw_queue_may_leave_markets_out(vault, accounts, markets, queue):
    order = queue([m.address for m in markets])
    with boa.env.prank(accounts.admin):
        vault.set_withdraw_queue(order)
    assert vault.withdraw_queue() == order
    assert vault.markets() == [m.address for m in markets]  # still listed and counted


@pytest.mark.parametrize(
    ("queue", "reason"),
    [
        (lambda m, x: [m[0], m[1], m[2], m[0]], "vault: duplicate market"),
        (lambda m, x: [m[0], m[1], m[1]], "vault: duplicate market"),
        (lambda m, x: [m[0], m[1], x], "vault: market not allowed"),
    ],
)
def test_withdraw_queue_holds_listed_markets_once(vault, accounts, markets, new_market, queue, reason):
    with boa.env.prank(accounts.admin):
        with boa.reverts(reason):
            vault.set_withdraw_queue(queue([m.address for m in markets], new_market.address))

"""The Python mirror of the vault's guardrails: every revert reason, the boundaries, config validation."""

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from strategy.data import load_market_history
from strategy.guardrails import (
    BPS,
    DEFAULT_CAP_BPS,
    DRIFT_BPS,
    MAX_MARKETS,
    BreachKind,
    Guardrails,
    InsufficientIdle,
    MarketLimits,
    Reason,
    VaultState,
    breaches,
    check_rebalance,
    simulate_rebalance,
)
from tests.shared_data import real_dataset

A, B, C = "0xaaaa", "0xbbbb", "0xcccc"


def guardrails(**overrides) -> Guardrails:
    values = {
        "min_rebalance_interval": 3600,
        "max_turnover_bps": BPS,
        "max_loss_bps": 0,
        "min_idle_bps": 0,
        "markets": {A: MarketLimits(cap_bps=BPS, cap_abs=10**30), B: MarketLimits(cap_bps=BPS, cap_abs=10**30)},
    }
    return Guardrails(**(values | overrides))


def state(idle: int, positions: dict[str, int], last_rebalance: int = 0, paused: bool = False) -> VaultState:
    return VaultState(idle=idle, positions=positions, last_rebalance=last_rebalance, paused=paused)


def reasons(before: VaultState, after: VaultState, rails: Guardrails, now: int = 10**6) -> list[Reason]:
    return [violation.reason for violation in check_rebalance(before, after, now, rails)]


# --- each revert reason, with its boundary ---------------------------------------------------------------


def test_a_plain_rebalance_within_every_limit_passes():
    before = state(1000, {A: 0, B: 0})
    assert reasons(before, state(0, {A: 600, B: 400}), guardrails()) == []


def test_paused_vault_rejects_even_a_no_op():
    before = state(1000, {A: 0}, paused=True)
    assert reasons(before, before, guardrails()) == [Reason.PAUSED]
    assert Reason.PAUSED.value == "vault: paused"


def test_cooldown_holds_until_interval_has_passed():
    before = state(1000, {A: 0}, last_rebalance=5000)
    after = state(900, {A: 100})
    assert reasons(before, after, guardrails(), now=5000 + 3599) == [Reason.COOLDOWN]
    assert reasons(before, after, guardrails(), now=5000 + 3600) == []
    assert Reason.COOLDOWN.value == "vault: cooldown"


def test_moving_into_an_unlisted_market_is_not_allowed():
    before = state(1000, {A: 0})
    assert reasons(before, state(900, {A: 0, C: 100}), guardrails()) == [Reason.MARKET_NOT_ALLOWED]
    assert Reason.MARKET_NOT_ALLOWED.value == "vault: market not allowed"


def test_an_unchanged_unlisted_position_is_not_named():
    before = state(1000, {A: 0, C: 50})
    assert reasons(before, state(900, {A: 100, C: 50}), guardrails()) == []


def test_absolute_cap_is_inclusive():
    rails = guardrails(markets={A: MarketLimits(cap_bps=BPS, cap_abs=300)})
    before = state(1000, {A: 0})
    assert reasons(before, state(700, {A: 300}), rails) == []
    assert reasons(before, state(699, {A: 301}), rails) == [Reason.CAP_EXCEEDED]
    assert Reason.CAP_EXCEEDED.value == "vault: cap exceeded"


def test_bps_cap_compares_position_times_10000_with_cap_times_total_after():
    rails = guardrails(markets={A: MarketLimits(cap_bps=3333, cap_abs=10**30)})
    before = state(3, {A: 0})
    # 1 * 10000 > 3333 * 3: one unit is already above 33.33 % of 3.
    assert reasons(before, state(2, {A: 1}), rails) == [Reason.CAP_EXCEEDED]
    before = state(10_000, {A: 0})
    assert reasons(before, state(6667, {A: 3333}), rails) == []
    assert reasons(before, state(6666, {A: 3334}), rails) == [Reason.CAP_EXCEEDED]


def test_caps_bind_only_markets_that_went_up():
    # Caps were tightened below the current position: holding or reducing it is allowed, adding is not.
    rails = guardrails(markets={A: MarketLimits(cap_bps=1000, cap_abs=100), B: MarketLimits(BPS, 10**30)})
    before = state(0, {A: 900, B: 100})
    assert reasons(before, state(0, {A: 800, B: 200}), rails) == []
    assert reasons(before, state(100, {A: 800, B: 100}), rails) == []
    assert reasons(before, state(0, {A: 901, B: 99}), rails) == [Reason.CAP_EXCEEDED]


def test_a_cap_of_zero_forbids_any_increase():
    rails = guardrails(markets={A: MarketLimits(cap_bps=0, cap_abs=10**30)})
    assert reasons(state(1000, {A: 0}), state(999, {A: 1}), rails) == [Reason.CAP_EXCEEDED]


def test_idle_floor_is_inclusive():
    rails = guardrails(min_idle_bps=1000)
    before = state(1000, {A: 0})
    assert reasons(before, state(100, {A: 900}), rails) == []
    assert reasons(before, state(99, {A: 901}), rails) == [Reason.IDLE_BELOW_FLOOR]
    assert Reason.IDLE_BELOW_FLOOR.value == "vault: idle below floor"


def test_idle_floor_does_not_bind_when_idle_did_not_go_down():
    rails = guardrails(min_idle_bps=5000)
    before = state(10, {A: 900, B: 90})  # already far below the floor
    assert reasons(before, state(10, {A: 400, B: 590}), rails) == []
    assert reasons(before, state(50, {A: 860, B: 90}), rails) == []
    assert reasons(before, state(9, {A: 901, B: 90}), rails) == [Reason.IDLE_BELOW_FLOOR]


def test_turnover_counts_every_unit_moved_in_either_direction():
    rails = guardrails(max_turnover_bps=2000)
    before = state(0, {A: 500, B: 500})
    # 100 out of A and 100 into B: moved = 200 = 20 % of 1000.
    assert reasons(before, state(0, {A: 400, B: 600}), rails) == []
    assert reasons(before, state(0, {A: 399, B: 601}), rails) == [Reason.TURNOVER_EXCEEDED]
    assert Reason.TURNOVER_EXCEEDED.value == "vault: turnover exceeded"


def test_turnover_zero_forbids_every_move():
    rails = guardrails(max_turnover_bps=0)
    before = state(1000, {A: 0})
    assert reasons(before, before, rails) == []
    assert reasons(before, state(999, {A: 1}), rails) == [Reason.TURNOVER_EXCEEDED]


def test_a_market_missing_from_the_after_state_counts_as_emptied():
    rails = guardrails(max_turnover_bps=1000)
    assert reasons(state(500, {A: 500}), state(1000, {}), rails) == [Reason.TURNOVER_EXCEEDED]


def test_loss_is_checked_on_total_assets_inclusively():
    rails = guardrails(max_loss_bps=100)
    before = state(0, {A: 10_000})
    assert reasons(before, state(0, {A: 9900}), rails) == []
    assert reasons(before, state(0, {A: 9899}), rails) == [Reason.LOSS_EXCEEDED]
    assert reasons(before, state(0, {A: 9999}), guardrails(max_loss_bps=0)) == [Reason.LOSS_EXCEEDED]
    assert Reason.LOSS_EXCEEDED.value == "vault: loss exceeded"


def test_all_violations_are_listed_in_the_contracts_order():
    rails = guardrails(
        min_idle_bps=5000,
        max_turnover_bps=100,
        max_loss_bps=0,
        markets={A: MarketLimits(cap_bps=BPS, cap_abs=10)},
    )
    before = state(1000, {A: 0}, last_rebalance=100, paused=True)
    after = state(0, {A: 500, C: 400})
    assert reasons(before, after, rails, now=100) == [
        Reason.PAUSED,
        Reason.COOLDOWN,
        Reason.MARKET_NOT_ALLOWED,
        Reason.CAP_EXCEEDED,
        Reason.IDLE_BELOW_FLOOR,
        Reason.TURNOVER_EXCEEDED,
        Reason.LOSS_EXCEEDED,
    ]
    details = [violation.detail for violation in check_rebalance(before, after, 100, rails)]
    assert "market 0xcccc is not listed" in details
    assert any("moved 900" in detail for detail in details)


# --- integer formulas agree with exact rational arithmetic ------------------------------------------------

amounts = st.integers(0, 10**30)
bps = st.one_of(st.sampled_from([0, 1, 9999, BPS]), st.integers(0, BPS))


@given(before_a=amounts, after_a=amounts, idle=amounts, cap_bps=bps, cap_abs=amounts, turnover=bps, idle_bps=bps)
def test_integer_checks_equal_exact_ratio_comparisons(before_a, after_a, idle, cap_bps, cap_abs, turnover, idle_bps):
    rails = guardrails(
        max_turnover_bps=turnover, min_idle_bps=idle_bps, markets={A: MarketLimits(cap_bps=cap_bps, cap_abs=cap_abs)}
    )
    before = state(idle + max(0, after_a - before_a), {A: before_a})
    after = simulate_rebalance(before, {A: after_a})
    total = before.total
    expected = []
    if after_a > before_a and (after_a > cap_abs or after_a > Fraction(cap_bps, BPS) * total):
        expected.append(Reason.CAP_EXCEEDED)
    if after.idle < before.idle and after.idle < Fraction(idle_bps, BPS) * total:
        expected.append(Reason.IDLE_BELOW_FLOOR)
    if abs(after_a - before_a) > Fraction(turnover, BPS) * total:
        expected.append(Reason.TURNOVER_EXCEEDED)
    assert reasons(before, after, rails) == expected


# --- lossless execution --------------------------------------------------------------------------------


def test_simulate_withdraws_then_supplies_and_keeps_unnamed_markets():
    before = state(10, {A: 500, B: 300}, last_rebalance=7)
    after = simulate_rebalance(before, {A: 100, C: 410})
    assert after == state(0, {A: 100, B: 300, C: 410}, last_rebalance=7)
    assert after.total == before.total


def test_simulate_rejects_supplying_more_than_idle_plus_withdrawals():
    with pytest.raises(InsufficientIdle, match="idle is only 10"):
        simulate_rebalance(state(10, {A: 500}), {A: 400, B: 111})


def test_simulate_rejects_negative_targets():
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        simulate_rebalance(state(10, {A: 500}), {A: -1})


def test_executing_stamps_the_time_only_when_accepted():
    """As the contract: a lossless rebalance (`backtest.execution.execute` without slippage) moves the state and
    stamps `last_rebalance` only when every guardrail holds."""
    from backtest.execution import execute

    rails = guardrails(max_turnover_bps=1000)
    before = state(1000, {A: 0})
    accepted = execute(before, {A: 100}, 4000, rails, slippage_bps=0.0)
    assert accepted.accepted and accepted.state == state(900, {A: 100}, last_rebalance=4000)
    rejected = execute(before, {A: 101}, 4000, rails, slippage_bps=0.0)
    assert not rejected.accepted and rejected.state == before
    assert rejected.rejections == [str(Reason.TURNOVER_EXCEEDED)]


# --- validation ------------------------------------------------------------------------------------------

VALID = {
    "min_rebalance_interval": 3600,
    "max_turnover_bps": 2000,
    "max_loss_bps": 10,
    "min_idle_bps": 500,
    "markets": {"pool-1": {"cap_bps": 5000, "cap_abs": 10**24}, "pool-2": {"cap_bps": 0, "cap_abs": 0}},
}


def test_from_mapping_builds_guardrails():
    rails = Guardrails.from_mapping(VALID)
    assert rails.max_turnover_bps == 2000
    assert rails.markets["pool-1"] == MarketLimits(cap_bps=5000, cap_abs=10**24)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"min_idle_bps": None}, r"min_idle_bps\n  Field required"),
        ({"max_turnover": 5}, r"max_turnover\n  Unexpected keyword argument"),
        ({"max_loss_bps": 10_001}, r"max_loss_bps\n  Input should be less than or equal to 10000"),
        ({"max_turnover_bps": -1}, r"max_turnover_bps\n  Input should be greater than or equal to 0"),
        ({"min_rebalance_interval": 1.5}, r"min_rebalance_interval\n  Input should be a valid integer"),
        ({"min_idle_bps": True}, r"min_idle_bps\n  Input should be a valid integer"),
        ({"markets": {"pool-1": {"cap_bps": 1}}}, r"markets\.pool-1\.cap_abs\n  Field required"),
        ({"markets": {"pool-1": {"cap_bps": 1, "cap_abs": 1, "cap": 2}}}, r"markets\.pool-1\.cap\n  Unexpected"),
        ({"markets": {"": {"cap_bps": 1, "cap_abs": 1}}}, r"at least 1 character"),
        ({"markets": {f"m{i}": {"cap_bps": 1, "cap_abs": 1} for i in range(17)}},
         r"markets\n  Dictionary should have at most 16"),
    ],
)
def test_from_mapping_names_the_bad_key(change, message):
    data = {key: value for key, value in (VALID | change).items() if value is not None}
    with pytest.raises(ValueError, match=message):
        Guardrails.from_mapping(data)


def test_construction_validates_too():
    with pytest.raises(ValidationError, match="cap_bps"):
        MarketLimits(cap_bps=10_001, cap_abs=0)
    with pytest.raises(ValidationError, match="idle"):
        VaultState(idle=-1, positions={}, last_rebalance=0, paused=False)
    with pytest.raises(ValidationError, match="at most 16"):
        guardrails(markets={str(i): MarketLimits(0, 0) for i in range(MAX_MARKETS + 1)})


# --- outside the limits: a breach, or interest's drift -----------------------------------------------------


def test_a_market_past_its_cap_by_interest_drift_is_no_breach_one_unit_further_is():
    rails = guardrails(markets={A: MarketLimits(cap_bps=4000, cap_abs=10**30), B: MarketLimits(BPS, 10**30)})
    drift = DRIFT_BPS * 10**6 // BPS  # of a total of 1,000,000: 1,000 units
    assert breaches(state(0, {A: 400_000 + drift, B: 600_000 - drift}), rails) == []
    [breach] = breaches(state(0, {A: 400_001 + drift, B: 599_999 - drift}), rails)
    assert (breach.kind, breach.market, breach.amount, breach.limit) == (BreachKind.CAP, A, drift + 1, 400_000)


def test_idle_below_its_floor_by_interest_drift_is_no_breach_one_unit_further_is():
    rails = guardrails(min_idle_bps=500)
    drift = DRIFT_BPS * 10**6 // BPS
    assert breaches(state(50_000 - drift, {A: 950_000 + drift}), rails) == []
    assert [(b.kind, b.amount, b.limit) for b in breaches(state(49_999 - drift, {A: 950_001 + drift}), rails)] == [
        (BreachKind.IDLE_FLOOR, drift + 1, 50_000)]


def test_a_day_at_the_fastest_real_rate_leaves_a_position_at_its_cap_within_the_drift():
    """Real data only: every market of the shared dataset, on its highest-APY day, carries a position at the
    default cap (the rest of the vault idle, earning nothing: the fastest drift) less far than a breach."""
    dataset = real_dataset()
    if dataset is None:
        pytest.skip("no real market history in ../shared/data")
    highest = load_market_history(dataset.history).frame.groupby("pool")["apy"].max()
    rails = guardrails(markets={A: MarketLimits(cap_bps=DEFAULT_CAP_BPS, cap_abs=10**30)})
    total = 10**12
    at_cap = DEFAULT_CAP_BPS * total // BPS
    for pool, apy in highest.items():
        grown = round(at_cap * (1 + apy / 100) ** (1 / 365))
        assert grown > at_cap
        assert breaches(state(total - at_cap, {A: grown}), rails) == [], (pool, apy)

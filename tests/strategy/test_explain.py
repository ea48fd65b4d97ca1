"""Why an allocation is what it is (`strategy.explain`): the markets' parts add up to the allocator's own expected
gain, and each limit is named when, and only when, the allocator's plan stops at it."""

import pytest

from strategy.allocator import AllocatorConfig, MarketForecast, allocate
from strategy.explain import Limit, explain
from strategy.guardrails import BPS, BreachKind, Guardrails, MarketLimits, VaultState

A, B, C = "0xaaaa", "0xbbbb", "0xcccc"
T = 1_000_000_000  # 1,000 units of a 6-decimal asset
UNCAPPED = 2**256 - 1
GOOD, FAIR = MarketForecast(apy_pct=8.0, p_event=0.01), MarketForecast(apy_pct=5.0, p_event=0.02)


def rails(*, cap_bps: int = BPS, turnover_bps: int = BPS, loss_bps: int = 10, idle_bps: int = 0) -> Guardrails:
    return Guardrails(min_rebalance_interval=0, max_turnover_bps=turnover_bps, max_loss_bps=loss_bps,
                      min_idle_bps=idle_bps, markets=dict.fromkeys((A, B, C), MarketLimits(cap_bps=cap_bps,
                                                                                           cap_abs=UNCAPPED)))


def vault(idle: int, **positions: int) -> VaultState:
    return VaultState(idle=idle, positions={A: positions.get("a", 0), B: positions.get("b", 0)} | (
        {C: positions["c"]} if "c" in positions else {}), last_rebalance=0, paused=False)


CONFIG = AllocatorConfig(horizon_days=7, gas_cost=2_000.0, slippage_bps=1.0)


def decided(state: VaultState, guardrails: Guardrails, config: AllocatorConfig = CONFIG,
            forecasts: dict[str, MarketForecast] | None = None):
    forecasts = {A: GOOD, B: FAIR} if forecasts is None else forecasts
    allocation = allocate(state, guardrails, forecasts, config)
    return allocation, explain(state, guardrails, forecasts, allocation.targets, config)


def test_the_markets_parts_add_up_to_the_allocators_expected_gain_and_the_cap_and_floor_bind() -> None:
    allocation, why = decided(vault(T), rails(cap_bps=6000, idle_bps=500))
    # the best market filled to its 60 % cap, less what rounding and slippage may take from the total after
    assert allocation.changed and 599_000_000 < allocation.targets[A] < 600_000_000
    assert why.gain == pytest.approx(allocation.expected_gain, rel=1e-12)
    assert why.markets[A].gain > why.markets[B].gain > 0  # B only takes what A's cap leaves
    assert why.markets[A].limit == "at its cap" and why.markets[B].limit == ""
    assert why.markets[C].limit == "no forecast" and why.markets[C].gain is None
    assert why.binding == (Limit.IDLE_FLOOR,)  # 5 % idle left: the floor stops B, not the turnover


def test_the_turnover_limit_binds_when_it_stops_the_plan() -> None:
    allocation, why = decided(vault(T), rails(cap_bps=6000, turnover_bps=3000, idle_bps=500))
    assert sum(allocation.trades.values()) == 300_000_000
    assert why.binding == (Limit.TURNOVER,) and why.markets[A].limit == ""  # A got 30 %, below its cap


def test_the_loss_limit_binds_when_the_slippage_of_moving_more_would_lose_more_than_it_allows() -> None:
    costly = AllocatorConfig(horizon_days=7, gas_cost=2_000.0, slippage_bps=5.0)  # 2 bps loss: 40 % can move
    allocation, why = decided(vault(T), rails(cap_bps=6000, loss_bps=2), costly)
    assert sum(allocation.trades.values()) == 400_000_000
    assert why.binding == (Limit.LOSS,)
    assert why.gain == pytest.approx(allocation.expected_gain, rel=1e-12)


def test_the_risk_budget_binds_when_no_more_expected_loss_may_be_added() -> None:
    budgeted = AllocatorConfig(horizon_days=7, gas_cost=2_000.0, slippage_bps=1.0, risk_budget=0.00002)  # A alone: 40 %
    allocation, why = decided(vault(T), rails(cap_bps=6000), budgeted)
    assert allocation.targets[B] == 0 and 399_000_000 < allocation.targets[A] <= 400_000_000
    assert why.binding == (Limit.RISK_BUDGET,) and why.markets[A].limit == ""


def test_a_hold_gains_nothing_and_names_what_keeps_it_there() -> None:
    full = vault(50_000_000, a=600_000_000, b=350_000_000)  # A at its cap, idle at its 5 % floor
    allocation, why = decided(full, rails(cap_bps=6000, idle_bps=500))
    assert not allocation.changed
    assert why.gain == 0.0 and all(m.gain in (0.0, None) for m in why.markets.values())
    assert why.markets[A].limit == "at its cap" and why.binding == (Limit.IDLE_FLOOR,)


def test_a_breach_the_keeper_found_is_named_on_its_market() -> None:
    over = vault(100_000_000, a=700_000_000, b=200_000_000)  # A over its 60 % cap after a withdrawal
    allocation, why = decided(over, rails(cap_bps=6000, idle_bps=500))
    assert [breach.kind for breach in why.breaches] == [BreachKind.CAP]
    assert why.markets[A].limit == "over its cap"
    assert why.markets[A].target < 700_000_000 and why.markets[A].gain < 0  # the repair costs A's better yield
    assert why.gain == pytest.approx(allocation.expected_gain, rel=1e-12)


def test_an_empty_vault_binds_nothing() -> None:
    _, why = decided(vault(0), rails(idle_bps=500))
    assert why.binding == () and why.gain == 0.0


def test_the_gas_a_decision_was_priced_at_is_recovered_from_its_journaled_gain() -> None:
    """Screens do not know the gas price of a past decision: with its expected gain they find the same parts."""
    state, guardrails = vault(T), rails(cap_bps=6000, idle_bps=500)
    allocation, why = decided(state, guardrails)
    unpriced = AllocatorConfig(horizon_days=7, slippage_bps=1.0)  # no gas
    recovered = explain(state, guardrails, {A: GOOD, B: FAIR}, allocation.targets, unpriced, allocation.expected_gain)
    assert [recovered.markets[m].gain for m in (A, B)] == pytest.approx([why.markets[m].gain for m in (A, B)],
                                                                         rel=1e-9)
    assert recovered.gain == pytest.approx(allocation.expected_gain, rel=1e-12)
    assert explain(state, guardrails, {A: GOOD, B: FAIR}, allocation.targets, unpriced).gain > recovered.gain


def test_a_diluted_markets_part_is_what_its_own_supply_leaves_it() -> None:
    """A market of supply 500 units beside the vault: its part is the yield the vault's own money leaves it, and the
    parts still add up to the allocator's gain, with the gas recovered from it as for any decision."""
    thin = {A: MarketForecast(apy_pct=8.0, p_event=0.01, supply=500_000_000), B: FAIR}
    state, guardrails = vault(T), rails(cap_bps=9000)
    allocation, why = decided(state, guardrails, forecasts=thin)
    assert 0 < allocation.targets[A] < allocation.targets[B]
    deep, _ = decided(state, guardrails)
    assert deep.targets[A] > 0.89 * T > deep.targets[B]  # the deep market of the same forecast takes its cap
    assert why.gain == pytest.approx(allocation.expected_gain, rel=1e-12)
    undiluted = AllocatorConfig(horizon_days=7, slippage_bps=1.0)
    recovered = explain(state, guardrails, thin, allocation.targets, undiluted, allocation.expected_gain)
    assert recovered.markets[A].gain == pytest.approx(why.markets[A].gain, rel=1e-9)

"""Why the allocator chose an allocation: each market's part of the expected gain, and the limits that bound it.

The one explanation every screen shows (`keeper status`, `vault info`, the depositors' page), made from what the
keeper journals for a decision (its forecasts and targets) and the vault as the keeper saw it (its state and
guardrails at the decision's block). Nothing is derived again here: a market's gain is the allocator's
`trade_value` of its trade (its value at the target less at the position, diluted where the journaled forecast
knows the market's supply), and a limit binds when the targets reach the bound the allocator computes itself
(`position_caps`, `mined_idle_floor`, `move_limit`, `risk_limit`), within the rounding of its plan.
"""

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from fractions import Fraction

from strategy.allocator import (
    AllocatorConfig,
    MarketForecast,
    expected_loss,
    mined_idle_floor,
    move_limit,
    position_caps,
    risk_limit,
    trade_value,
    withdrawal_room,
)
from strategy.guardrails import Breach, BreachKind, Guardrails, VaultState, breaches

# A limit met within this share of total assets binds: the allocator's integer plan stops that close to a bound
# (its solver meets the sums to 1e-9 of the total, and each market's amount is rounded to a unit).
ROUNDING = 1e-6


class Limit(StrEnum):
    """A vault-wide limit the targets reach: without it the allocator would have gone further."""

    IDLE_FLOOR = "idle floor"  # no more can leave idle
    TURNOVER = "turnover limit"  # per rebalance, with what is left of the daily turnover budget
    LOSS = "loss limit"  # the slippage of moving more would lose more than the loss limit allows
    RISK_BUDGET = "risk budget"  # strategy.allocator risk_budget: no more expected loss may be added


@dataclass(frozen=True)
class MarketWhy:
    position: int  # when the keeper decided, asset units
    target: int
    forecast: MarketForecast | None  # None: the keeper had no forecast for the market's pool
    gain: float | None  # its trade's part of the expected gain over the horizon, net of gas and slippage
    limit: str  # "at its cap", "at its liquidity", "over its cap" (a breach the keeper found), "no forecast", or ""


@dataclass(frozen=True)
class AllocationWhy:
    markets: dict[str, MarketWhy]  # every listed market
    binding: tuple[Limit, ...]
    breaches: tuple[Breach, ...]  # the limits the vault was outside of when the keeper decided
    horizon_days: float

    @property
    def gain(self) -> float:
        """The expected gain of the whole plan: the sum of the markets' parts."""
        return sum(market.gain or 0.0 for market in self.markets.values())

    def binding_text(self) -> str:
        return ", ".join(self.binding) or "none"


def explain(state: VaultState, guardrails: Guardrails, forecasts: Mapping[str, MarketForecast],
            targets: Mapping[str, int], config: AllocatorConfig, expected_gain: float | None = None) -> AllocationWhy:
    """Why `targets` (every listed market's, as the allocator returned them for `state`) are what they are.

    With the allocation's `expected_gain` (as journaled), the gas each trade was priced at is the one that makes
    the markets' parts add up to it (`config.gas_cost` is then ignored): the gas price a decision was made at is
    not journaled, and today's would not add up."""
    if expected_gain is not None:
        config = replace(config, gas_cost=_gas_per_trade(state, forecasts, targets, config, expected_gain))
    total = state.total
    slack = ROUNDING * total
    forecast = {market: forecasts[market] for market in guardrails.markets if market in forecasts}
    caps = position_caps(total, guardrails, list(forecast), config)
    outside = tuple(breaches(state, guardrails))
    over_cap = {breach.market for breach in outside if breach.kind is BreachKind.CAP}
    markets = {}
    for market in guardrails.markets:
        position = state.position(market)
        target = int(targets.get(market, position))
        if market not in forecast:  # held: the allocator moves only the markets it has a forecast for
            gain, limit = None, "no forecast"
        else:  # a market it does not trade pays no gas
            gain = trade_value(position, target - position, forecast[market], config) if target != position else 0.0
            limit = "at its cap" if target >= caps[market] - slack else ""
            if market in state.withdrawable and position - target >= withdrawal_room(state, market) - slack:
                limit = "at its liquidity"  # the market pays back no more now (near 100 % utilization)
        markets[market] = MarketWhy(position, target, forecast.get(market), gain,
                                    "over its cap" if market in over_cap else limit)
    return AllocationWhy(markets, _binding(state, guardrails, forecast, markets, config) if total else (), outside,
                         config.horizon_days)


def _gas_per_trade(state: VaultState, forecasts: Mapping[str, MarketForecast], targets: Mapping[str, int],
                   config: AllocatorConfig, expected_gain: float) -> float:
    """The gas g of one trade for which the trades' `trade_value`s add up to `expected_gain` (it is linear in g)."""
    free = replace(config, gas_cost=0.0)
    trades = {market: target - state.position(market) for market, target in targets.items()
              if market in forecasts and target != state.position(market)}
    if not trades:
        return config.gas_cost
    gross = sum(trade_value(state.position(market), delta, forecasts[market], free) for market, delta in trades.items())
    return (gross - expected_gain) / len(trades)


def _binding(state: VaultState, guardrails: Guardrails, forecasts: Mapping[str, MarketForecast],
             markets: Mapping[str, MarketWhy], config: AllocatorConfig) -> tuple[Limit, ...]:
    total, slack = state.total, ROUNDING * state.total
    binding = []
    if total - sum(m.target for m in markets.values()) <= mined_idle_floor(state, guardrails) + slack:
        binding.append(Limit.IDLE_FLOOR)
    moved = sum(abs(m.target - m.position) for m in markets.values())
    invested = total - state.idle
    limit = move_limit(total, guardrails, config, invested)
    if moved and moved >= limit - slack:
        by_turnover = move_limit(total, guardrails, replace(config, slippage_bps=0.0), invested)
        binding.append(Limit.LOSS if limit < by_turnover else Limit.TURNOVER)
    budget = risk_limit(state, forecasts, config)
    targets = {market: m.target for market, m in markets.items()}
    if budget is not None and expected_loss(targets, forecasts, config) >= budget * (1 - Fraction(ROUNDING)):
        binding.append(Limit.RISK_BUDGET)
    return tuple(binding)

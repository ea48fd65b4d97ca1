"""The one decision step, shared by the keeper's cycle and both backtest modes: forecasts, positions, guardrails
and costs in; a verdict out. Pure: no chain, no clock, no I/O.

Missing-forecast policy (one for all callers): a listed market whose data stopped (`stale`) is unknown and
gets `strategy.allocator.UNKNOWN_MARKET`, so the vault leaves it as fast as the guardrails allow; a listed
market with fresh data but no forecast (a model warming up, a prediction that was not finite) is held where
it is; a market the vault does not list is ignored.

Verdicts: `hold` (the allocator keeps the positions), `skip` (the Python mirror of the contract says the vault
would refuse now for a reason that passes by itself: cooldown or pause), `would_revert` (refused for any
other reason: the keeper does not send it), `send` (these allocations).
"""

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from strategy.allocator import UNKNOWN_MARKET, Allocation, AllocatorConfig, MarketForecast, allocate
from strategy.guardrails import (
    Breach,
    Guardrails,
    Reason,
    VaultState,
    Violation,
    check_rebalance,
    simulate_rebalance,
)
from strategy.market_supply import MarketDepth

# How forecasts become targets: the allocator, or a baseline's own rule (the same signature).
Planner = Callable[[VaultState, Guardrails, Mapping[str, MarketForecast], AllocatorConfig], Allocation]
# Refusals that end by themselves: waiting is the answer, not a different plan.
_TRANSIENT = frozenset({Reason.COOLDOWN, Reason.PAUSED})


class VerdictKind(StrEnum):
    HOLD = "hold"
    SKIP = "skip"
    WOULD_REVERT = "would_revert"
    SEND = "send"


@dataclass(frozen=True)
class Verdict:
    kind: VerdictKind
    allocation: Allocation
    violations: tuple[Violation, ...] = ()

    def reason(self, assets: Callable[[int], str] | None = None) -> str:
        """Why it is not sent, in the contract's words (empty for `send`); amounts written by `assets` (the
        caller knows the asset's decimals), else in base units."""
        if self.kind == VerdictKind.HOLD:
            kept = f"allocator kept the positions ({self.allocation.status.value})"
            if self.allocation.breaches:
                kept += f"; still outside the vault's limits: {_breaches_text(self.allocation.breaches, assets)}"
            return kept
        return "; ".join(f"{v.reason.value} ({v.detail})" for v in self.violations)

    def why(self, assets: Callable[[int], str] | None = None) -> str:
        """What forced the trades of a plan that moves back inside the vault's limits (empty otherwise)."""
        if not self.allocation.repairing:
            return ""
        return f"moving back inside the vault's limits ({_breaches_text(self.allocation.breaches, assets)})"


def _breaches_text(breaches: Iterable[Breach], assets: Callable[[int], str] | None) -> str:
    return "; ".join(breach.text(assets or _base_units) for breach in breaches)


def _base_units(units: int) -> str:
    return f"{units:,} base units"


def forecasts_for_markets(listed: Iterable[str], forecasts: Mapping[str, MarketForecast],
                          stale: Collection[str] = (),
                          depth: Mapping[str, MarketDepth] | None = None) -> dict[str, MarketForecast]:
    """The forecasts the allocator gets for the vault's `listed` markets under the missing-forecast policy, each
    told its market's `depth` where known (its supply besides the vault, its rate curve's elasticity and the
    vault's position its rate is at, `strategy.market_supply`), so that the allocator weighs what the vault's
    own money dilutes (None: the markets are taken as deep)."""
    chosen = {}
    for market in listed:
        if market in stale:
            chosen[market] = UNKNOWN_MARKET
        elif market in forecasts:
            known = None if depth is None else depth.get(market)
            chosen[market] = forecasts[market] if known is None else replace(
                forecasts[market], supply=known.supply, elasticity=known.elasticity, held=known.held)
    return chosen


def decide(state: VaultState, guardrails: Guardrails, forecasts: Mapping[str, MarketForecast],
           allocator: AllocatorConfig, now: int, plan: Planner = allocate) -> Verdict:
    """Plan within `guardrails`, then check the plan as the contract would at chain time `now`."""
    allocation = plan(state, guardrails, forecasts, allocator)
    if not allocation.changed:
        return Verdict(VerdictKind.HOLD, allocation)
    violations = tuple(check_rebalance(state, simulate_rebalance(state, allocation.trades), now, guardrails))
    if not violations:
        return Verdict(VerdictKind.SEND, allocation)
    kind = VerdictKind.SKIP if violations[0].reason in _TRANSIENT else VerdictKind.WOULD_REVERT
    return Verdict(kind, allocation, violations)

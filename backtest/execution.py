"""Executing a rebalance on the simulated vault: the lossless moves of `strategy.guardrails.simulate_rebalance`,
less slippage, then the vault's own checks (`check_rebalance`) on the state the chain would really end in.

Slippage is the cost of entering a market (price impact, deposit fee): a supplied market is credited
`slippage_bps` of the supplied amount less (rounded up against the vault); withdrawals arrive in full. So
execution can only lower positions against the plan, never raise idle's need or the turnover, and a plan
is rejected only for what the chain would reject it for (a cooldown, or a loss beyond max_loss_bps).
A rejected rebalance changes nothing (the keeper simulates before sending, so it costs no gas).
The allocator is told the same `slippage_bps` per unit moved either way, so it plans conservatively.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import NamedTuple

from strategy.guardrails import (
    BPS,
    Guardrails,
    VaultState,
    check_rebalance,
    simulate_rebalance,
)


class Execution(NamedTuple):
    state: VaultState  # after the rebalance, or the state before if rejected
    rejections: list[str]  # revert reasons, empty when accepted
    moved: int  # Σ |position after - position before| over the traded markets
    slippage: int  # lost in execution (0 when rejected)

    @property
    def accepted(self) -> bool:
        return not self.rejections


def execute(
    before: VaultState, trades: Mapping[str, int], now: int, guardrails: Guardrails, slippage_bps: float
) -> Execution:
    """Move each traded market to its target, pay slippage, and keep the result only if every guardrail holds."""
    lossless = simulate_rebalance(before, trades)
    positions = dict(lossless.positions)
    slippage = 0
    for market, target in trades.items():
        supplied = target - before.position(market)
        if supplied > 0:
            cost = math.ceil(supplied * slippage_bps / BPS)
            positions[market] = target - cost
            slippage += cost
    moved = sum(abs(positions[market] - before.position(market)) for market in trades)
    after = replace(lossless, positions=positions)
    violations = check_rebalance(before, after, now, guardrails)
    if violations:
        return Execution(before, [str(violation.reason) for violation in violations], moved, 0)
    return Execution(replace(after, last_rebalance=now), [], moved, slippage)

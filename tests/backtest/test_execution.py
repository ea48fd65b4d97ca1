"""Executing a rebalance on the simulated vault: slippage on supplies, the vault's checks on the real outcome."""

from __future__ import annotations

from backtest.execution import execute
from strategy.guardrails import Guardrails, MarketLimits, Reason, VaultState

UNLIMITED = 2**256 - 1


def guardrails(**overrides: int) -> Guardrails:
    params = {"min_rebalance_interval": 3600, "max_turnover_bps": 5000, "max_loss_bps": 10, "min_idle_bps": 500}
    markets = {m: MarketLimits(cap_bps=4000, cap_abs=UNLIMITED) for m in ("a", "b")}
    return Guardrails(markets=markets, **(params | overrides))


def test_supplies_pay_slippage_and_withdrawals_arrive_in_full() -> None:
    before = VaultState(idle=100_000, positions={"a": 300_000, "b": 0}, last_rebalance=0, paused=False)
    result = execute(before, {"a": 200_000, "b": 100_000}, now=10_000, guardrails=guardrails(), slippage_bps=1.0)
    assert result.accepted
    assert result.slippage == 10  # 1 bp of the 100 000 supplied to b
    assert result.state.position("b") == 100_000 - 10
    assert result.state.position("a") == 200_000
    assert result.state.idle == 100_000  # the withdrawal from a paid for the supply to b in full
    assert result.state.last_rebalance == 10_000
    assert result.moved == 100_000 + 99_990


def test_rejected_rebalance_changes_nothing_and_names_the_reason() -> None:
    before = VaultState(idle=1_000_000, positions={"a": 0, "b": 0}, last_rebalance=9_000, paused=False)
    result = execute(before, {"a": 300_000}, now=10_000, guardrails=guardrails(), slippage_bps=1.0)
    assert result.rejections == [Reason.COOLDOWN.value]
    assert result.state == before
    assert result.slippage == 0


def test_slippage_beyond_the_loss_limit_is_rejected_like_the_contract_would() -> None:
    before = VaultState(idle=1_000_000, positions={"a": 0, "b": 0}, last_rebalance=0, paused=False)
    # 40 % supplied at 50 bps slippage loses 20 bps of total assets; the vault allows 10.
    result = execute(before, {"a": 400_000}, now=10_000, guardrails=guardrails(), slippage_bps=50.0)
    assert result.rejections == [Reason.LOSS_EXCEEDED.value]
    accepted = execute(before, {"a": 400_000}, now=10_000, guardrails=guardrails(max_loss_bps=30), slippage_bps=50.0)
    assert accepted.accepted and accepted.state.position("a") == 400_000 - 2_000

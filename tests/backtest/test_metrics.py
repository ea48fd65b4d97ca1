"""Metrics from a run's daily net values and decisions, checked against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from backtest.engine import DayDecision, StrategyRun
from backtest.metrics import compute_metrics, rejection_reasons
from strategy.allocator import AllocationStatus

UNIT = 10**6


def run_of(net: list[float], decisions: list[DayDecision] = (), gas: float = 0.0) -> StrategyRun:
    days = pd.date_range("2024-01-01", periods=len(net), freq="D", tz="UTC")
    values = pd.DataFrame({"total": net, "idle": 0.0, "gas": 0.0, "net": net}, index=days)
    return StrategyRun("test", False, UNIT, values, pd.DataFrame(index=days), list(decisions), pd.DataFrame(),
                       {"gas": -gas})


def decision(moved: int, rejections: list[str] = ()) -> DayDecision:
    return DayDecision(pd.Timestamp("2024-01-01", tz="UTC"), {}, AllocationStatus.OPTIMAL, True, list(rejections),
                    moved, 0, 0)


def test_returns_drawdown_and_annualisation() -> None:
    net = [100.0, 110.0, 99.0, 105.0]
    metrics = compute_metrics(run_of(net), capital=100.0)
    assert metrics["cumulative_return"] == pytest.approx(0.05)
    assert metrics["net_apy"] == pytest.approx(1.05 ** (365 / 3) - 1)
    assert metrics["max_drawdown"] == pytest.approx(1 - 99 / 110)
    returns = np.array([0.0, 0.1, 99 / 110 - 1, 105 / 99 - 1])
    assert metrics["volatility"] == pytest.approx(returns.std(ddof=1) * math.sqrt(365))
    assert metrics["sharpe"] == pytest.approx(returns.mean() / returns.std(ddof=1) * math.sqrt(365))
    downside = math.sqrt(np.mean(np.minimum(returns, 0) ** 2))
    assert metrics["sortino"] == pytest.approx(returns.mean() / downside * math.sqrt(365))
    assert metrics["final_value"] == 105.0


def test_ratios_without_variation_or_downside_are_none() -> None:
    flat = compute_metrics(run_of([100.0] * 5), capital=100.0)
    assert flat["sharpe"] is None and flat["sortino"] is None and flat["max_drawdown"] == 0
    rising = compute_metrics(run_of([100.0, 101.0, 103.0]), capital=100.0)
    assert rising["sortino"] is None and rising["sharpe"] > 0


def test_turnover_rebalances_gas_and_rejections() -> None:
    decisions = [decision(50 * UNIT), decision(30 * UNIT, ["vault: cooldown"]), decision(50 * UNIT)]
    run = run_of([100.0, 100.0, 100.0, 100.0], decisions, gas=1.5)
    metrics = compute_metrics(run, capital=100.0)
    assert metrics["turnover"] == pytest.approx(1.0)  # 100 moved by the accepted ones over a mean value of 100
    assert metrics["rebalances"] == 2
    assert metrics["rejections"] == 1
    assert metrics["gas"] == 1.5
    assert rejection_reasons(run) == {"vault: cooldown": 1}

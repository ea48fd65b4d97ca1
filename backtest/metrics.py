"""Performance metrics of a strategy run, from its daily net value (vault assets less the gas paid).

Returns are daily, starting from the capital; annualised with 365 days; the risk-free rate is 0.

- net_apy: (final / capital) ** (365 / days) - 1, days from the first to the last day of the window
- cumulative_return: final / capital - 1
- volatility: std of daily returns × √365; sharpe: mean / std of daily returns × √365
- sortino: mean / downside deviation × √365, downside deviation = √mean(min(r, 0)²)
- max_drawdown: the largest fall from a running peak (the capital included), as a fraction of that peak
- turnover: Σ moved by accepted rebalances / mean net value (times the portfolio was traded over the window)
- rebalances (accepted ones that moved something), rejections (by the guardrails), gas and final value
  (asset units)
Ratios whose denominator is 0 are None (no variation, no downside).
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import numpy.typing as npt
import pandas as pd

from backtest.engine import StrategyRun
from strategy.units import DAYS_PER_YEAR

METRIC_LABELS = {  # name: (label, format), the order of the report
    "net_apy": ("net APY", "pct"),
    "cumulative_return": ("cumulative return", "pct"),
    "volatility": ("volatility (ann.)", "pct"),
    "sharpe": ("Sharpe", "ratio"),
    "sortino": ("Sortino", "ratio"),
    "max_drawdown": ("max drawdown", "pct"),
    "turnover": ("turnover (x)", "ratio"),
    "rebalances": ("rebalances", "count"),
    "gas": ("gas spent", "amount"),
    "rejections": ("guardrail rejections", "count"),
    "final_value": ("final value", "amount"),
}


def daily_returns(run: StrategyRun, capital: float) -> pd.Series:
    """Return of each day's net value over the day before (the first over the capital)."""
    net = run.values["net"]
    return net / pd.concat([pd.Series([capital]), net.iloc[:-1]]).to_numpy() - 1


def drawdowns(run: StrategyRun, capital: float) -> pd.Series:
    """Each day's fall of the net value from its running peak (the capital included), as a fraction of that peak."""
    net = run.values["net"]
    peaks: npt.NDArray[np.float64] = np.maximum.accumulate(np.concatenate([[capital], net.to_numpy()]))[1:]
    return 1 - net / peaks


def compute_metrics(run: StrategyRun, capital: float) -> dict[str, float | int | None]:
    """Every metric of the module docstring for one run; `capital` in asset units."""
    net = run.values["net"]
    returns = daily_returns(run, capital).to_numpy()
    elapsed = len(net) - 1  # days from the first to the last day of the window
    final = float(net.iloc[-1])
    std = float(returns.std(ddof=1))
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
    accepted = [decision for decision in run.decisions if decision.accepted]
    return {
        "net_apy": (final / capital) ** (DAYS_PER_YEAR / elapsed) - 1 if final > 0 else -1.0,
        "cumulative_return": final / capital - 1,
        "volatility": std * math.sqrt(DAYS_PER_YEAR),
        "sharpe": _ratio(float(returns.mean()), std),
        "sortino": _ratio(float(returns.mean()), downside),
        "max_drawdown": max(0.0, float(drawdowns(run, capital).max())),  # 0 at the start, on the capital
        "turnover": sum(d.moved for d in accepted) / run.unit / float(net.mean()),
        "rebalances": len(accepted),
        "gas": -run.pnl["gas"],
        "rejections": sum(1 for d in run.decisions if d.rejections),
        "final_value": final,
    }


def rejection_reasons(run: StrategyRun) -> dict[str, int]:
    """How often each revert reason occurred."""
    return dict(Counter(reason for decision in run.decisions for reason in decision.rejections))


def _ratio(mean: float, deviation: float) -> float | None:
    return mean / deviation * math.sqrt(DAYS_PER_YEAR) if deviation > 0 else None

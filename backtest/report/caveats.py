"""Where a metric of the report does not mean what its name promises, and why: said beside the number.

Sharpe and Sortino divide the mean daily return by its deviation, with a risk-free rate of 0 (`backtest.metrics`),
on the premise that the deviation measures the losses an investor bears. The rule: they are not meaningful on a
near-riskless series, one whose worst drawdown in the window is less than a month of its own mean yield (the
growth its net APY gives over REPAID_WITHIN_DAYS). There the deviation is the wobble of a yield rate, not capital
at risk: the ratio is the yield over that wobble, unbounded as the rates steady (cash in a T-bill would score
in the tens), and it cannot rank strategies by risk: a stablecoin vault's real risks (an exploit, a depeg, bad
debt) come rarely and all at once, and a window without one shows none of them. A volatility floor would not
do: a yield that swings from day to day but never loses has a high volatility and a Sharpe just as empty.
"""

from __future__ import annotations

from typing import Any

from strategy.units import DAYS_PER_YEAR

REPAID_WITHIN_DAYS = 30  # a fall the strategy's own mean yield makes good within a month: no risk worth the name
RISK_RATIOS = ("sharpe", "sortino")  # the metrics divided by a deviation of the daily returns
MARK = "‡"  # beside a metric that is not meaningful, in the terminal table and the HTML report
RULE = "a near-riskless series (its worst drawdown is less than a month of its own yield)"
WHY = ("on a near-riskless series, whose worst drawdown in the window is less than a month of its own mean yield, "
       "the daily returns vary with the yield rates, not with capital at risk: the ratio is the yield over its own "
       "wobble, unbounded as the rates steady, and the window holds none of the rare losses (exploits, depegs) "
       "that are a lending vault's risk; compare the drawdown and where the money went instead")


def month_of_yield(metrics: dict[str, Any]) -> float:
    """What the strategy's net APY grows its value by in REPAID_WITHIN_DAYS days, as a fraction."""
    return (1 + metrics["net_apy"]) ** (REPAID_WITHIN_DAYS / DAYS_PER_YEAR) - 1


def metric_caveats(metrics: dict[str, Any]) -> dict[str, str]:
    """{metric: why it is not meaningful for this run}; empty when every metric means what it says."""
    month = month_of_yield(metrics)
    if metrics["max_drawdown"] >= month:  # a real loss (or no yield at all: a month of it is <= 0)
        return {}
    why = (f"not meaningful: near-riskless (worst drawdown {metrics['max_drawdown']:.2%}, less than a month "
           f"of its own yield, {month:.2%})")
    return {name: why for name in RISK_RATIOS if metrics.get(name) is not None}

"""The run's assumptions as the HTML report lists them: each setting with its unit and what it stands for."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from strategy.units import BPS

Unit = Callable[[Any, str], str]  # (value, the vault's asset symbol) -> the value with its unit


def _number(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,.10g}"


def _bps(value: float, asset: str) -> str:
    return f"{_number(value)} bps ({_number(value * 100 / BPS)} %)"


def _with(unit: str) -> Unit:
    return lambda value, asset: f"{_number(value)} {unit.format(asset=asset)}"


# summary key -> (how its value reads with a unit, what it stands for); every key of summary["guardrails"] and
# summary["costs"] is here (a new one without a unit fails the report's tests).
ASSUMPTIONS: dict[str, tuple[Unit, str]] = {
    "min_rebalance_interval": (_with("s"), "the least time between two rebalances (the vault refuses sooner)"),
    "max_turnover_bps": (_bps, "the most one rebalance may move, of total assets"),
    "max_loss_bps": (_bps, "the most one rebalance may lose to execution, of total assets"),
    "min_idle_bps": (_bps, "kept idle in the vault for withdrawals, of total assets"),
    "gas_per_rebalance": (_with("gas"), "gas of a rebalance call, before the markets it moves"),
    "gas_per_market": (_with("gas"), "gas per market a rebalance moves"),
    "native_price": (_with("{asset} per native token"), "the price of the chain's gas token (ETH)"),
    "slippage_bps": (_bps, "lost on each amount moved into or out of a market"),
    "gas_price_gwei": (_with("gwei"), "the simulated gas price (live, the keeper reads the chain's)"),
    "asset_decimals": (_with("decimals"), "of the vault's asset: amounts are simulated in its base units"),
}


def assumption_rows(summary: dict[str, Any]) -> list[list[str]]:
    """(setting, value with its unit, what it stands for) for the run's shape, guardrails and costs."""
    asset = summary["pools"]["asset_symbol"]
    window = summary["window"]
    rows = [
        ["capital", f"{summary['capital']:,.2f} {asset}", "deposited on the first day; every strategy starts from it"],
        ["window", f"{window['start'][:10]} .. {window['end'][:10]} ({window['days']:,} days, UTC)",
         "the days replayed; each decision sees only data up to its day"],
        ["rebalance_every_days", f"{summary['rebalance_every_days']:,} days", "how often a strategy may decide"],
        ["forecast_horizon_days", f"{summary['forecast_horizon_days']:,} days",
         "what a forecast predicts: the mean APY over that many days ahead"],
        ["risk-free rate", "0 % a year", "what Sharpe and Sortino measure the returns against"],
    ]
    settings = summary["guardrails"] | summary["costs"]
    return rows + [[key, ASSUMPTIONS[key][0](value, asset), ASSUMPTIONS[key][1]] for key, value in settings.items()]

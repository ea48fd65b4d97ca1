"""A run broken down by month and by pool, for `report.json` and the HTML report's tables."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from backtest.run import BacktestResult
from strategy.data.schema import POOL, TIMESTAMP


def per_month(result: BacktestResult, capital: float) -> dict[str, Any]:
    """Per calendar month (UTC) of the window: its days and each strategy's return over it, from the net value
    at the end of the month before (the capital for the first); a month the window cuts has fewer days."""
    days = result.setup.days
    months = pd.Index([day.strftime("%Y-%m") for day in days])
    returns = {}
    for name, run in result.runs.items():
        month_end = run.values["net"].groupby(months.to_numpy()).last()
        returns[name] = (month_end / month_end.shift(1, fill_value=capital) - 1).tolist()
    counts = months.value_counts(sort=False)
    return {"months": counts.index.tolist(), "days": counts.tolist(), "returns": returns}


def per_pool(result: BacktestResult, labels: dict[str, str],
             predicted: dict[str, pd.DataFrame]) -> list[dict[str, Any]]:
    """Per listed pool (`labels`: its name): its mean APY in the window (the data's, %; None without data), the
    mean share of the vault each strategy held in it, and the forecasts of the predicting strategies
    (`predicted`: `summary.predictions`) against what was realised: mean predicted and realised APY in %, mean
    absolute error in percentage points, mean predicted event probability (None when not predicted), and the share
    of those forecasts an adverse event followed within the horizon (None when the data cannot tell)."""
    setup = result.setup
    history = setup.market.history
    in_window = history[(history[TIMESTAMP] >= setup.days[0]) & (history[TIMESTAMP] <= setup.days[-1])]
    apy = in_window.groupby(POOL)["apy"].mean()
    shares = {name: run.positions.div(run.values["total"], axis=0).mean() for name, run in result.runs.items()}
    forecasts = {name: _forecasts_by_pool(result, name, frame) for name, frame in predicted.items()}
    return [{
        "pool": pool, "label": labels[pool],
        "apy_mean_pct": _number(apy.get(pool)),
        "share": {name: float(share[pool]) for name, share in shares.items()},
        "forecasts": {name: by_pool[pool] for name, by_pool in forecasts.items() if pool in by_pool},
    } for pool in setup.pools]


def _forecasts_by_pool(result: BacktestResult, name: str,
                      joined: pd.DataFrame) -> dict[str, dict[str, float | None]]:
    events = result.runs[name].forecasts.groupby(POOL)["p_event"].mean()
    rows: dict[str, dict[str, float | None]] = {}
    for pool, frame in joined.groupby(POOL):
        rows[str(pool)] = {"n": len(frame), "predicted_pct": float(frame["predicted"].mean()),
                      "realised_pct": float(frame["realised"].mean()),
                      "mae_pp": float((frame["predicted"] - frame["realised"]).abs().mean()),
                      "p_event": _number(events.get(pool)),
                      "event_share": _number(frame["event"].mean())}  # of these forecasts, followed by an event
    return rows


def _number(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else float(value)

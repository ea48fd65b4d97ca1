"""The machine-readable summary of a backtest (what `report.json` holds, and what the table and HTML show)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from backtest.metrics import compute_metrics, rejection_reasons
from backtest.run import BacktestResult
from strategy.data.schema import POOL, TIMESTAMP
from strategy.targets import build_targets

PREDICTING_STRATEGIES = ("ml", "trailing-best")  # forecasts worth comparing with what was realised
REJECTED_BY = {  # who rejected the rebalances counted as "rejections"
    "fast": "the Python guardrail mirror (strategy.guardrails)",
    "chain": "the Vault contract on anvil (revert of the keeper's eth_call simulation or transaction)",
}


def pool_labels(result: BacktestResult) -> dict[str, str]:
    """A short readable name per listed pool: project and symbol from the metadata, else the id's start."""
    pools = result.setup.pools
    meta = result.setup.market.pools
    if meta is None:
        return {pool: pool[:8] for pool in pools}
    by_id = meta.set_index(POOL)
    return {
        pool: f"{by_id.at[pool, 'project']} {by_id.at[pool, 'symbol']} ({pool[:4]})" if pool in by_id.index
        else pool[:8]
        for pool in pools
    }


def predictions(result: BacktestResult) -> dict[str, pd.DataFrame]:
    """Per predicting strategy: its APY forecasts joined with the realised forward mean APY (complete horizons)."""
    setup = result.setup
    realised = build_targets(setup.market.history, setup.market.pools, setup.targets)["fwd_apy_mean"].dropna()
    joined = {}
    for name in PREDICTING_STRATEGIES:
        if name in result.runs:
            forecasts = result.runs[name].forecasts.set_index([TIMESTAMP, POOL])["apy_pct"]
            both = pd.concat({"predicted": forecasts, "realised": realised}, axis=1, join="inner")
            joined[name] = both.reset_index()
    return joined


def summarise(result: BacktestResult) -> dict[str, Any]:
    """Everything `report.json` holds; deterministic for a given input (no timings)."""
    setup, settings = result.setup, result.setup.settings
    capital = setup.capital / settings.unit
    labels = pool_labels(result)
    guardrails = setup.guardrails
    prediction_errors = {
        name: {"mae": float((frame["predicted"] - frame["realised"]).abs().mean()), "n": len(frame)}
        for name, frame in predictions(result).items() if len(frame)
    }
    return {
        "headline": result.headline,
        "data": setup.market.source,
        "config": result.config.source,
        "window": {"start": setup.days[0].isoformat(), "end": setup.days[-1].isoformat(), "days": len(setup.days)},
        "capital": capital,
        "rebalance_every_days": setup.rebalance_every,
        "mode": result.mode,
        "rejections_by": REJECTED_BY["fast" if result.mode == "fast" else "chain"],
        "model_seed": result.config.strategy.model.seed,
        "model_trainings": result.model_trainings,
        "guardrails": {
            "min_rebalance_interval": guardrails.min_rebalance_interval,
            "max_turnover_bps": guardrails.max_turnover_bps,
            "max_loss_bps": guardrails.max_loss_bps,
            "min_idle_bps": guardrails.min_idle_bps,
        },
        "universe": [
            {"pool": pool, "label": labels[pool], "cap_bps": limits.cap_bps, "cap_abs": limits.cap_abs}
            for pool, limits in guardrails.markets.items()
        ],
        "costs": settings.model_dump(exclude={"guardrails"}),
        "strategies": {
            name: {
                "leaky": run.leaky,
                "metrics": compute_metrics(run, capital),
                "pnl": run.pnl,
                "rejection_reasons": rejection_reasons(run),
                "prediction": prediction_errors.get(name),
            }
            for name, run in result.runs.items()
        },
        "series": {
            "dates": [day.date().isoformat() for day in setup.days],
            "net_value": {name: run.values["net"].tolist() for name, run in result.runs.items()},
            "allocation": {name: {pool: run.positions[pool].tolist() for pool in setup.pools}
                           for name, run in result.runs.items()},
        },
    }

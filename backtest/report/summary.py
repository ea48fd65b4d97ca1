"""The machine-readable summary of a backtest (what `report.json` holds, and what the table and HTML show)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from backtest.market import Investable, investable_pools, live_spans, pool_symbols
from backtest.market_share import largest_share, market_prices, market_supply
from backtest.metrics import compute_metrics, rejection_reasons
from backtest.report.breakdown import per_month, per_pool
from backtest.report.caveats import metric_caveats
from backtest.run import BacktestResult
from strategy.data.schema import POOL, TIMESTAMP
from strategy.targets import FWD_APY_MEAN, build_targets

PREDICTING_STRATEGIES = ("ml", "trailing-best")  # forecasts worth comparing with what was realised
REJECTED_BY = {  # who rejected the rebalances counted as "rejections"
    "fast": "the Python guardrail mirror (strategy.guardrails)",
    "chain": "the Vault contract on anvil (revert of the keeper's eth_call simulation or transaction)",
}


def pool_labels(result: BacktestResult, pools: Sequence[str] | None = None) -> dict[str, str]:
    """A short readable name per pool (the listed ones by default): project and symbol from the metadata,
    else the id's start."""
    pools = result.setup.pools if pools is None else pools
    meta = result.setup.market.pools
    if meta is None:
        return {pool: pool[:8] for pool in pools}
    by_id = meta.set_index(POOL)
    return {
        pool: f"{by_id['project'][pool]} {by_id['symbol'][pool]} ({pool[:4]})" if pool in by_id.index
        else pool[:8]
        for pool in pools
    }


def predictions(result: BacktestResult) -> dict[str, pd.DataFrame]:
    """Per predicting strategy: its APY forecasts joined with the realised forward mean APY (complete horizons),
    and `event`: whether an adverse event followed within the horizon (1, 0; NaN where the data cannot tell)."""
    setup = result.setup
    targets = build_targets(setup.market.history, setup.market.pools, setup.targets)
    realised = targets[FWD_APY_MEAN].dropna()
    joined = {}
    for name in PREDICTING_STRATEGIES:
        if name in result.runs:
            forecasts = result.runs[name].forecasts.set_index([TIMESTAMP, POOL])["apy_pct"]
            both = pd.concat({"predicted": forecasts, "realised": realised}, axis=1, join="inner")
            joined[name] = both.join(targets["adverse_event"].rename("event")).reset_index()
    return joined


def investable_of(result: BacktestResult) -> Investable:
    """The investable pools the setup recorded (recomputed from the data for a setup built without them)."""
    setup = result.setup
    return setup.investable or investable_pools(setup.market, setup.settings.asset_symbol)


def universe_entries(result: BacktestResult) -> list[dict[str, Any]]:
    """Per listed pool: its caps and when it was live, its first and last day with data inside the window
    (None: no data in it). A pool live for part of the window was invested in only then."""
    setup = result.setup
    labels, spans = pool_labels(result), live_spans(setup.market, setup.pools, setup.days)
    entries = []
    for pool, limits in setup.guardrails.markets.items():
        span = spans[pool]
        entries.append({"pool": pool, "label": labels[pool], "cap_bps": limits.cap_bps, "cap_abs": limits.cap_abs,
                        "live_from": _iso_day(span[0]) if span else None,
                        "live_to": _iso_day(span[1]) if span else None})
    return entries


def pool_roles(result: BacktestResult) -> dict[str, Any]:
    """Which pools the vault could invest in (the listed ones) and which only informed the models: every
    other pool with data known by the window's end, with why it is not listed (another asset, no data in the
    window, left out of the configured market list or beyond max_markets)."""
    setup, investable = result.setup, investable_of(result)
    left_out = "not in [backtest.guardrails.markets]" if setup.settings.configured_markets() else "beyond max_markets"
    history = setup.market.history
    known = set(history.loc[history[TIMESTAMP] <= setup.days[-1], POOL])
    listed = set(setup.pools)
    others = sorted(known - listed)
    labels, symbols = pool_labels(result, others), pool_symbols(setup.market)
    in_window = {pool for pool, span in live_spans(setup.market, others, setup.days).items() if span}

    def why(pool: str) -> str:
        if pool not in investable.pools:
            symbol = symbols.get(pool)
            return f"a {symbol} pool" if symbol else "no symbol in the pool metadata"
        return left_out if pool in in_window else "no data in the window"

    return {
        "asset_symbol": investable.asset_symbol,
        "rule": investable.rule,
        "investable": list(setup.pools),
        "model_only": [{"pool": pool, "label": labels[pool], "why": why(pool)} for pool in others],
    }


def warmup_until(result: BacktestResult) -> str | None:
    """The day the ML strategy's first model trained, when that was after the first decision (None: no warm-up)."""
    first = result.model_first_trained
    return _iso_day(first) if first is not None and first > result.setup.days[0] else None


def _iso_day(day: pd.Timestamp) -> str:
    return day.date().isoformat()


def summarise(result: BacktestResult) -> dict[str, Any]:
    """Everything `report.json` holds; deterministic for a given input (no timings)."""
    setup, settings = result.setup, result.setup.settings
    capital = setup.capital / settings.unit
    guardrails = setup.guardrails
    predicted = predictions(result)
    prediction_errors = {
        name: {"mae": float((frame["predicted"] - frame["realised"]).abs().mean()), "n": len(frame)}
        for name, frame in predicted.items() if len(frame)
    }
    metrics = {name: compute_metrics(run, capital) for name, run in result.runs.items()}
    history, labels = setup.market.history, pool_labels(result)
    supply, prices = market_supply(history), market_prices(history)
    shares = {name: largest_share(run.positions, supply, prices) for name, run in result.runs.items()}
    return {
        "headline": result.headline,
        "data": setup.market.source,
        "config": result.config.source,
        "window": {"start": setup.days[0].isoformat(), "end": setup.days[-1].isoformat(), "days": len(setup.days)},
        "capital": capital,
        "rebalance_every_days": setup.rebalance_every,
        "forecast_horizon_days": setup.targets.horizon_days,
        "mode": result.mode,
        "supply_dilution": settings.supply_dilution,
        "rejections_by": REJECTED_BY["fast" if result.mode == "fast" else "chain"],
        "model_seed": result.config.strategy.model.seed,
        "model_trainings": result.model_trainings,
        "model_warmup_until": warmup_until(result),
        "model_policy": result.model_policy,
        "guardrails": {
            "min_rebalance_interval": guardrails.min_rebalance_interval,
            "max_turnover_bps": guardrails.max_turnover_bps,
            "max_loss_bps": guardrails.max_loss_bps,
            "min_idle_bps": guardrails.min_idle_bps,
        },
        "universe": universe_entries(result),
        "pools": pool_roles(result),
        "costs": {**result.config.strategy.costs.model_dump(), "gas_price_gwei": settings.gas_price_gwei,
                  "asset_decimals": settings.asset_decimals},
        "strategies": {
            name: {
                "leaky": run.leaky,
                "metrics": metrics[name],
                "caveats": metric_caveats(metrics[name]),
                "pnl": run.pnl,
                "rejection_reasons": rejection_reasons(run),
                "prediction": prediction_errors.get(name),
                "largest_market_share": None if (share := shares[name]) is None else share.as_dict(
                    labels.get(share.pool, share.pool)),
            }
            for name, run in result.runs.items()
        },
        "per_month": per_month(result, capital),
        "per_pool": per_pool(result, pool_labels(result), predicted),
        "series": {
            "dates": [day.date().isoformat() for day in setup.days],
            "net_value": {name: run.values["net"].tolist() for name, run in result.runs.items()},
            "allocation": {name: {pool: run.positions[pool].tolist() for pool in setup.pools}
                           for name, run in result.runs.items()},
        },
    }

"""The report's charts as data for uPlot (`vaultbotCharts.draw` of the page's charts.js, which the HTML inlines):
JSON-ready specs with the numbers to draw and, per point, the texts the legend shows (`format_metric`)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from backtest.metrics import drawdowns
from backtest.report.summary import pool_labels, predictions
from backtest.report.table import format_metric
from backtest.run import BacktestResult
from strategy.data.schema import POOL, TIMESTAMP

Chart = dict[str, Any]  # a spec of charts.js: x, time, xLabel, yLabel, stacked, series [{label, values, texts, ...}]
HEADLINE_WIDTH, OTHER_WIDTH = 2.5, 1.5
IDLE_COLOUR = "#b8bec9"
# What a chart draws needs no more places than these (the legend's texts are exact to the report's own format):
# amounts in asset units, percentages.
AMOUNT_PLACES, PERCENT_PLACES = 2, 4


def report_charts(result: BacktestResult) -> dict[str, Chart]:
    """Title -> chart: net value and drawdown of every strategy, each strategy's allocation, and the forecasts
    of the predicting strategies against what was realised."""
    charts = {"Net value over time": value_chart(result), "Drawdown over time": drawdown_chart(result)}
    charts |= {f"Allocation over time: {name}": allocation_chart(result, name) for name in result.runs}
    return charts | prediction_charts(result)


def _apy(percent: float) -> str:
    return f"{percent:.2f} %"


def _days(result: BacktestResult) -> list[int]:
    return [int(day.timestamp()) for day in result.setup.days]


def _line(result: BacktestResult, name: str, values: pd.Series, kind: str, scale: float = 1.0) -> dict[str, Any]:
    """One strategy's series: the headline drawn wider, one that reads the future dashed."""
    drawn = (values * scale).round(AMOUNT_PLACES if kind == "amount" else PERCENT_PLACES)
    return {"label": name, "values": drawn.tolist(), "texts": [format_metric(v, kind) for v in values],
            "width": HEADLINE_WIDTH if name == result.headline else OTHER_WIDTH, "dash": result.runs[name].leaky}


def value_chart(result: BacktestResult) -> Chart:
    """Net value (vault assets less gas) of every strategy."""
    asset = result.setup.settings.asset_symbol
    return {"x": _days(result), "time": "day", "xLabel": "day (UTC)", "yLabel": f"net value ({asset})",
            "series": [_line(result, name, run.values["net"], "amount") for name, run in result.runs.items()]}


def drawdown_chart(result: BacktestResult) -> Chart:
    """How far below its running peak (the capital included) each strategy's net value is, in %."""
    capital = result.setup.capital / result.setup.settings.unit
    return {"x": _days(result), "time": "day", "xLabel": "day (UTC)", "yLabel": "below the running peak (%)",
            "series": [_line(result, name, drawdowns(run, capital), "pct", scale=-100.0)
                       for name, run in result.runs.items()]}


def allocation_chart(result: BacktestResult, name: str) -> Chart:
    """One strategy's positions over time, stacked: idle on top, then the pools it ever held (a pool has one
    colour on every strategy's chart)."""
    run, labels, pools = result.runs[name], pool_labels(result), result.setup.pools
    held = [pool for pool in reversed(pools) if (run.positions[pool] > 0).any()]
    layers = [("idle", run.values["idle"], IDLE_COLOUR)] + [(labels[p], run.positions[p], pools.index(p)) for p in held]
    return {"x": _days(result), "time": "day", "xLabel": "day (UTC)",
            "yLabel": f"position ({result.setup.settings.asset_symbol})", "stacked": True,
            "series": [{"label": label, "values": values.round(AMOUNT_PLACES).tolist(), "colour": colour,
                        "texts": [format_metric(v, "amount") for v in values]} for label, values, colour in layers]}


def prediction_charts(result: BacktestResult) -> dict[str, Chart]:
    """Per predicting strategy: each forecast (pool and decision) against the mean APY realised over its horizon."""
    horizon = result.setup.targets.horizon_days
    charts = {}
    for name, frame in predictions(result).items():
        if not len(frame):
            continue
        frame = frame.sort_values("realised")  # the x axis must increase
        mae = (frame["predicted"] - frame["realised"]).abs().mean()
        realised = frame["realised"].round(PERCENT_PLACES).tolist()
        realised_texts = [_apy(value) for value in realised]
        charts[f"Predicted vs realised APY: {name} (MAE {mae:.2f} pp)"] = {
            "x": realised, "xTexts": realised_texts, "time": None,
            "xLabel": f"realised mean APY over the next {horizon} days (%)", "yLabel": "predicted APY (%)",
            "series": [
                {"label": "forecast", "values": frame["predicted"].round(PERCENT_PLACES).tolist(), "points": True,
                 "texts": [f"{_apy(value)} ({pool[:8]} on {day:%Y-%m-%d})" for value, pool, day
                           in zip(frame["predicted"], frame[POOL], frame[TIMESTAMP], strict=True)]},
                {"label": "a perfect forecast", "values": realised, "texts": realised_texts, "width": 1},
            ]}
    return charts

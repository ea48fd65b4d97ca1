"""The report's charts as PNG bytes (matplotlib's object API, no pyplot state, no display needed)."""

from __future__ import annotations

import io
import math

import matplotlib
import pandas as pd
from matplotlib.figure import Figure

from backtest.report.summary import pool_labels, predictions
from backtest.run import BacktestResult

_DPI = 100


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI, bbox_inches="tight")
    return buffer.getvalue()


def value_chart(result: BacktestResult) -> bytes:
    """Net value over time of every strategy, with the capital as a reference line."""
    figure = Figure(figsize=(10, 4.5))
    axes = figure.subplots()
    for name, run in result.runs.items():
        style = {"linewidth": 2.2} if name == result.headline else {"linewidth": 1.2, "alpha": 0.85}
        if run.leaky:
            style["linestyle"] = "--"
        axes.plot(run.values.index, run.values["net"], label=name, **style)
    axes.axhline(result.setup.capital / result.setup.settings.unit, color="grey", linewidth=0.8, linestyle=":")
    axes.set_title("Net value (vault assets less gas)")
    axes.set_ylabel("asset units")
    axes.legend(loc="upper left", fontsize="small")
    axes.grid(alpha=0.3)
    figure.autofmt_xdate()
    return _png(figure)


def allocation_chart(result: BacktestResult) -> bytes:
    """Per strategy, its positions over time as a stacked area (idle on top)."""
    labels = pool_labels(result)
    palette = matplotlib.colormaps["tab20"]
    colours = {pool: palette(i % palette.N) for i, pool in enumerate(result.setup.pools)} | {"idle": "lightgrey"}
    names = list(result.runs)
    columns = 2
    rows = math.ceil(len(names) / columns)
    figure = Figure(figsize=(12, 3.2 * rows))
    grid = figure.subplots(rows, columns, squeeze=False, sharex=True)
    for axes, name in zip(grid.flat, names, strict=False):
        run = result.runs[name]
        held = run.positions.loc[:, (run.positions > 0).any()]
        stacks = [held[pool].to_numpy() for pool in held.columns] + [run.values["idle"].to_numpy()]
        axes.stackplot(run.values.index, stacks, labels=[labels[pool] for pool in held.columns] + ["idle"],
                       colors=[colours[pool] for pool in [*held.columns, "idle"]])
        axes.set_title(f"{name}: allocation", fontsize="medium")
        axes.grid(alpha=0.3)
    for axes in list(grid.flat)[len(names):]:
        axes.set_visible(False)
    handles = {label: handle for axes in grid.flat
               for handle, label in zip(*axes.get_legend_handles_labels(), strict=True)}
    figure.legend(list(handles.values()), list(handles), loc="lower center", ncols=3, fontsize="small",
                  bbox_to_anchor=(0.5, -0.02 - 0.02 * math.ceil(len(handles) / 3)))
    figure.autofmt_xdate()
    return _png(figure)


def prediction_chart(result: BacktestResult) -> bytes | None:
    """Predicted vs realised forward APY per pool and decision, for the strategies whose forecasts predict."""
    joined = {name: frame for name, frame in predictions(result).items() if len(frame)}
    if not joined:
        return None
    figure = Figure(figsize=(5 * len(joined), 4.5))
    for axes, (name, frame) in zip(figure.subplots(1, len(joined), squeeze=False).flat, joined.items(), strict=True):
        axes.scatter(frame["realised"], frame["predicted"], s=6, alpha=0.35)
        low = float(pd.concat([frame["realised"], frame["predicted"]]).min())
        high = float(pd.concat([frame["realised"], frame["predicted"]]).max())
        axes.plot([low, high], [low, high], color="black", linewidth=0.8)
        mae = (frame["predicted"] - frame["realised"]).abs().mean()
        axes.set_title(f"{name}: predicted vs realised APY (MAE {mae:.2f} pp)", fontsize="medium")
        axes.set_xlabel(f"realised mean APY over the next {result.setup.targets.horizon_days} days, %")
        axes.set_ylabel("predicted APY, %")
        axes.grid(alpha=0.3)
    return _png(figure)

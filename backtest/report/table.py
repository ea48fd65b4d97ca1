"""The strategies side by side: formatted metric rows shared by the terminal table and the HTML report."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from backtest.metrics import METRIC_LABELS


def format_metric(value: float | int | None, kind: str) -> str:
    if value is None:
        return "n/a"
    if kind == "pct":
        return f"{value:.2%}"
    if kind == "ratio":
        return f"{value:.2f}"
    if kind == "amount":
        return f"{value:,.2f}"
    return f"{value:,}"


def strategy_columns(summary: dict[str, Any]) -> list[str]:
    """Column titles: the headline strategy marked, leaky ones flagged."""
    titles = []
    for name, strategy in summary["strategies"].items():
        mark = " *" if name == summary["headline"] else ""
        titles.append(f"{name}{mark}" + (" †" if strategy["leaky"] else ""))
    return titles


def metric_rows(summary: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(label, one formatted cell per strategy) for every metric, in `METRIC_LABELS` order."""
    strategies = summary["strategies"].values()
    return [
        (label, [format_metric(strategy["metrics"][name], kind) for strategy in strategies])
        for name, (label, kind) in METRIC_LABELS.items()
    ]


def rich_table(summary: dict[str, Any]) -> Table:
    window = summary["window"]
    table = Table(title=f"backtest {window['start'][:10]} .. {window['end'][:10]} ({window['days']} days), "
                        f"capital {summary['capital']:,.0f}, {summary['mode']} mode",
                  caption="* the chosen strategy; † reads the future (a reference, not a strategy); "
                          f"rejections by {summary['rejections_by']}")
    table.add_column("metric")
    for title in strategy_columns(summary):
        table.add_column(title, justify="right")
    for label, cells in metric_rows(summary):
        table.add_row(label, *cells)
    return table

"""The strategies side by side and the pools they could use: formatted rows shared by the terminal table and
the HTML report."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table

from backtest.market_share import NOTABLE_SHARE
from backtest.metrics import METRIC_LABELS
from backtest.report.caveats import MARK, RISK_RATIOS, RULE, WHY


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
    """(label, one formatted cell per strategy) for every metric, in `METRIC_LABELS` order; a cell whose metric
    is not meaningful for its strategy (`caveats`) is marked."""
    strategies = summary["strategies"].values()
    return [
        (label, [format_metric(strategy["metrics"][name], kind) + (f" {MARK}" if name in strategy["caveats"] else "")
                 for strategy in strategies])
        for name, (label, kind) in METRIC_LABELS.items()
    ]


def caveat_note(summary: dict[str, Any], why: str = WHY) -> str | None:
    """What the mark of `metric_rows` means, and `why` (None: no metric is marked)."""
    marked = [name for name, strategy in summary["strategies"].items() if strategy["caveats"]]
    ratios = " and ".join(METRIC_LABELS[name][0] for name in RISK_RATIOS)
    return f"{MARK} {ratios} are not meaningful for {', '.join(marked)}: {why}" if marked else None


def live_span(entry: dict[str, Any]) -> str:
    """A listed pool's first and last day with data in the window, as `first .. last`."""
    if entry["live_from"] is None:
        return "no data in the window"
    return f"{entry['live_from']} .. {entry['live_to']}"


def pool_rows(summary: dict[str, Any]) -> list[list[str]]:
    """(name, role, live in the window) per pool: the listed (investable) ones, then those whose history only
    informed the models, with why. (Names carry the id's start; report.json has the ids.)"""
    asset = summary["pools"]["asset_symbol"]
    listed = [[entry["label"], f"investable ({asset})", live_span(entry)] for entry in summary["universe"]]
    others = [[entry["label"], f"model only: {entry['why']}", ""] for entry in summary["pools"]["model_only"]]
    return listed + others


def warmup_note(summary: dict[str, Any]) -> str | None:
    """`ml: warm-up until <day>` when the model could not train on the first decision day (None otherwise)."""
    day = summary.get("model_warmup_until")
    return None if day is None else f"ml: warm-up until {day}, in cash before (too little history to train)"


def rich_table(summary: dict[str, Any]) -> Group:
    """The metrics of every strategy, then the pools: which were investable, when, and which only trained."""
    window = summary["window"]
    notes = ["* the chosen strategy; † reads the future (a reference, not a strategy)",
             f"rejections by {summary['rejections_by']}", warmup_note(summary), caveat_note(summary, RULE)]
    table = Table(title=f"backtest {window['start'][:10]} .. {window['end'][:10]} ({window['days']} days), "
                        f"capital {summary['capital']:,.0f}, {summary['mode']} mode",
                  caption="; ".join(note for note in notes if note))
    table.add_column("metric")
    for title in strategy_columns(summary):
        table.add_column(title, justify="right")
    for label, cells in metric_rows(summary):
        table.add_row(label, *cells)
    pools = Table(title=f"investable: {summary['pools']['rule']}")
    for column in ("pool", "role", "live in the window"):
        pools.add_column(column)
    for row in pool_rows(summary):
        pools.add_row(*row)
    return Group(table, pools)


def market_share_text(summary: dict[str, Any]) -> str | None:
    """One line when a strategy's position was a notable part of a market's supply (`backtest.market_share`),
    naming the largest; None below `NOTABLE_SHARE`."""
    found = [(entry["largest_market_share"], name) for name, entry in summary["strategies"].items()
             if entry.get("largest_market_share") is not None]
    if not found:
        return None
    share, name = max(found, key=lambda item: item[0]["share"])
    if share["share"] < NOTABLE_SHARE:
        return None
    said = (f"note: {name} held {share['share']:.1%} of {share['label']}'s supply on {share['day']}; at that size "
            f"its own deposit lowers the market's supply APY to about {1 - share['share']:.0%} of the recorded one, "
            f"less where the market's rate curve is steep")
    if summary.get("supply_dilution"):
        return f"{said}: charged as dilution, at the curve's elasticity that day"
    return f"{said}, which this replay leaves out ([backtest] supply_dilution off)"


def policy_text(summary: dict[str, Any]) -> str | None:
    """One line on what decided the ML strategy's days and what became of its challengers (None: no ML run)."""
    policy = summary.get("model_policy")
    if not policy:
        return None
    return (f"ml decisions: model {policy['model']} days, trailing-best fallback {policy['trailing-best']}, "
            f"warm-up {policy['warm-up']}; challengers promoted {policy['promoted']}, rejected {policy['rejected']}")

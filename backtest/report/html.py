"""The self-contained HTML report: metrics table, charts embedded as base64 PNG, and the run's assumptions."""

from __future__ import annotations

import base64
from html import escape
from typing import Any

from backtest.realised import PNL_EFFECTS
from backtest.report.table import (
    format_metric,
    live_span,
    metric_rows,
    policy_text,
    strategy_columns,
    warmup_note,
)
from strategy.units import UINT256_MAX

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 10px; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f3f3f3; }
img { max-width: 100%; }
.note { color: #555; font-size: 0.9em; }
"""


def _image(title: str, png: bytes | None) -> str:
    if png is None:
        return ""
    data = base64.b64encode(png).decode("ascii")
    return f'<h2>{escape(title)}</h2>\n<img alt="{escape(title)}" src="data:image/png;base64,{data}">'


def _table(header: list[str], rows: list[list[str]], numeric_from: int = 1) -> str:
    head = "".join(f"<th>{escape(cell)}</th>" for cell in header)
    body = "".join(
        "<tr>" + "".join(
            f'<td class="num">{escape(cell)}</td>' if i >= numeric_from else f"<td>{escape(cell)}</td>"
            for i, cell in enumerate(row)
        ) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(summary: dict[str, Any], charts: dict[str, bytes | None]) -> str:
    """The report page; `charts` maps a title to PNG bytes (None: left out)."""
    window = summary["window"]
    strategies = summary["strategies"]
    metrics = _table(["metric", *strategy_columns(summary)], [[label, *cells] for label, cells in metric_rows(summary)])
    pnl_keys = [*PNL_EFFECTS, "slippage", "gas"]
    pnl = _table(["strategy", *pnl_keys, "guardrail rejections by reason"], [
        [name, *(format_metric(strategy["pnl"][key], "amount") for key in pnl_keys),
         ", ".join(f"{reason}: {count}" for reason, count in strategy["rejection_reasons"].items()) or "none"]
        for name, strategy in strategies.items()
    ])
    guardrails = _table(["guardrail", "value"], [[key, f"{value:,}"] for key, value in summary["guardrails"].items()])
    universe = _table(["pool", "name", "live in the window", "cap (bps)", "cap (base units)"], [
        [entry["pool"], entry["label"], live_span(entry), f"{entry['cap_bps']:,}",
         "none" if entry["cap_abs"] == UINT256_MAX else f"{entry['cap_abs']:,}"]
        for entry in summary["universe"]
    ], numeric_from=3)
    roles = summary["pools"]
    model_only = _table(["pool", "name", "why not investable"], [
        [entry["pool"], entry["label"], entry["why"]] for entry in roles["model_only"]
    ], numeric_from=3) if roles["model_only"] else "<p>none</p>"
    warmup, policy = warmup_note(summary), policy_text(summary)
    notes = "".join(escape(f"; {note}") for note in (warmup, policy) if note)
    costs = _table(["cost / loss setting", "value"], [[key, str(value)] for key, value in summary["costs"].items()])
    images = "\n".join(_image(title, png) for title, png in charts.items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>vaultbot backtest</title><style>{_STYLE}</style></head>
<body>
<h1>vaultbot backtest: {escape(window['start'][:10])} .. {escape(window['end'][:10])}</h1>
<p>Data: {escape(summary['data'])}; config: {escape(summary['config'])}; {window['days']} days;
capital {summary['capital']:,.2f}; rebalance every {summary['rebalance_every_days']} day(s);
{escape(summary['mode'])} mode, rejections by {escape(summary['rejections_by'])};
models trained: {summary['model_trainings']}{notes}.
* marks the chosen strategy, † one that reads the future.</p>
<p class="note">Point-in-time replay: each decision sees only data up to its day. Perfect foresight reads the realised
future: a reference for what knowing it is worth, not a strategy. Values are net of gas, slippage and losses.</p>
<h2>Metrics</h2>
{metrics}
<h2>Where the money went (asset units)</h2>
{pnl}
{images}
<h2>Assumptions</h2>
{guardrails}
{costs}
<h2>Vault universe</h2>
<p>Investable: {escape(roles['rule'])}. A pool is invested in only while it has data: on a decision day
without data it is unknown, and every strategy leaves it.</p>
{universe}
<h2>Pools that only informed the model</h2>
{model_only}
</body></html>
"""

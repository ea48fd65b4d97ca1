"""The self-contained HTML report: metrics with their caveats, interactive charts (the vendored uPlot and the
page's charts.js inlined once, the data as JSON), the P&L by effect, per-month and per-pool tables, every
decision, and the run's assumptions with their units. It opens offline: nothing is fetched."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from backtest.realised import PNL_EFFECTS
from backtest.report.assumptions import assumption_rows
from backtest.report.caveats import MARK
from backtest.report.table import (
    caveat_note,
    format_metric,
    live_span,
    market_share_text,
    metric_rows,
    policy_text,
    strategy_columns,
    warmup_note,
)
from strategy.units import UINT256_MAX
from vaultbot.resources import chart_helpers, chart_library

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 10px; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f3f3f3; }
.note { color: #555; font-size: 0.9em; }
.caveat { color: #8a4b00; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(560px, 100%), 1fr)); gap: 1em 2em; }
figure { margin: 0; min-width: 0; }
figcaption { font-weight: 600; }
.chart { width: 100%; overflow: hidden; }
.chart .u-legend { font-size: 0.8em; }
details { margin: 0.5em 0; }
summary { cursor: pointer; font-weight: 600; }
"""
# Draws every chart of the #chart-data JSON into the element of its id (charts.js: `vaultbotCharts.draw`).
_DRAW = """
for (const [id, spec] of Object.entries(JSON.parse(document.getElementById("chart-data").textContent))) {
  vaultbotCharts.draw(document.getElementById(id), spec);
}
"""


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


def _script_text(text: str) -> str:
    """Text safe inside <script> or <style>: no `</` can close the element early."""
    return text.replace("</", "<\\/")


def _charts(charts: dict[str, dict[str, Any]]) -> str:
    """The charts' figures, the library and the helpers inlined once, and the data they draw; "" without charts."""
    if not charts:
        return ""
    ids = {f"chart-{number}": (title, spec) for number, (title, spec) in enumerate(charts.items())}
    figures = "\n".join(f'<figure><figcaption>{escape(title)}</figcaption><div class="chart" id="{chart_id}"></div>'
                        "</figure>" for chart_id, (title, _) in ids.items())
    library = chart_library()
    data = json.dumps({chart_id: spec for chart_id, (_, spec) in ids.items()}, allow_nan=False)
    script, stylesheet, helpers = (path.read_text(encoding="utf-8")
                                   for path in (library.script, library.stylesheet, chart_helpers()))
    licence = library.licence.read_text(encoding="utf-8").replace("--", "- -")  # a comment may not hold "--"
    return f"""<h2>Charts</h2>
<p class="note">Drag across a chart to zoom in, double-click to zoom out, click a legend entry to hide or show its
series; the legend shows the day under the cursor, else the last one. Days are the replay's UTC days.</p>
<div class="charts">
{figures}
</div>
<!-- The charts are drawn by uPlot (its version is in its first line), inlined under this licence:
{licence}
-->
<style>{_script_text(stylesheet)}</style>
<script>{_script_text(script)}</script>
<script>{_script_text(helpers)}</script>
<script type="application/json" id="chart-data">{_script_text(data)}</script>
<script>{_DRAW}</script>"""


def _per_month(summary: dict[str, Any]) -> str:
    months = summary["per_month"]
    names = list(summary["strategies"])
    return _table(["month (UTC)", "days", *(f"{name}: return" for name in names)], [
        [month, str(days), *(format_metric(months["returns"][name][i], "pct") for name in names)]
        for i, (month, days) in enumerate(zip(months["months"], months["days"], strict=True))
    ])


def _per_pool(summary: dict[str, Any]) -> str:
    names = list(summary["strategies"])
    spans = {entry["pool"]: live_span(entry) for entry in summary["universe"]}
    holdings = _table(["pool", "live in the window", "mean APY in the window",
                       *(f"{name}: mean share" for name in names)], [
        [entry["label"], spans[entry["pool"]],
         "n/a" if entry["apy_mean_pct"] is None else f"{entry['apy_mean_pct']:.2f} %",
         *(format_metric(entry["share"][name], "pct") for name in names)]
        for entry in summary["per_pool"]
    ], numeric_from=2)
    forecast_rows = [
        [name, entry["label"], f"{row['n']:,}", f"{row['predicted_pct']:.2f} %", f"{row['realised_pct']:.2f} %",
         f"{row['mae_pp']:.2f} pp", format_metric(row["p_event"], "pct"), format_metric(row["event_share"], "pct")]
        for name in summary["strategies"] for entry in summary["per_pool"]
        for row in [entry["forecasts"].get(name)] if row is not None
    ]
    horizon = summary["forecast_horizon_days"]
    forecasts = _table(["strategy", "pool", "forecasts", "mean predicted APY", f"mean realised APY ({horizon} days)",
                        "mean absolute error", "mean predicted event probability",
                        f"realised event share ({horizon} days)"], forecast_rows, numeric_from=2)
    return f"""<h3>Holdings</h3>
<p class="note">The pool's mean APY over the window's days (its data), and the mean share of the vault's assets
each strategy held in it.</p>
{holdings}
<h3>Forecasts against what was realised</h3>
<p class="note">Per predicting strategy and pool: its APY forecasts against the mean APY realised over the
{horizon} days that followed (complete horizons only), and the probability of a loss event it predicted against
the share of those forecasts that an adverse event (a depeg, an illiquid spell) followed within {horizon} days.</p>
{forecasts if forecast_rows else "<p>no forecast with a complete horizon</p>"}"""


def _decisions(summary: dict[str, Any], decisions: list[dict[str, Any]]) -> str:
    asset = summary["pools"]["asset_symbol"]
    header = ["day", "allocator", "asked to trade", "accepted", "rejected because", f"moved ({asset})",
              f"gas ({asset})", f"slippage ({asset})"]
    parts = []
    for name in summary["strategies"]:
        rows = [[row["date"].date().isoformat(), row["status"], "yes" if row["traded"] else "no",
                 "yes" if row["accepted"] else "no", row["rejection"] or "",
                 *(format_metric(row[key], "amount") for key in ("moved", "gas", "slippage"))]
                for row in decisions if row["strategy"] == name]
        is_open = " open" if name == summary["headline"] else ""
        parts.append(f"<details{is_open}><summary>{escape(name)}: {len(rows):,} decisions</summary>"
                     f"{_table(header, rows, numeric_from=5)}</details>")
    return "\n".join(parts)


def render_html(summary: dict[str, Any], charts: dict[str, dict[str, Any]],
                decisions: list[dict[str, Any]] | None = None) -> str:
    """The report page; `charts` maps a title to a chart spec (`backtest.report.charts`; none: no charts),
    `decisions` are `exports.decision_rows` (None: no decisions table)."""
    window = summary["window"]
    strategies = summary["strategies"]
    metrics = _table(["metric", *strategy_columns(summary)], [[label, *cells] for label, cells in metric_rows(summary)])
    caveat = caveat_note(summary)
    pnl_keys = [*PNL_EFFECTS, "slippage", "gas"]
    asset = summary["pools"]["asset_symbol"]
    pnl = _table(["strategy", *(f"{key} ({asset})" for key in pnl_keys), "guardrail rejections by reason"], [
        [name, *(format_metric(strategy["pnl"][key], "amount") for key in pnl_keys),
         ", ".join(f"{reason}: {count}" for reason, count in strategy["rejection_reasons"].items()) or "none"]
        for name, strategy in strategies.items()
    ])
    universe = _table(["pool", "name", "live in the window", "cap (bps)", "cap (base units)"], [
        [entry["pool"], entry["label"], live_span(entry), f"{entry['cap_bps']:,}",
         "none" if entry["cap_abs"] == UINT256_MAX else f"{entry['cap_abs']:,}"]
        for entry in summary["universe"]
    ], numeric_from=3)
    roles = summary["pools"]
    model_only = _table(["pool", "name", "why not investable"], [
        [entry["pool"], entry["label"], entry["why"]] for entry in roles["model_only"]
    ], numeric_from=3) if roles["model_only"] else "<p>none</p>"
    warmup, policy, share = warmup_note(summary), policy_text(summary), market_share_text(summary)
    notes = "".join(escape(f"; {note}") for note in (warmup, policy, share) if note)
    assumptions = _table(["setting", "value", "what it stands for"], assumption_rows(summary), numeric_from=3)
    decided = "" if decisions is None else f"""<h2>Decisions</h2>
<p class="note">Every decision day of every strategy: what the allocator found, whether it asked for a change,
what the vault made of it. The same rows are in decisions.csv.</p>
{_decisions(summary, decisions)}"""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>vaultbot backtest</title><style>{_STYLE}</style></head>
<body>
<h1>vaultbot backtest: {escape(window['start'][:10])} .. {escape(window['end'][:10])}</h1>
<p>Data: {escape(summary['data'])}; config: {escape(summary['config'])}; {window['days']} days;
capital {summary['capital']:,.2f} {escape(asset)}; rebalance every {summary['rebalance_every_days']} day(s);
{escape(summary['mode'])} mode, rejections by {escape(summary['rejections_by'])};
models trained: {summary['model_trainings']}{notes}.
* marks the chosen strategy, † one that reads the future, {MARK} a metric that is not meaningful for it.</p>
<p class="note">Point-in-time replay: each decision sees only data up to its day. Perfect foresight reads the realised
future: a reference for what knowing it is worth, not a strategy. Values are net of gas, slippage and losses.</p>
<h2>Metrics</h2>
{metrics}
{f'<p class="caveat" id="caveat">{escape(caveat)}</p>' if caveat else ""}
<h2>Where the money went</h2>
{pnl}
{_charts(charts)}
<h2>Per month</h2>
<p class="note">Each strategy's return over the month, from its net value at the end of the month before (the
capital for the first); a month the window cuts has fewer days.</p>
{_per_month(summary)}
<h2>Per pool</h2>
{_per_pool(summary)}
{decided}
<h2>Assumptions</h2>
{assumptions}
<h2>Vault universe</h2>
<p>Investable: {escape(roles['rule'])}. A pool is invested in only while it has data: on a decision day
without data it is unknown, and every strategy leaves it.</p>
{universe}
<h2>Pools that only informed the model</h2>
{model_only}
</body></html>
"""

"""Backtest outputs: `report.json` (the summary), `report.html` (self-contained: interactive charts with the
chart library inline), CSV tables per day and per decision (`exports`) and the terminal table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

from backtest.errors import BacktestError
from backtest.report.charts import report_charts
from backtest.report.exports import decision_rows, write_csv_tables
from backtest.report.html import render_html
from backtest.report.summary import summarise
from backtest.report.table import market_share_text, policy_text, rich_table
from backtest.run import BacktestResult

__all__ = ["ReportFiles", "market_share_text", "policy_text", "rich_table", "summarise", "write_report"]


class ReportFiles(NamedTuple):
    json: Path
    html: Path
    tables: list[Path]  # CSV


def write_report(result: BacktestResult, directory: Path, summary: dict[str, Any] | None = None) -> ReportFiles:
    """Write `report.json`, `report.html` and the CSV tables into `directory` (created if missing)."""
    summary = summary if summary is not None else summarise(result)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        files = ReportFiles(directory / "report.json", directory / "report.html", write_csv_tables(result, directory))
        files.json.write_text(json.dumps(summary, indent=1, allow_nan=False) + "\n", encoding="utf-8")
        files.html.write_text(render_html(summary, report_charts(result), decision_rows(result)), encoding="utf-8")
    except OSError as error:
        raise BacktestError(f"`report`: cannot write to {directory}: {error.strerror or error}", "report") from None
    return files

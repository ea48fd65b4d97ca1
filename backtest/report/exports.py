"""Per-day and per-decision tables of every strategy as CSV, for analysis outside vaultbot (amounts in asset
units, slippage and gas of decisions too; dates are the UTC days of the replay)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from backtest.engine import DayDecision
from backtest.run import BacktestResult
from strategy.data.schema import POOL, TIMESTAMP

CSV_FILES = ("values.csv", "positions.csv", "decisions.csv", "forecasts.csv")
DECISION_COLUMNS = ["strategy", "date", "status", "traded", "accepted", "rejection", "moved", "gas", "slippage"]


def write_csv_tables(result: BacktestResult, directory: Path) -> list[Path]:
    """`CSV_FILES` in `directory`: values (total, idle, gas, net per day), positions (per day and pool),
    decisions (each rebalance decision and what the vault made of it) and forecasts (per decision and pool)."""
    tables = {
        "values.csv": _long({name: run.values for name, run in result.runs.items()}, "date"),
        "positions.csv": _long({name: _amounts(run.positions) for name, run in result.runs.items()}, "date"),
        "decisions.csv": pd.DataFrame(decision_rows(result), columns=DECISION_COLUMNS),
        "forecasts.csv": pd.concat([run.forecasts.assign(strategy=name) for name, run in result.runs.items()],
                                   ignore_index=True)[["strategy", TIMESTAMP, POOL, "apy_pct", "p_event"]]
        .rename(columns={TIMESTAMP: "date"}),
    }
    paths = []
    for name, table in tables.items():
        path = directory / name
        table.to_csv(path, index=False, date_format="%Y-%m-%d")
        paths.append(path)
    return paths


def _long(frames: dict[str, pd.DataFrame], index_name: str) -> pd.DataFrame:
    """Frames indexed by day, one per strategy, stacked with a `strategy` column first."""
    # pandas-stubs type the names as str only; pandas takes any level names (a level may have none)
    parts = [frame.rename_axis(index=[index_name, *frame.index.names[1:]])  # type: ignore[list-item]
             .reset_index().assign(strategy=name) for name, frame in frames.items()]
    table = pd.concat(parts, ignore_index=True)
    return table[["strategy", *[c for c in table.columns if c != "strategy"]]]


def _amounts(positions: pd.DataFrame) -> pd.DataFrame:
    """Positions (days by pools) as one `amount` column indexed by day and pool."""
    stacked = positions.rename_axis(columns=POOL).stack()
    if not isinstance(stacked, pd.Series):  # stacking the one level of columns leaves none: a Series
        raise TypeError(f"positions with columns {positions.columns!r} do not stack to one amount per day and pool")
    return stacked.rename("amount").to_frame()


def decision_rows(result: BacktestResult) -> list[dict]:
    """Every strategy's decisions in order, each a `DECISION_COLUMNS` row (amounts in asset units): the CSV's
    rows and the HTML report's decisions table."""
    return [_decision_row(name, decision, run.unit) for name, run in result.runs.items() for decision in run.decisions]


def _decision_row(strategy: str, decision: DayDecision, unit: int) -> dict:
    return {
        "strategy": strategy, "date": decision.day, "status": decision.status.value, "traded": decision.traded,
        "accepted": decision.accepted, "rejection": "; ".join(decision.rejections),
        "moved": decision.moved / unit, "gas": decision.gas / unit, "slippage": decision.slippage / unit,
    }

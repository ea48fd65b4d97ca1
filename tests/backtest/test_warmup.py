"""The ML strategy's warm-up: in cash while there is too little history to train, retried at every decision,
reported as "warm-up until <day>"; a run in which it never trains stops with the reason on one line."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from backtest.engine import replay
from backtest.errors import BacktestError
from backtest.market import MarketData, synthetic_market
from backtest.model import ModelForecaster
from backtest.report import rich_table, summarise
from backtest.report.html import render_html
from backtest.run import RunConfig, build_setup, run_backtest
from strategy.config import ModelSettings
from tests.backtest.conftest import make_setup
from tests.cli import vaultbot

FIRST = pd.Timestamp("2024-01-01", tz="UTC")
LAST = FIRST + pd.Timedelta(days=49)
SEED = 8  # three investable (stablecoin) pools


@pytest.fixture(scope="module")
def fresh() -> MarketData:
    """A synthetic market whose history starts on the window's first day: nothing to train on at first."""
    return synthetic_market(4, FIRST, LAST, warmup_days=0, seed=SEED)


def test_the_model_stays_in_cash_until_it_can_train_then_trades(fresh: MarketData) -> None:
    model = ModelForecaster(ModelSettings())
    setup = make_setup(fresh, FIRST, LAST, rebalance_every=5)
    run = replay(setup, model)
    first = model.first_trained
    assert first is not None and first > FIRST  # too little history on the first decision days
    assert model.trainings == [first] and model.untrained_reason is None
    before = [decision for decision in run.decisions if decision.day < first]
    assert len(before) >= 3 and not any(decision.traded for decision in before)  # retried at each, no forecast
    warming = run.values[run.values.index < first]
    assert (warming["idle"] == warming["total"]).all()  # in cash
    assert any(decision.accepted for decision in run.decisions if decision.day >= first)


def test_the_report_says_until_when_the_model_warmed_up(fresh: MarketData) -> None:
    config = RunConfig.load(None)
    result = run_backtest(build_setup(fresh, FIRST, LAST, config, 1_000_000, 5), config, "ml")
    assert result.model_first_trained is not None and result.model_trainings == 1
    summary = summarise(result)
    assert summary["model_warmup_until"] == result.model_first_trained.date().isoformat()
    console = Console(width=200, record=True)
    console.print(rich_table(summary))
    assert f"ml: warm-up until {summary['model_warmup_until']}" in console.export_text()
    assert f"; ml: warm-up until {summary['model_warmup_until']}, in cash before" in render_html(summary, {})


def test_a_model_that_never_trains_stops_the_run_with_the_reason(fresh: MarketData) -> None:
    config = RunConfig.load(None)
    short = build_setup(fresh, FIRST, FIRST + pd.Timedelta(days=14), config, 1_000_000, 1)
    with pytest.raises(BacktestError, match=r"^the ml model never trained between 2024-01-01 and 2024-01-15: "
                                            r"too little history to train: "):
        run_backtest(short, config, "ml")


def test_the_cli_names_why_the_model_never_trained_on_one_line(tmp_path: Path) -> None:
    result = vaultbot(
        "backtest", "run", "--synthetic", "--synthetic-pools", "4", "--warmup-days", "0", "--seed", str(SEED),
        "--start", "2024-01-01", "--end", "2024-01-15", "--strategy", "ml", "--report", str(tmp_path))
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: the ml model never trained between 2024-01-01 and 2024-01-15: too")
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not (tmp_path / "report.json").exists()

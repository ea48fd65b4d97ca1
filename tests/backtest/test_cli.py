"""`vaultbot backtest run|lookahead` in fast mode from the command line: table, report files, errors."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from keeper.cli import app

SMALL = ["--synthetic", "--synthetic-pools", "4", "--warmup-days", "90", "--start", "2024-01-01",
         "--end", "2024-02-15", "--rebalance-every", "7"]
STRATEGIES = ["ml", "equal", "trailing-best", "hold", "perfect-foresight"]


def backtest(*args: str):
    return CliRunner().invoke(app, ["backtest", *args])


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict, Path]:
    directory = tmp_path_factory.mktemp("report")
    result = backtest("run", *SMALL, "--report", str(directory))
    assert result.exit_code == 0, result.output
    return result.output, json.loads((directory / "report.json").read_text()), directory


def test_a_run_prints_the_ml_strategy_next_to_every_baseline(report) -> None:
    output, data, _ = report
    assert "net APY" in output and "max" in output
    assert list(data["strategies"]) == STRATEGIES
    assert data["headline"] == "ml" and data["mode"] == "fast"
    assert data["strategies"]["perfect-foresight"]["leaky"] and not data["strategies"]["ml"]["leaky"]
    for strategy in data["strategies"].values():
        metrics = strategy["metrics"]
        assert metrics["final_value"] > 0
        assert 0 <= metrics["max_drawdown"] < 1 and metrics["rejections"] == 0
    assert data["strategies"]["ml"]["metrics"]["rebalances"] >= 1


def test_the_html_report_is_self_contained_with_its_charts(report) -> None:
    html = (report[2] / "report.html").read_text()
    for chart in ("Value over time", "Allocation over time", "Predicted vs realised APY"):
        assert f'alt="{chart}" src="data:image/png;base64,' in html
    assert "http://" not in html and "https://" not in html  # opens offline


def test_the_same_seed_gives_the_same_result(report, tmp_path: Path) -> None:
    again = backtest("run", *SMALL, "--report", str(tmp_path))
    assert again.exit_code == 0, again.output
    assert json.loads((tmp_path / "report.json").read_text())["strategies"] == report[1]["strategies"]


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--strategy", "magic"], 2, "magic"),
    (["--start", "2024-03-01", "--end", "2024-02-01"], 2, "is after --end"),
    (["--rebalance-every", "0"], 2, "--rebalance-every"),
])
def test_bad_flags_are_one_line_errors(args: list[str], code: int, message: str, tmp_path: Path) -> None:
    result = backtest("run", *SMALL, *args, "--report", str(tmp_path))
    assert result.exit_code == code, result.output
    assert message in result.output and "Traceback" not in result.output


def test_missing_data_is_named(tmp_path: Path) -> None:
    result = backtest("run", "--data", str(tmp_path / "nope.csv"), "--start", "2024-01-01", "--end", "2024-02-01",
                      "--report", str(tmp_path))
    assert result.exit_code == 1
    assert "nope.csv" in result.output


def test_lookahead_finds_no_decision_that_changes() -> None:
    result = backtest("lookahead", *SMALL)
    assert result.exit_code == 0, result.output

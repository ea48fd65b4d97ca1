"""The HTML report: self-contained (nothing fetched, the vendored chart library inlined once), interactive charts
that draw in Chromium, the drawdown, the per-month and per-pool tables, every decision, the assumptions with
their units, and the caveat on Sharpe and Sortino where the series is near-riskless (and only there): the
synthetic lending market, a yield that swings but never loses, and a pool whose price swings for a real loss."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest

from backtest.market import MarketData
from backtest.report import write_report
from backtest.report.caveats import month_of_yield
from backtest.report.exports import DECISION_COLUMNS
from backtest.run import BacktestResult, RunConfig, run_backtest
from tests.backtest.conftest import START, history_frame, make_setup, meta_frame
from vaultbot.resources import chart_helpers, chart_library

CHROMIUM = Path("/usr/bin/chromium")
# the library's own first line names its home page: the one URL of a report, and nothing is loaded from it
LIBRARY_BANNER_URL = "https://github.com/leeoniya/uPlot"


def _report(result: BacktestResult, directory: Path) -> tuple[str, dict]:
    files = write_report(result, directory)
    return files.html.read_text(encoding="utf-8"), json.loads(files.json.read_text())


@pytest.fixture(scope="module")
def calm(market: MarketData, tmp_path_factory: pytest.TempPathFactory) -> tuple[BacktestResult, str, dict]:
    """The synthetic lending market replayed for 90 days: a near-riskless series."""
    result = run_backtest(make_setup(market, rebalance_every=7), RunConfig.load(None), "equal")
    return result, *_report(result, tmp_path_factory.mktemp("calm"))


def _hand_made(directory: Path, swinging: list[tuple[float, float, float]]) -> tuple[BacktestResult, str, dict]:
    """A pool of the given daily (apy, tvl, price) beside a steady 3 % one, both stablecoin lending pools of a
    made-up token (a price below 1 is a depeg the vault is marked to), replayed from START with the equal split
    as the headline; 20 days of data before START."""
    steady = [(3.0, 5e7, 1.0)] * len(swinging)
    start = START - pd.Timedelta(days=20)
    history = history_frame({"swinging": swinging, "steady": steady}, start=str(start.date()))
    market = MarketData(history, None, meta_frame({"swinging": True, "steady": True}), "hand-made", synthetic=True)
    setup = make_setup(market, start=START, end=start + pd.Timedelta(days=len(swinging) - 1))
    result = run_backtest(setup, RunConfig.load(None), "equal")
    return result, *_report(result, directory)


@pytest.fixture(scope="module")
def wobbly(tmp_path_factory: pytest.TempPathFactory) -> tuple[BacktestResult, str, dict]:
    """A pool whose APY jumps between 0 and 400 % from one day to the next: returns that swing, never a loss."""
    return _hand_made(tmp_path_factory.mktemp("wobbly"), [(0.0 if day % 2 else 400.0, 5e7, 1.0) for day in range(60)])


@pytest.fixture(scope="module")
def risky(tmp_path_factory: pytest.TempPathFactory) -> tuple[BacktestResult, str, dict]:
    """A 30 % pool whose token depegs to 0.98 for good on day 40 of 60: a real loss, and a positive return."""
    return _hand_made(tmp_path_factory.mktemp("risky"), [(30.0, 5e7, 1.0 if day < 40 else 0.98) for day in range(60)])


def _chart_data(html: str) -> dict:
    found = re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', html, re.DOTALL)
    assert found, "no chart data"
    return json.loads(found.group(1).replace("<\\/", "</"))


def test_the_report_fetches_nothing_and_inlines_the_chart_library_once(calm) -> None:
    _, html, _ = calm
    assert re.findall(r"https?://[^\s\"'<>)]+", html) == [LIBRARY_BANNER_URL]  # in a comment of the inlined file
    assert not re.search(r"""\b(src|href)\s*=|url\(|@import""", html)  # no resource refers outside the file
    library = chart_library()
    for part in (library.script, library.stylesheet, chart_helpers()):
        assert html.count(part.read_text(encoding="utf-8")) == 1, part.name
    assert library.licence.read_text(encoding="utf-8") in html  # the MIT licence travels with the copy
    assert html.count("var uPlot=") == 1


def test_the_charts_draw_in_a_browser_with_nothing_loaded(calm) -> None:
    result, html, _ = calm
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: run `./run setup` (it installs Debian's chromium with apt-get)")
    from playwright.sync_api import sync_playwright

    charts = _chart_data(html)
    # the net value and drawdown of every strategy, one allocation per strategy, the predictions of the
    # predicting strategies (the equal headline runs trailing-best beside it)
    assert len(charts) == 2 + len(result.runs) + 1
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox"])
        try:
            page = browser.new_page()
            requests, errors = [], []
            page.on("request", lambda request: requests.append(request.url))
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.set_content(html)  # one file: any resource it named would be requested, and recorded
            page.wait_for_function(f"document.querySelectorAll('.chart canvas').length === {len(charts)}")
            for chart_id, spec in charts.items():
                ticks = page.evaluate("id => document.getElementById(id).chart.axes[0]._values", chart_id)
                if spec["time"]:  # the days of the replay, on a UTC date axis
                    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", tick) for tick in ticks), (chart_id, ticks)
            assert requests == [] and errors == [], (requests, errors)
        finally:
            browser.close()


def test_the_drawdown_chart_is_the_max_drawdown_of_each_strategy(calm) -> None:
    _, html, summary = calm
    [drawdown] = [spec for spec in _chart_data(html).values() if spec["yLabel"].startswith("below the running peak")]
    assert [series["label"] for series in drawdown["series"]] == list(summary["strategies"])
    for series in drawdown["series"]:
        deepest = -min(series["values"]) / 100
        metrics = summary["strategies"][series["label"]]["metrics"]
        assert deepest == pytest.approx(metrics["max_drawdown"], abs=1e-6)  # drawn to 1e-4 of a percent
        assert series["texts"][series["values"].index(min(series["values"]))] == f"{metrics['max_drawdown']:.2%}"
    assert "<figcaption>Drawdown over time</figcaption>" in html


def test_the_monthly_returns_compound_to_the_cumulative_return(calm) -> None:
    _, html, summary = calm
    months = summary["per_month"]
    assert months["months"] == ["2024-03", "2024-04", "2024-05"] and sum(months["days"]) == summary["window"]["days"]
    for name, strategy in summary["strategies"].items():
        compounded = math.prod(1 + month for month in months["returns"][name]) - 1
        assert compounded == pytest.approx(strategy["metrics"]["cumulative_return"], rel=1e-9)
    assert "<h2>Per month</h2>" in html and "<td>2024-04</td>" in html


def test_the_pool_table_holds_each_listed_pool_with_shares_and_forecasts(calm) -> None:
    result, html, summary = calm
    rows = summary["per_pool"]
    assert [row["pool"] for row in rows] == result.setup.pools
    for name, run in result.runs.items():
        idle = float((run.values["idle"] / run.values["total"]).mean())
        assert sum(row["share"][name] for row in rows) + idle == pytest.approx(1, abs=1e-9)
    forecasts = [row["forecasts"]["trailing-best"] for row in rows if "trailing-best" in row["forecasts"]]
    assert forecasts and all(forecast["mae_pp"] >= 0 and 0 <= forecast["p_event"] <= 1 for forecast in forecasts)
    for row in rows:
        assert f"<td>{row['label']}</td>" in html


def test_every_decision_is_in_the_html_as_in_the_csv(calm, tmp_path: Path) -> None:
    result, html, _ = calm
    csv = pd.read_csv(write_report(result, tmp_path).tables[2])
    assert list(csv.columns) == DECISION_COLUMNS
    for name in result.runs:
        block = re.search(rf"<details( open)?><summary>{re.escape(name)}: ([\d,]+) decisions</summary>(.*?)</details>",
                          html, re.DOTALL)
        assert block, name
        assert (block.group(1) == " open") == (name == result.headline)  # the chosen strategy's is open
        rows = block.group(3).count("<tr>") - 1  # the header's row
        assert int(block.group(2).replace(",", "")) == rows == (csv["strategy"] == name).sum()


def test_the_assumptions_carry_their_units(calm) -> None:
    _, html, summary = calm
    rails, costs = summary["guardrails"], summary["costs"]
    for shown in (f"{rails['max_turnover_bps']:,} bps ({rails['max_turnover_bps'] / 100:g} %)",
                  f"{rails['min_rebalance_interval']:,} s", f"{costs['gas_per_market']:,} gas",
                  f"{costs['gas_price_gwei']:g} gwei", f"{costs['native_price']:,.10g} USDC per native token",
                  f"{summary['capital']:,.2f} USDC"):
        assert f"<td>{shown}</td>" in html, shown
    for key in (*rails, *costs):
        assert f"<td>{key}</td>" in html, key


def _sharpe_cells(html: str) -> list[str]:
    return re.findall(r"<td[^>]*>([^<]*)</td>", re.search(r"<tr><td>Sharpe</td>(.*?)</tr>", html).group(1))


def test_a_near_riskless_series_gets_the_caveat_beside_its_sharpe(calm) -> None:
    _, html, summary = calm
    for name, strategy in summary["strategies"].items():
        assert strategy["metrics"]["max_drawdown"] < month_of_yield(strategy["metrics"]), name
        assert set(strategy["caveats"]) == {"sharpe", "sortino"}
        assert strategy["metrics"]["sharpe"] > 5, name  # what the caveat is for: a Sharpe no risky asset has
    assert all(cell.endswith(" ‡") for cell in _sharpe_cells(html))
    assert 'id="caveat"' in html and "near-riskless" in html


def test_a_yield_that_swings_but_never_loses_gets_the_caveat_too(wobbly) -> None:
    """Its volatility is that of a risky asset (a volatility floor would call its Sharpe meaningful); it lost
    nothing but a rebalance's costs, so its Sharpe measures nothing but how the yield swung."""
    _, html, summary = wobbly
    equal = summary["strategies"]["equal"]
    assert equal["metrics"]["max_drawdown"] < 0.001 and equal["metrics"]["volatility"] > 0.01
    assert set(equal["caveats"]) == {"sharpe", "sortino"}
    assert _sharpe_cells(html)[list(summary["strategies"]).index("equal")].endswith(" ‡")


def test_a_series_with_real_losses_gets_no_caveat(risky) -> None:
    _, html, summary = risky
    for name, strategy in summary["strategies"].items():
        near_riskless = strategy["metrics"]["max_drawdown"] < month_of_yield(strategy["metrics"])
        assert bool(strategy["caveats"]) == near_riskless, name
    equal = summary["strategies"]["equal"]
    assert equal["metrics"]["net_apy"] > 0 and equal["metrics"]["max_drawdown"] > month_of_yield(equal["metrics"])
    assert equal["caveats"] == {} and 0 < equal["metrics"]["sharpe"] < 5
    assert "‡" not in _sharpe_cells(html)[list(summary["strategies"]).index("equal")]

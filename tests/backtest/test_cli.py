"""`vaultbot backtest run|lookahead` in fast mode from the command line: table, report files, errors; and the
fork-mode flags refused before any chain is started."""

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from web3 import Web3

from backtest.market import synthetic_market
from tests.backtest.conftest import default_pools
from tests.cli import vaultbot

SMALL = ["--synthetic", "--synthetic-pools", "4", "--warmup-days", "90", "--start", "2024-01-01",
         "--end", "2024-02-15", "--rebalance-every", "7"]
STRATEGIES = ["ml", "equal", "trailing-best", "hold", "perfect-foresight"]


def backtest(*args: str):
    return vaultbot("backtest", *args)


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


def test_the_csv_tables_agree_with_the_report(report) -> None:
    _, data, directory = report
    days = data["window"]["days"]
    values = pd.read_csv(directory / "values.csv")
    assert list(values.columns) == ["strategy", "date", "total", "idle", "gas", "net"]
    for name, net in data["series"]["net_value"].items():
        assert values.loc[values["strategy"] == name, "net"].tolist() == pytest.approx(net, rel=1e-12)
    positions = pd.read_csv(directory / "positions.csv")
    assert len(positions) == len(STRATEGIES) * days * len(data["universe"])
    decisions = pd.read_csv(directory / "decisions.csv")
    for name, strategy in data["strategies"].items():
        mine = decisions[decisions["strategy"] == name]
        assert int(mine["accepted"].sum()) == strategy["metrics"]["rebalances"]
        assert -mine["slippage"].sum() == pytest.approx(strategy["pnl"]["slippage"], abs=1e-9)
    forecasts = pd.read_csv(directory / "forecasts.csv")
    assert set(forecasts["strategy"]) >= {"ml", "trailing-best"} and forecasts["apy_pct"].notna().all()


def test_each_pools_predicted_event_probability_stands_against_the_events_that_followed(tmp_path: Path) -> None:
    """Per predicting strategy and pool, the report sets the forecasts' event probability against the share of them
    an adverse event followed within the horizon, recounted here from forecasts.csv and the market's targets (in
    the vault's USDC). On the real USDC markets' illiquid spells of summer 2023: the synthetic stablecoin pools have
    no event to count."""
    from backtest.market import load_market
    from strategy.config import StrategyConfig
    from strategy.targets import build_targets
    from tests.shared_data import real_dataset

    dataset = real_dataset()
    if dataset is None or dataset.pools is None:
        pytest.skip("no real market history with pool metadata in ../shared/data (tests/shared_data.py)")
    result = backtest("run", "--data", str(dataset.history), "--pools", str(dataset.pools), "--start", "2023-05-20",
                      "--end", "2023-08-15", "--rebalance-every", "7", "--strategy", "trailing-best",
                      "--report", str(tmp_path))
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "report.json").read_text())
    market = load_market(dataset.history, pools=dataset.pools)
    targets = build_targets(market.history, market.pools, StrategyConfig().model.for_asset("USDC").target_params())
    forecasts = pd.read_csv(tmp_path / "forecasts.csv")
    shares = []
    for entry in data["per_pool"]:
        for name, row in entry["forecasts"].items():
            mine = forecasts[(forecasts["strategy"] == name) & (forecasts["pool"] == entry["pool"])]
            days = pd.to_datetime(mine["date"], utc=True)
            complete = targets.reindex(pd.MultiIndex.from_arrays([days, mine["pool"]])).dropna(subset="fwd_apy_mean")
            assert row["n"] == len(complete)
            assert row["event_share"] == pytest.approx(complete["adverse_event"].mean())
            assert row["p_event"] == pytest.approx(mine["p_event"].mean())
            shares.append(row["event_share"])
    assert max(shares) > 0  # the window holds events: the comparison can fail
    assert "realised event share (7 days)" in (tmp_path / "report.html").read_text()


def test_the_html_report_is_self_contained_with_its_charts(report) -> None:
    html = (report[2] / "report.html").read_text()
    for chart in ("Net value over time", "Drawdown over time", "Allocation over time: ml",
                  "Predicted vs realised APY: ml"):
        assert f"<figcaption>{chart}" in html
    assert '<script type="application/json" id="chart-data">' in html
    assert not re.search(r"""\b(src|href)\s*=|url\(|@import""", html)  # opens offline (tests/backtest/test_report.py)


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


# ---------------------------------------------------------------- --fork-market, refused before anvil starts

FORK = ["--fork-url", "http://127.0.0.1:1", "--fork-block", "0"]  # never reached: every case fails first
SEED = ["--seed", "8"]  # a market with three investable (stablecoin) pools


def address(index: int) -> str:
    return Web3.to_checksum_address(f"0x{'abcdef' * 6}{index:04x}")  # letters enough for a mixed-case checksum


@pytest.fixture(scope="module")
def pools() -> list[str]:
    """The pool ids of the SMALL synthetic market at seed 8, in the order the backtest lists them."""
    start = pd.Timestamp("2024-01-01", tz="UTC")
    end = pd.Timestamp("2024-02-15", tz="UTC")
    return default_pools(synthetic_market(4, start, end, 90, int(SEED[1])), start, end)


def fork_markets(pairs: list[tuple[str, str]]) -> list[str]:
    return [arg for pool, market in pairs for arg in ("--fork-market", f"{pool}={market}")]


@pytest.mark.parametrize(("case", "message"), [
    ("without fork mode", "--fork-market lists markets already on a forked chain: give --fork-url and --fork-block"),
    ("no equals sign", "--fork-market 'POOL': expected POOL=0xADDRESS"),
    ("not an address", "=0x1234: not an address (0x and 40 hex digits)"),
    ("bad checksum", "the mixed-case checksum is wrong (a typo?)"),
    ("pool twice", "is given twice"),
    ("market twice", "name the same market"),
    ("unknown pool", "--fork-market: no-such-pool not among the backtest's pools ("),
    ("missing pool", "--fork-market: no market for pool(s) "),
])
def test_bad_fork_markets_are_one_line_usage_errors(pools: list[str], case: str, message: str,
                                                    tmp_path: Path) -> None:
    every = [(pool, address(i)) for i, pool in enumerate(pools)]
    checksummed = address(0)
    wrong_case = checksummed[:2] + "".join(c.swapcase() if c.isalpha() else c for c in checksummed[2:])
    assert wrong_case.lower() != wrong_case != wrong_case.upper()  # mixed case: the checksum applies
    flags = {
        "without fork mode": fork_markets(every),
        "no equals sign": [*FORK, "--fork-market", "POOL"],
        "not an address": [*FORK, *fork_markets([(pools[0], "0x1234")])],
        "bad checksum": [*FORK, *fork_markets([(pools[0], wrong_case)])],
        "pool twice": [*FORK, *fork_markets([*every, (pools[0], address(99))])],
        "market twice": [*FORK, *fork_markets([*every[:-1], (pools[-1], address(0).lower())])],
        "unknown pool": [*FORK, *fork_markets([*every, ("no-such-pool", address(99))])],
        "missing pool": [*FORK, *fork_markets(every[:-1])],
    }[case]
    result = backtest("run", *SMALL, *SEED, *flags, "--report", str(tmp_path))
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    if case == "missing pool":
        assert result.stderr.strip().endswith(f"{pools[-1]}; give one for every pool of the backtest, "
                                              f"or none to deploy new markets")


def test_a_model_counting_losses_in_another_asset_than_the_vaults_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "vaultbot.toml"
    config.write_text('[strategy.model]\nasset_symbol = "DAI"\n\n[backtest]\nasset_symbol = "USDC"\n')
    result = backtest("run", *SMALL, "--config", str(config), "--report", str(tmp_path))
    assert result.exit_code == 2, result.output
    assert "strategy.model.asset_symbol is DAI, but the vault's asset is USDC" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_a_position_that_is_a_notable_part_of_a_markets_supply_is_said(report, tmp_path: Path) -> None:
    """At the default 1,000,000 the synthetic market's smallest pools are small beside the vault: the run says
    how much of one's supply it held, as report.json records it; at 1,000 it is too little to say."""
    output, data, _ = report
    shares = {name: entry["largest_market_share"] for name, entry in data["strategies"].items()}
    largest = max(shares.values(), key=lambda share: share["share"])
    assert largest["share"] >= 0.01
    assert f"held {largest['share']:.1%} of {largest['label']}'s supply on {largest['day']}" in \
        " ".join(output.split())
    small = backtest("run", *SMALL, "--strategy", "trailing-best", "--capital", "1000", "--report", str(tmp_path))
    assert small.exit_code == 0, small.output
    small_shares = json.loads((tmp_path / "report.json").read_text())["strategies"]
    held = [entry["largest_market_share"] for entry in small_shares.values() if entry["largest_market_share"]]
    assert held and all(0 < share["share"] < 0.01 for share in held)  # None: a strategy whose trades never paid
    assert "note: " not in small.output and "supply" not in small.output

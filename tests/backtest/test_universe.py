"""Which pools a vault may hold (its asset's), which pools a run lists (every one live in the window), how
every strategy leaves a pool whose data stops and enters one whose data starts, and what the report says."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest
from rich.console import Console

from backtest.baselines import EqualForecaster, HoldForecaster, TrailingBestForecaster
from backtest.engine import Forecaster, Setup, replay
from backtest.errors import BacktestError
from backtest.market import MarketData, investable_pools
from backtest.report import rich_table, summarise
from backtest.report.html import render_html
from backtest.run import RunConfig, build_setup, run_backtest
from config import BacktestSettings
from strategy.allocator import UNKNOWN_MARKET
from strategy.config import StrategyConfig
from tests.backtest.conftest import history_frame

FIRST = pd.Timestamp("2024-01-01", tz="UTC")
DAYS = 30
LAST = FIRST + pd.Timedelta(days=DAYS - 1)
STOP = 10  # the day "stops" has no row any more
START = 12  # the first day "starts" has a row


def meta(symbols: dict[str, str], stable: bool = True) -> pd.DataFrame:
    """Pool metadata with the given symbols (all stablecoin pools unless `stable` is False)."""
    return pd.DataFrame({"pool": list(symbols), "chain": "Ethereum", "project": "test-lend",
                         "symbol": list(symbols.values()), "stablecoin": stable,
                         "underlying_tokens": [[] for _ in symbols]})


def day(index: int) -> pd.Timestamp:
    return FIRST + pd.Timedelta(days=index)


# "stops" pays best and is the biggest until its data stops; "starts" pays best once its data starts.
ROWS = {
    "stops": [(12.0, 9e7, 1.0)] * STOP + [None] * (DAYS - STOP),
    "starts": [None] * START + [(15.0, 1e7, 1.0)] * (DAYS - START),
    "steady": [(5.0, 5e7, 1.0)] * DAYS,
    "slow": [(3.0, 4e7, 1.0)] * DAYS,
    "usdt": [(20.0, 8e8, 1.0)] * DAYS,  # another asset: pays best, never investable
    "gone": [(4.0, 1e7, 1.0)] * 3 + [None] * (DAYS - 3),  # a USDC pool that ends before the window
}
SYMBOLS = {"stops": "USDC", "starts": "usdc", "steady": "USDC", "slow": "USDC", "usdt": "USDT", "gone": "USDC"}
MARKET = MarketData(history_frame(ROWS), None, meta(SYMBOLS), "rows")
WINDOW = (day(5), LAST)


def config(**backtest: object) -> RunConfig:
    return RunConfig(StrategyConfig(), BacktestSettings(**backtest), "test.toml")


def setup_of(market: MarketData = MARKET, **backtest: object) -> Setup:
    return build_setup(market, *WINDOW, config(**backtest), capital=1_000_000, rebalance_every=1)


def test_the_investable_pools_are_those_of_the_vaults_asset() -> None:
    usdc = investable_pools(MARKET, "USDC")
    assert usdc.pools == {"stops", "starts", "steady", "slow", "gone"}  # symbols compared case-insensitively
    assert usdc.rule == "pools whose metadata symbol is USDC"
    assert investable_pools(MARKET, "usdt").pools == {"usdt"}
    without_metadata = investable_pools(MarketData(MARKET.history, None, None, "rows"), "USDC")
    assert without_metadata.pools == set(ROWS) and without_metadata.rule.startswith("no pool metadata")


def test_a_synthetic_markets_stablecoin_lending_pools_stand_in_for_the_asset() -> None:
    history = history_frame({"a": [(5.0, 1e6, 1.0)] * 3, "b": [(5.0, 1e6, 1.0)] * 3, "c": [(5.0, 1e6, 1.0)] * 3})
    symbols = {"a": "ZUSD", "b": "NUSD-QUSD", "c": "WETH"}
    stable = meta(symbols).assign(stablecoin=[True, True, False])

    def investable(frame: pd.DataFrame, synthetic: bool = True) -> set[str]:
        return set(investable_pools(MarketData(history, None, frame, "gen", synthetic), "USDC").pools)

    assert investable(stable) == {"a"}  # a pair of stablecoins is an LP position, no market to lend to
    assert "stablecoin lending pools stand in" in investable_pools(MarketData(history, None, stable, "gen", True),
                                                                   "USDC").rule
    assert investable(stable.assign(symbol=["USDC", "NUSD-USDC", "WETH"])) == {"a"}  # a token named USDC: its pool
    assert investable(stable.assign(stablecoin=False)) == {"a", "b", "c"}  # no stablecoin lending pool: every pool
    assert investable(stable, synthetic=False) == set()  # real data is never guessed


def test_the_universe_is_every_investable_pool_live_in_the_window_by_mean_tvl() -> None:
    setup = setup_of()
    # "stops" (9e7 on 5 of 25 days) ranks below "steady" (5e7 every day); "usdt" is another asset and
    # "gone" has no data in the window.
    assert setup.pools == ["steady", "slow", "stops", "starts"]
    assert setup_of(max_markets=2).pools == ["steady", "slow"]
    assert setup.investable is not None and "usdt" not in setup.investable.pools


def test_a_listed_pool_of_another_asset_is_a_one_line_error() -> None:
    with pytest.raises(BacktestError, match=r"^\[backtest.guardrails.markets\] lists usdt, a USDT pool, but the "
                                            r"vault's asset is USDC \(\[backtest\] asset_symbol\)$"):
        setup_of(guardrails={"markets": {"steady": {}, "usdt": {}}})
    assert setup_of(guardrails={"markets": {"usdt": {}}}, asset_symbol="USDT").pools == ["usdt"]


def test_no_pool_of_the_asset_is_a_one_line_error() -> None:
    with pytest.raises(BacktestError, match=r"rows: no pool is a EURC pool .*; the data's pools are USDC, USDT, usdc"):
        setup_of(asset_symbol="EURC")


BASELINES: dict[str, Callable[[], Forecaster]] = {
    "equal": EqualForecaster,
    "trailing-best": TrailingBestForecaster,
    "hold": HoldForecaster,  # remembers "stops" as the biggest pool: the engine's UNKNOWN_MARKET overrides it
}  # (perfect foresight never enters "stops": from the window's start its horizon runs past the pool's last day)


@pytest.mark.parametrize("name", list(BASELINES))
def test_every_baseline_leaves_a_pool_whose_data_stops(name: str) -> None:
    run = replay(setup_of(), BASELINES[name]())
    held = run.positions["stops"]
    assert held[day(STOP - 1)] > 0  # invested while it had data
    # Unknown once its last row is more than a day old (engine.UNKNOWN_AFTER): 40 % of the vault at most, out
    # within the 50 % turnover of one day.
    assert held[day(STOP + 2)] == 0
    assert (held[day(STOP + 2):] == 0).all()
    unknown = run.forecasts[(run.forecasts["pool"] == "stops") & (run.forecasts["timestamp"] >= day(STOP + 1))]
    assert len(unknown) and (unknown["p_event"] == UNKNOWN_MARKET.p_event).all()


def test_a_pool_whose_data_starts_later_is_invested_once_it_has_data() -> None:
    run = replay(setup_of(), TrailingBestForecaster())
    held = run.positions["starts"]
    assert (held[:day(START - 1)] == 0).all()  # unknown before its first row: nothing goes in
    assert held[day(START)] > 0  # it pays best from its first day on


def test_the_report_says_which_pools_were_investable_when_they_were_live_and_which_only_trained() -> None:
    result = run_backtest(setup_of(), config(), "equal")
    summary = summarise(result)
    spans = {entry["pool"]: (entry["live_from"], entry["live_to"]) for entry in summary["universe"]}
    assert spans == {"steady": ("2024-01-06", "2024-01-30"), "slow": ("2024-01-06", "2024-01-30"),
                     "stops": ("2024-01-06", "2024-01-10"), "starts": ("2024-01-13", "2024-01-30")}
    pools = summary["pools"]
    assert (pools["asset_symbol"], pools["rule"]) == ("USDC", "pools whose metadata symbol is USDC")
    assert pools["investable"] == ["steady", "slow", "stops", "starts"]
    assert {entry["pool"]: entry["why"] for entry in pools["model_only"]} == {
        "gone": "no data in the window", "usdt": "a USDT pool"}
    assert "asset_symbol" not in summary["costs"]
    listed = run_backtest(setup_of(guardrails={"markets": {"steady": {}}}), config(), "equal")
    assert {entry["pool"]: entry["why"] for entry in summarise(listed)["pools"]["model_only"]}["slow"] == (
        "not in [backtest.guardrails.markets]")

    console = Console(width=200, record=True)
    console.print(rich_table(summary))
    text = console.export_text()
    assert "investable: pools whose metadata symbol is USDC" in text
    assert "investable (USDC)" in text and "2024-01-13 .. 2024-01-30" in text
    assert "model only: a USDT pool" in text and "model only: no data in the window" in text

    html = render_html(summary, {})
    assert "Investable: pools whose metadata symbol is USDC." in html
    assert "<td>2024-01-06 .. 2024-01-10</td>" in html
    assert "<h2>Pools that only informed the model</h2>" in html and "<td>a USDT pool</td>" in html

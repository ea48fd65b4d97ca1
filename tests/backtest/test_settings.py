"""The [backtest] table, the simulated vault's guardrails, the window and the pool universe."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from backtest.errors import BacktestError, UsageError
from backtest.market import (
    MarketData,
    default_universe,
    investable_pools,
    load_market,
    require_known_pools,
    window_days,
)
from backtest.settings import vault_guardrails
from config import BacktestSettings, ConfigError, load_config
from strategy.units import UINT256_MAX
from tests.backtest.conftest import history_frame

DAY = pd.Timestamp("2024-01-01", tz="UTC")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "vaultbot.toml"
    path.write_text(text)
    return path


def test_defaults_match_the_devnet() -> None:
    guardrails = vault_guardrails(BacktestSettings(), ["p1", "p2"])
    assert (guardrails.min_rebalance_interval, guardrails.max_turnover_bps, guardrails.max_loss_bps,
            guardrails.min_idle_bps) == (3600, 5000, 10, 500)
    assert {pool: (m.cap_bps, m.cap_abs) for pool, m in guardrails.markets.items()} == {
        "p1": (4000, UINT256_MAX), "p2": (4000, UINT256_MAX)}


def test_table_overrides_defaults_and_lists_markets(tmp_path: Path) -> None:
    path = write(tmp_path, """
[strategy.model]
seed = 3
[strategy.costs]
native_price = 2000.0
gas_per_rebalance = 50000
gas_per_market = 100000
[backtest]
gas_price_gwei = 1.0
[backtest.guardrails]
max_turnover_bps = 2000
[backtest.guardrails.markets."pool-a"]
cap_bps = 2500
[backtest.guardrails.markets."pool-b"]
""")
    config = load_config(path)
    settings, costs = config.backtest, config.strategy.costs
    assert settings.configured_markets() == ["pool-a", "pool-b"]
    # 50 000 + 2 × 100 000 gas at 1 gwei and 2000 asset units per ETH, in 6-decimal base units.
    assert costs.price_of_gas(costs.rebalance_gas(2), settings.gas_price_wei, settings.asset_decimals) == round(
        250_000 * 1e-9 * 2000 * 10**6)
    guardrails = vault_guardrails(settings, ["ignored-default-universe"])
    assert guardrails.max_turnover_bps == 2000 and guardrails.min_idle_bps == 500
    assert {p: m.cap_bps for p, m in guardrails.markets.items()} == {"pool-a": 2500, "pool-b": 4000}


@pytest.mark.parametrize(("text", "message"), [
    ("[backtest]\ngas_price = 3\n", r"key backtest.gas_price \(env VAULTBOT_BACKTEST__GAS_PRICE\): unknown key"),
    ("[strategy.costs]\nslippage_bps = -1\n",
     r"key strategy.costs.slippage_bps .*: Input should be greater than or equal to 0"),
    ("[backtest\n", r"config .*vaultbot.toml is not valid TOML"),
])
def test_bad_tables_name_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text))


def test_the_vault_asset_defaults_to_usdc(tmp_path: Path) -> None:
    assert BacktestSettings().asset_symbol == "USDC"
    assert load_config(write(tmp_path, '[backtest]\nasset_symbol = "DAI"\n')).backtest.asset_symbol == "DAI"
    with pytest.raises(ConfigError, match=r"key backtest.asset_symbol .*: String should have at least 1 character"):
        load_config(write(tmp_path, '[backtest]\nasset_symbol = ""\n'))


def test_bad_guardrail_names_the_key(tmp_path: Path) -> None:
    settings = load_config(write(tmp_path, "[backtest.guardrails]\nmax_loss_bps = 20000\n")).backtest
    with pytest.raises(ConfigError, match=r"key backtest.guardrails.max_loss_bps \(env "
                                          r"VAULTBOT_BACKTEST__GUARDRAILS__MAX_LOSS_BPS\): Input should be less than"):
        vault_guardrails(settings, ["p"])


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config .*nope.toml does not exist"):
        load_config(tmp_path / "nope.toml")


def test_window_and_universe() -> None:
    rows = {"small": [(5.0, 1e6, 1.0)] * 5, "big": [(3.0, 9e6, 1.0)] * 5, "late": [None, None, (9.0, 3e7, 1.0)]}
    market = MarketData(history_frame(rows), None, None, "rows")
    days = window_days(market, DAY - pd.Timedelta(days=10), DAY + pd.Timedelta(days=100))
    assert (days[0], days[-1], len(days)) == (DAY, DAY + pd.Timedelta(days=4), 5)  # clipped to the data
    every = investable_pools(market, "USDC")  # no pool metadata: every pool
    # By mean TVL over the window, a day without a row counting 0: "late" (3e7 on 1 of 5 days) after "big".
    assert default_universe(market, days, 5, every) == ["big", "late", "small"]
    assert default_universe(market, days, 1, every) == ["big"]
    assert default_universe(market, days[3:], 5, every) == ["big", "small"]  # "late" has no data in that window
    with pytest.raises(BacktestError, match="empty window: the data covers 2024-01-01 to 2024-01-05"):
        window_days(market, DAY + pd.Timedelta(days=4), DAY + pd.Timedelta(days=30))
    with pytest.raises(UsageError, match="`start` 2024-01-03 is after `end` 2024-01-02"):
        window_days(market, DAY + pd.Timedelta(days=2), DAY + pd.Timedelta(days=1))
    with pytest.raises(BacktestError, match="unknown pool in \\[backtest.guardrails.markets\\]: nowhere"):
        require_known_pools(market, ["big", "nowhere"])


def test_missing_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(BacktestError, match="`data`: file not found: .*history.csv"):
        load_market(tmp_path / "history.csv")
    history = tmp_path / "h.csv"
    history_frame({"p": [(5.0, 1e6, 1.0)] * 3}).to_csv(history, index=False)
    with pytest.raises(BacktestError, match="`pools`: file not found"):
        load_market(history, pools=tmp_path / "pools.json")
    assert len(load_market(history).history) == 3

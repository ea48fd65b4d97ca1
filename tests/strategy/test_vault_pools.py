"""One rule for the pools a stablecoin vault can supply to (`strategy.data.universe`), used by `vaultbot data
download` by default, by the synthetic market of a backtest or `vaultbot model` and by the synthetic backtest's
universe: `--synthetic-pools N` lists N such pools, never a WETH, stETH, WBTC or DEX LP pool."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from backtest.market import investable_pools, synthetic_market
from sources.recorder import PoolSelection
from strategy.data.defillama import parse_pools
from strategy.data.universe import is_stablecoin_lending
from strategy.synthetic import STABLE_TOKENS, generate_market
from tests.cli import vaultbot

START, END = pd.Timestamp("2024-01-01", tz="UTC"), pd.Timestamp("2024-02-15", tz="UTC")


def listed(*pools: tuple[str, str, bool, float]) -> pd.DataFrame:
    """A parsed DeFiLlama /pools answer of (pool, symbol, stablecoin flag, TVL) entries."""
    return parse_pools({"status": "success", "data": [
        {"pool": pool, "chain": "Ethereum", "project": "some-protocol", "symbol": symbol, "tvlUsd": tvl,
         "apy": 4.0, "stablecoin": stable} for pool, symbol, stable, tvl in pools]})


POOLS = listed(("lp", "USDC-USDT", True, 9e9), ("weth", "WETH", False, 8e9), ("pair", "USDC-WETH", False, 7e9),
               ("usdc", "USDC", True, 2e9), ("dai", "DAI", True, 1e9))


def test_the_rule_is_a_stablecoin_pool_of_one_token() -> None:
    assert set(POOLS.loc[is_stablecoin_lending(POOLS), "pool"]) == {"usdc", "dai"}


def test_data_download_records_stablecoin_lending_pools_unless_any_asset() -> None:
    assert PoolSelection(top=3).choose(POOLS) == ["usdc", "dai"]  # the biggest, the LP of two stablecoins, is not
    assert PoolSelection(top=3, stablecoin_only=False).choose(POOLS) == ["lp", "weth", "pair"]


def test_the_synthetic_market_of_a_vault_is_stablecoin_lending_pools_only() -> None:
    market = synthetic_market(12, START, END, warmup_days=90, seed=7)
    assert len(market.pools) == 12 and is_stablecoin_lending(market.pools).all()
    tokens = {token for symbol in market.pools["symbol"] for token in symbol.split("-")}
    assert tokens <= set(STABLE_TOKENS)
    assert investable_pools(market, "USDC").pools == set(market.pools["pool"])
    # the whole mix (volatile tokens, DEX pairs, staking) is still there for the models' tests and benchmarks
    mixed = generate_market(n_pools=30, days=60, seed=7, stablecoin_lending=False).pools
    assert not is_stablecoin_lending(mixed).all() and is_stablecoin_lending(mixed).any()


@pytest.mark.parametrize("pools", [4, 12])
def test_synthetic_pools_n_lists_n_pools(pools: int, tmp_path: Path) -> None:
    result = vaultbot("backtest", "run", "--synthetic", "--synthetic-pools", str(pools), "--warmup-days", "30",
                      "--start", str(START.date()), "--end", str(END.date()), "--strategy", "hold",
                      "--rebalance-every", "7", "--report", str(tmp_path))
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert len(report["universe"]) == pools and report["pools"]["model_only"] == []
    assert "WETH" not in result.output and "STETH" not in result.output and "WBTC" not in result.output


def test_more_synthetic_pools_than_a_vault_lists_is_a_clear_error(tmp_path: Path) -> None:
    result = vaultbot("backtest", "run", "--synthetic", "--synthetic-pools", "17", "--start", str(START.date()),
                      "--end", str(END.date()), "--report", str(tmp_path))
    assert result.exit_code == 2
    assert "--synthetic-pools 17: a vault lists at most 16 markets ([backtest] max_markets)" in result.output
    assert "Traceback" not in result.output

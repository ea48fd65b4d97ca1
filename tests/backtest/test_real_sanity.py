"""Sanity on the team's real history (../shared/data): holding one real USDC market through a quiet quarter earns
that market's realised APY, with no phantom losses from liquidity swings or the vault asset's own price.
Skipped, saying why, without real data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backtest.baselines import HoldForecaster
from backtest.engine import replay
from backtest.market import load_market
from backtest.run import RunConfig, build_setup
from config import BacktestSettings
from strategy.costs import ExecutionCosts
from tests.shared_data import real_dataset

START, END = pd.Timestamp("2024-04-01", tz="UTC"), pd.Timestamp("2024-06-30", tz="UTC")
AAVE_V3_USDC = "aa70268e-4b52-42bf-a116-608b370f9501"


def test_holding_one_real_market_earns_its_realised_apy() -> None:
    dataset = real_dataset()
    if dataset is None or dataset.pools is None:
        pytest.skip("no real market history with pool metadata in ../shared/data (tests/shared_data.py)")
    market = load_market(dataset.history, pools=dataset.pools)
    if AAVE_V3_USDC not in set(market.history["pool"]):
        pytest.skip(f"the real dataset has no Aave v3 USDC market ({AAVE_V3_USDC})")
    # One market, all of the vault in it, no costs and the market taken as deep: what the vault earns is what the
    # market paid.
    rails = {"min_idle_bps": 0, "max_turnover_bps": 10_000, "markets": {AAVE_V3_USDC: {"cap_bps": 10_000}}}
    settings = BacktestSettings(gas_price_gwei=0.0, guardrails=rails, supply_dilution=False)
    defaults = RunConfig.load(None)
    strategy = defaults.strategy.model_copy(update={"costs": ExecutionCosts(slippage_bps=0.0)})
    setup = build_setup(market, START, END, RunConfig(strategy, settings, "test"), 1_000_000.0, 1)
    run = replay(setup, HoldForecaster())

    held = run.positions[AAVE_V3_USDC]
    assert held.iloc[1:].min() > 0.999 * run.values["total"].iloc[1:].min()  # fully invested from day one
    rows = market.history.set_index(["pool", "timestamp"]).loc[AAVE_V3_USDC]["apy"]
    days = setup.days[1:]  # held over (d-1, d] at the APY of the day arriving (backtest.realised)
    assert rows.reindex(days).notna().all()
    growth = np.prod((1 + rows.reindex(days).to_numpy() / 100) ** (1 / 365))
    market_apy = growth ** (365 / len(days)) - 1
    vault_apy = (run.values["total"].iloc[-1] / run.values["total"].iloc[0]) ** (365 / len(days)) - 1
    assert 0.02 < market_apy < 0.2  # a real lending yield, not a degenerate series
    assert vault_apy == pytest.approx(market_apy, abs=2e-4)  # within 0.02 APY points
    assert run.pnl["incident"] == 0 and run.pnl["peg"] == 0  # a USDC vault is not marked to USDC's price

    # Its own 1,000,000 beside a supply of hundreds of millions: the dilution, its rate curve's answer with it,
    # costs it less than 0.1 APY points, and nothing else changes.
    diluted = replay(build_setup(market, START, END, RunConfig(strategy, BacktestSettings(
        gas_price_gwei=0.0, guardrails=rails), "test"), 1_000_000.0, 1), HoldForecaster())
    diluted_apy = (diluted.values["total"].iloc[-1] / diluted.values["total"].iloc[0]) ** (365 / len(days)) - 1
    assert market_apy - 1e-3 < diluted_apy < market_apy and diluted.pnl["dilution"] < 0
    assert diluted.pnl["incident"] == 0 and diluted.pnl["peg"] == 0

"""`vaultbot demo`, the README's main job: devnet up, deposits, keeper cycles that rebalance on chain."""

import itertools
import re
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from web3 import Web3

from chain.deployment import Deployment
from chain.vault_reader import VaultReader
from depositor.dashboard import rate_to_apy
from journal.db import Cycle, CycleStatus, Decision, KeeperDB, sqlite_url
from tests.cli import vaultbot

pytestmark = [pytest.mark.anvil, pytest.mark.slow]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("VAULTBOT_HOME", str(tmp_path))
    yield tmp_path
    assert vaultbot("devnet", "down").exit_code == 0  # never leave anvil behind


def test_demo_deploys_deposits_and_rebalances_verifiably(home: Path) -> None:
    result = vaultbot("demo", "--cycles", "2", "--chain-hours", "2")
    assert result.exit_code == 0, result.output
    assert len(re.findall(r"deposited 25,000.00 USDC", result.output)) == 3
    assert "cycle 1: rebalanced" in result.output

    deployment = Deployment.load(home / "devnet.json")
    reader = VaultReader(Web3(Web3.HTTPProvider(deployment.rpc_url)), deployment.vault, deployment)
    events = reader.rebalance_events()
    assert events, "the demo's keeper put no Rebalanced event on chain"
    state = reader.state()
    assert state.idle < state.total  # money went into the markets
    for event in events:
        verified = vaultbot("keeper", "verify", event.tx_hash)
        assert verified.exit_code == 0, verified.output

    again = vaultbot("demo", "--cycles", "1")
    assert again.exit_code == 0, again.output
    assert "using the devnet already running" in again.output
    assert "deposited" not in again.output  # the depositors already hold shares


def test_demo_rejects_a_bad_deposit_amount(home: Path) -> None:
    result = vaultbot("demo", "--cycles", "1", "--deposit", "lots")
    assert result.exit_code == 1
    assert "--deposit" in result.output


def test_the_demos_forecasts_follow_each_markets_rate_on_chain_as_the_market_moves(home: Path) -> None:
    cycles = 6
    result = vaultbot("demo", "--cycles", str(cycles), "--chain-hours", str(7 * 24))
    assert result.exit_code == 0, result.output

    deployment = Deployment.load(home / "devnet.json")
    w3 = Web3(Web3.HTTPProvider(deployment.rpc_url))
    markets = [deployment.contract(w3, "MockMarket", m.address) for m in deployment.markets]
    db = KeeperDB(sqlite_url(home / "keeper.sqlite"))
    with db.session() as session:
        rows = session.execute(select(Cycle.status, Cycle.block_number, Decision.predictions)
                               .join(Decision).order_by(Cycle.id)).all()
    db.close()
    assert len(rows) == cycles, rows
    # each cycle: every market's APY on chain at the block the keeper decided on, and the model's forecast for it
    on_chain, forecast = [], []
    for _, block, predictions in rows:
        by_market = {Web3.to_checksum_address(p["market"]): p["apy_pct"] for p in predictions.values() if p["market"]}
        on_chain.append([rate_to_apy(m.functions.rate_per_second().call(block_identifier=block)) * 100
                         for m in markets])
        forecast.append([by_market[m.address] for m in markets])
    on_chain_rates, forecasts = np.array(on_chain), np.array(forecast)
    # the chain's rates move with the synthetic market, and the forecasts with them, market by market
    assert len({tuple(r) for r in on_chain_rates.round(6)}) == cycles, on_chain_rates
    assert len({tuple(f) for f in forecasts.round(6)}) == cycles, forecasts
    assert np.corrcoef(on_chain_rates.ravel(), forecasts.ravel())[0, 1] > 0.9, (on_chain_rates, forecasts)
    for rates, predicted in zip(on_chain_rates, forecasts, strict=True):  # markets a point apart: in the same order
        for i, j in itertools.combinations(range(len(markets)), 2):
            if abs(rates[i] - rates[j]) >= 1:
                assert (predicted[i] > predicted[j]) == (rates[i] > rates[j]), (rates, predicted)
    # once the first two cycles have invested (each moves at most the turnover limit), the keeper moves money again
    # only when it pays: while it holds, the markets it holds are the ones paying the most at the block it decided on
    statuses = [status for status, _, _ in rows]
    assert statuses[:2] == [CycleStatus.REBALANCED] * 2, statuses
    reader = VaultReader(w3, deployment.vault, deployment)
    for (status, block, _), rates in zip(rows[2:], on_chain_rates[2:], strict=True):
        if status == CycleStatus.HELD:
            held = reader.state(block).positions
            invested = {m.address for m in deployment.markets if held[Web3.to_checksum_address(m.address)] > 0}
            best = {deployment.markets[i].address for i in np.argsort(rates)[-len(invested):]}
            assert invested == best, (block, held, rates)
    for market, rates in zip(deployment.markets, on_chain_rates.T, strict=True):  # the demo prints the chain's rates
        assert f"{market.name}" in result.output and f"{rates[-1]:.2f} %" in result.output

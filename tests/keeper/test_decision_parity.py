"""The keeper's cycle and the backtester's replay decide the same targets on the same day: same inputs, same
model (the promotion policy's state), same vault state and guardrails, same costs.

The keeper runs a dry-run cycle on the devnet; the backtester's decision step (`backtest.engine.decide_day`,
what `replay` calls each decision day) then runs on the inputs that cycle saw, with the vault as the chain
holds it (positions keyed by pool id, the vault's clock at the next block) and `build_setup`'s allocator at
the chain's gas price, and must name the targets the keeper journaled. The keeper maps only the served pools of
the vault's asset (USDC) to markets, as the backtester's universe allows; the vault's other markets have no
forecast on either side and are held. Both tell the allocator the same supply of each market, which its own
money dilutes.
"""

import pandas as pd
import pytest
import requests
from web3 import Web3

from backtest.engine import Executed, decide_day
from backtest.market import MarketData
from backtest.model import ModelForecaster
from backtest.run import RunConfig, build_setup
from chain.deployment import Deployment
from config import BacktestSettings
from keeper.cycle import Keeper
from keeper.startup import open_keeper
from sources.inputs import ModelInputs
from strategy.guardrails import Guardrails, VaultState
from tests.keeper.keeper_world import (
    artifact_dir,
    as_a,
    config_of,
    funded,
    keeper_table,
    llama,
)

pytestmark = pytest.mark.anvil


class RecordingKeeper(Keeper):
    """The keeper, remembering the inputs of its last cycle."""

    seen: ModelInputs | None = None

    def _inputs(self, now):
        self.seen = super()._inputs(now)
        return self.seen


class ChainAsItIs:
    """A `BacktestVault` standing for the devnet vault at one moment: its state by pool id and its next block's
    time; a rebalance is only recorded (the keeper's cycle was a dry run too)."""

    def __init__(self, state: VaultState, now: int) -> None:
        self._state, self.now, self.sent = state, now, None

    def state(self) -> VaultState:
        return self._state

    def clock(self, day: pd.Timestamp) -> int:
        return self.now

    def rebalance(self, trades, day):
        self.sent = dict(trades)
        return Executed([], 0, 0, 0)

    def advance(self, day, pnl) -> None:
        raise AssertionError("one decision day only")


def by_pool(guardrails: Guardrails, state: VaultState, pool_of: dict[str, str]) -> tuple[dict, VaultState]:
    """The chain's guardrails as a `[backtest.guardrails]` table and its state, both keyed by pool id."""
    table = {"min_rebalance_interval": guardrails.min_rebalance_interval,
             "max_turnover_bps": guardrails.max_turnover_bps, "max_loss_bps": guardrails.max_loss_bps,
             "min_idle_bps": guardrails.min_idle_bps,
             "markets": {pool_of[market]: {"cap_bps": limits.cap_bps, "cap_abs": limits.cap_abs}
                         for market, limits in guardrails.markets.items() if market in pool_of}}
    positions = {pool_of[market]: amount for market, amount in state.positions.items() if market in pool_of}
    return table, VaultState(idle=state.idle, positions=positions, last_rebalance=state.last_rebalance,
                             paused=state.paused)


def usdc_markets(keeper_table: dict, httpserver_url: str) -> dict[str, str]:
    """The config's markets whose pools /pools names as USDC pools."""
    pools = requests.get(f"{httpserver_url}/pools", timeout=5).json()["data"]
    usdc = {pool["pool"] for pool in pools if pool["symbol"].upper() == "USDC"}
    return {pool: market for pool, market in keeper_table["markets"].items() if pool in usdc}


def test_the_keeper_and_the_backtest_decide_the_same_targets_on_the_same_day(
        w3: Web3, funded: Deployment, keeper_table: dict) -> None:
    markets = usdc_markets(keeper_table, keeper_table["sources"]["yields_base_url"])
    assert markets, "the served /pools has no USDC pool among the devnet's markets"
    # No risk penalty nor slippage: the keeper moves money whatever the model makes of the data served (the
    # synthetic answers without the team's data give forecasts that pay neither); both sides read this config.
    table = keeper_table | {"markets": markets, "strategy": {"allocator": {"risk_aversion": 0.0},
                                                             "costs": {"slippage_bps": 0.0}}}
    with open_keeper(config_of(table)) as opened:
        recording = as_a(RecordingKeeper, opened)
        policy_before = recording.models.state
        outcome = recording.run_cycle(dry_run=True)
        check_the_replay_agrees(w3, recording, policy_before, outcome)


def check_the_replay_agrees(w3: Web3, recording: RecordingKeeper, policy_before, outcome) -> None:
    assert outcome.status.value == "dry_run", outcome.reason  # the keeper decided to move money
    decision = recording.db.last_decision()
    inputs = recording.seen
    reader = recording.chain.reader
    pool_of = {market: pool for pool, market in recording.markets.items()}
    rails, state = by_pool(reader.guardrails(), reader.state(), pool_of)
    now = w3.eth.get_block("latest")["timestamp"] + 1

    # The backtester on the same day: the cycle's inputs as its market, the keeper's config and policy state.
    market = MarketData(inputs.history, inputs.news, inputs.pools_meta, "the keeper's inputs")
    settings = BacktestSettings(asset_decimals=reader.snapshot().asset_decimals,
                                gas_price_gwei=w3.eth.gas_price / 1e9, guardrails=rails)
    config = RunConfig(recording.config.strategy, settings, "the keeper's config")
    day = inputs.at.floor("D")
    setup = build_setup(market, day - pd.Timedelta(days=1), day, config, capital=1.0, rebalance_every=1)
    forecaster = ModelForecaster(recording.config.strategy.model)
    forecaster.state = policy_before  # the model the keeper held when the cycle began
    vault = ChainAsItIs(state, now)
    forecasts, replayed = decide_day(setup, forecaster, vault, day)

    market_of = recording.markets
    assert {pool: f.apy_pct for pool, f in forecasts.items()} == pytest.approx(
        {pool: p["apy_pct"] for pool, p in decision.predictions.items() if pool in market_of})
    # the same supply besides the vault, to the unit: the keeper's from its last days, the replay's from all
    told = {pool: (int(p["supply"]), p["elasticity"]) for pool, p in decision.predictions.items()
            if pool in market_of and "supply" in p}
    assert told and {pool: (f.supply, f.elasticity) for pool, f in forecasts.items() if f.supply is not None} == told
    mapped = {market_of[pool]: amount for pool, amount in replayed.targets.items()}
    assert mapped == {market: amount for market, amount in decision.targets.items() if market in mapped}
    held = {market: amount for market, amount in decision.targets.items() if market not in mapped}
    assert all(amount == reader.state().position(market) for market, amount in held.items())
    assert replayed.traded and vault.sent is not None  # a `send` verdict on both sides

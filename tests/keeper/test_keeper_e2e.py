"""End to end on a real anvil: the devnet vault, DeFiLlama answers on a local server, a trained model.

`keeper once` decides, journals, simulates and sends `rebalance`; the `Rebalanced` event carries the hash of
the record stored in the journal, and `keeper verify TX` confirms it.
"""

import json
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from web3 import Web3

from chain.deployment import Deployment
from config import Config
from journal.audit import verify_transaction
from journal.db import CycleStatus, TxStatus
from keeper.cycle import Keeper
from keeper.metrics import KeeperMetrics
from keeper.startup import StartupError, open_keeper
from sources.inputs import ModelInputs
from strategy.decision_record import decision_hash_of
from strategy.guardrails import BreachKind, breaches
from strategy.models import ModelArtifact
from tests.cli import vaultbot
from tests.keeper.keeper_world import (
    artifact_dir,
    as_a,
    config_file,
    config_of,
    funded,
    journal,
    keeper,
    keeper_config,
    keeper_table,
    llama,
    rebalanced_hashes,
    transact,
)
from tests.keeper.llama_payloads import chart_payload, serve_llama

pytestmark = pytest.mark.anvil


def test_once_rebalances_and_the_chain_carries_the_stored_decision_hash(
        w3: Web3, funded: Deployment, keeper: Keeper, keeper_config: Config) -> None:
    nonce_before = w3.eth.get_transaction_count(funded.keeper)
    outcome = keeper.run_cycle()
    assert outcome.status == CycleStatus.REBALANCED, outcome.reason
    assert w3.eth.get_transaction_count(funded.keeper) == nonce_before + 1

    db = journal(keeper_config)
    [decision] = db.decisions_with_hash(outcome.decision_hash)
    record = json.loads(decision.record)
    assert decision_hash_of(record) == outcome.decision_hash == decision.decision_hash
    assert rebalanced_hashes(w3, funded) == [outcome.decision_hash]
    assert record["vault"] == funded.vault.lower() and record["chain_id"] == funded.chain_id
    assert record["model_hash"] == keeper.models.state.champion.content_hash
    assert set(record["targets"]) <= {m.address.lower() for m in funded.markets}

    tx = db.transaction(outcome.tx_hash)
    assert tx.status == TxStatus.MINED and tx.nonce == nonce_before and tx.fee_paid > 0
    cycle = db.recent_cycles(1)[0]
    assert (cycle.status, cycle.id) == (CycleStatus.REBALANCED, outcome.cycle_id)
    assert int(cycle.total_assets) == 3 * 100_000 * 10**6

    report = verify_transaction(db, keeper.chain.reader, outcome.tx_hash)
    assert report.ok, report.lines()
    db.close()


def test_targets_reach_the_vault_positions(w3: Web3, funded: Deployment, keeper: Keeper,
                                           keeper_config: Config) -> None:
    outcome = keeper.run_cycle()
    db = journal(keeper_config)
    targets = json.loads(db.decisions_with_hash(outcome.decision_hash)[0].record)["targets"]
    positions = keeper.chain.reader.state().positions
    for market, target in targets.items():
        assert abs(positions[Web3.to_checksum_address(market)] - int(target)) <= 2
    db.close()


def test_second_cycle_inside_the_cooldown_is_skipped_without_a_transaction(
        w3: Web3, funded: Deployment, keeper: Keeper) -> None:
    assert keeper.run_cycle().status == CycleStatus.REBALANCED
    nonce = w3.eth.get_transaction_count(funded.keeper)
    second = keeper.run_cycle()
    assert second.status == CycleStatus.SKIPPED and "vault: cooldown" in second.reason
    assert w3.eth.get_transaction_count(funded.keeper) == nonce
    assert len(rebalanced_hashes(w3, funded)) == 1


def test_dry_run_decides_and_simulates_but_sends_nothing(w3: Web3, funded: Deployment, keeper: Keeper,
                                                         keeper_config: Config) -> None:
    nonce = w3.eth.get_transaction_count(funded.keeper)
    outcome = keeper.run_cycle(dry_run=True)
    assert outcome.status == CycleStatus.DRY_RUN and outcome.decision_hash and outcome.tx_hash is None
    assert w3.eth.get_transaction_count(funded.keeper) == nonce and rebalanced_hashes(w3, funded) == []
    db = journal(keeper_config)
    assert db.recent_cycles(1)[0].dry_run and db.decisions_with_hash(outcome.decision_hash)
    db.close()


def test_an_empty_vault_is_held(w3: Web3, devnet: Deployment, chain_snapshot: None, keeper_table: dict) -> None:
    # keeper_table funds the vault; withdraw everything again to get an empty one
    vault = devnet.contract(w3, "Vault", devnet.vault)
    for depositor in devnet.depositors:
        shares = vault.functions.balanceOf(depositor).call()
        transact(w3, vault.functions.redeem(shares, depositor, depositor), depositor)
    with open_keeper(config_of(keeper_table)) as keeper:
        outcome = keeper.run_cycle()
    assert outcome.status == CycleStatus.HELD and "empty" in outcome.reason


def test_metrics_follow_the_cycles(w3: Web3, funded: Deployment, keeper_config: Config) -> None:
    metrics = KeeperMetrics(max_age_s=60)
    with open_keeper(keeper_config, metrics=metrics) as keeper:
        keeper.run_cycle()
        w3.provider.make_request("evm_increaseTime", [24 * 3600])
        w3.provider.make_request("evm_mine", [])
        keeper.run_cycle()
    value = metrics.registry.get_sample_value
    assert value("vaultbot_keeper_cycles_total", {"status": "rebalanced"}) >= 1
    assert value("vaultbot_keeper_gas_spent_wei_total") > 0
    assert 0 < value("vaultbot_keeper_predicted_apy_percent") < 100
    # a day of interest at the mock markets' 3.5-6.7 % on part of the assets
    assert 0 < value("vaultbot_keeper_realised_apy_percent") < 10
    assert value("vaultbot_keeper_pending_transactions") == 0
    assert metrics.health()[0]


class SeesItsInputs(Keeper):
    """Keeps the inputs of its last cycle."""

    def _inputs(self, now: datetime) -> ModelInputs:
        self.seen = super()._inputs(now)
        return self.seen


def trained_ranges(artifact: ModelArtifact) -> dict[str, str]:
    """Feature -> the value range LightGBM saw in training ("none": no value at all) of the yield booster."""
    line = next(line for line in artifact.model_texts["yield"].splitlines() if line.startswith("feature_infos="))
    return dict(zip(artifact.features, line.removeprefix("feature_infos=").split(" "), strict=True))


def test_the_model_trained_at_start_and_each_cycle_see_the_token_prices(
        w3: Web3, funded: Deployment, keeper_table: dict, tmp_path: Path) -> None:
    keeper_table["model"] = {"artifact_dir": str(tmp_path / "model"), "train_if_missing": True}
    with open_keeper(config_of(keeper_table)) as opened:
        keeper = as_a(SeesItsInputs, opened)
        outcome = keeper.run_cycle()
    assert outcome.status == CycleStatus.REBALANCED, outcome.reason
    assert keeper.models.state.champion.settings.asset_symbol == "USDC"  # losses count in the vault's asset
    ranges = trained_ranges(keeper.models.state.champion)
    for feature in ("peg_dev", "peg_dev_max_30d", "price_vol_30d"):
        assert ranges[feature] != "none", f"{feature} had no value in training"
    history = keeper.seen.history
    recent = history[history["timestamp"] >= keeper.seen.at - pd.Timedelta(days=59)]
    assert set(recent["pool"]) == set(keeper.markets) and recent["price"].notna().all()


def test_a_model_counting_losses_in_another_asset_than_the_vaults_stops_the_start(
        w3: Web3, funded: Deployment, keeper_table: dict) -> None:
    keeper_table["strategy"] = {"model": {"asset_symbol": "DAI"}}
    with pytest.raises(StartupError, match="strategy.model.asset_symbol is DAI, but the vault's asset is USDC"):
        with open_keeper(config_of(keeper_table)):
            pass


def test_a_market_whose_feed_stopped_is_left(w3: Web3, funded: Deployment, keeper: Keeper, httpserver, llama) -> None:
    """The backtest's rule live: a market's pool without fresh data is unknown and the vault moves out of it,
    while the other markets' fresh data still drives the cycle (only all-stale data is refused)."""
    assert keeper.run_cycle().status == CycleStatus.REBALANCED
    state = keeper.chain.reader.state()
    stopped, market = max(keeper.markets.items(), key=lambda item: state.position(item[1]))
    invested = state.position(market)
    assert invested > 0
    httpserver.clear_all_handlers()
    serve_llama(httpserver, llama, chart=lambda pool, now: chart_payload(
        llama, pool, now - timedelta(hours=72) if pool == stopped else now))
    keeper.sources.session.cache.clear()  # the next cycle must fetch the new answers, not the cached ones
    w3.provider.make_request("evm_increaseTime", [2 * 3600])  # past the vault's one-hour cooldown
    w3.provider.make_request("evm_mine", [])
    outcome = keeper.run_cycle()
    assert outcome.status == CycleStatus.REBALANCED, outcome.reason
    assert keeper.chain.reader.state().position(market) < invested


def test_a_market_whose_feed_stopped_and_whose_cash_is_lent_out_is_left_as_far_as_it_pays(
        w3: Web3, funded: Deployment, keeper: Keeper, keeper_table: dict, httpserver, llama) -> None:
    """Near 100 % utilization a market pays back only its cash: the keeper takes that much out of a market it
    leaves, and the rebalance goes through, instead of asking for all of it and reverting in the market; its
    bundle carries the bound, so anyone re-executes the same targets."""
    assert keeper.run_cycle().status == CycleStatus.REBALANCED
    state = keeper.chain.reader.state()
    stopped, market = max(keeper.markets.items(), key=lambda item: state.position(item[1]))
    invested, cash = state.position(market), state.position(market) // 10
    transact(w3, funded.contract(w3, "MockMarket", market).functions.set_liquidity(cash), funded.admin)
    httpserver.clear_all_handlers()
    serve_llama(httpserver, llama, chart=lambda pool, now: chart_payload(
        llama, pool, now - timedelta(hours=72) if pool == stopped else now))
    keeper.sources.session.cache.clear()
    w3.provider.make_request("evm_increaseTime", [2 * 3600])
    w3.provider.make_request("evm_mine", [])
    outcome = keeper.run_cycle()
    assert outcome.status == CycleStatus.REBALANCED, outcome.reason
    left = keeper.chain.reader.state().position(market)
    assert left > 0 and abs(invested - left - cash) <= invested * 1e-3  # its cash, less a day's interest at most
    bundles = [json.loads(path.read_text()) for path in keeper.config.service.decisions_dir.glob("0x*.json")]
    assert [[market, str(cash)]] in [bundle["state"]["vault"]["withdrawable"] for bundle in bundles]
    verified = vaultbot("verify", outcome.tx_hash, "--bundle", str(keeper.config.service.decisions_dir),
                        "--json", keeper_table["chain"]["deployment"])
    assert verified.output.strip().splitlines()[-1].startswith("REPRODUCED:"), verified.output


def test_after_a_large_withdrawal_the_keeper_moves_back_inside_the_limits_and_says_so(
        w3: Web3, funded: Deployment, keeper: Keeper, keeper_config: Config, keeper_table: dict,
        tmp_path: Path) -> None:
    """Idle at 0 against its floor and a market over its cap (a depositor left through the markets): the next
    cycle withdraws, whatever the model prefers, and its reason names the breaches it repairs."""
    for _ in range(3):  # invest as far as the turnover and the caps allow
        keeper.run_cycle()
        w3.provider.make_request("evm_increaseTime", [2 * 3600])
        w3.provider.make_request("evm_mine", [])
    vault = funded.contract(w3, "Vault", funded.vault)
    leaving = funded.depositors[0]
    transact(w3, vault.functions.withdraw(vault.functions.maxWithdraw(leaving).call(), leaving, leaving), leaving)
    rails, state = keeper.chain.reader.guardrails(), keeper.chain.reader.state()
    before = breaches(state, rails)
    assert {b.kind for b in before} == {BreachKind.IDLE_FLOOR, BreachKind.CAP}, before
    status = vaultbot("keeper", "status", "--config", str(config_file(keeper_table, tmp_path)))
    assert status.exit_code == 0, status.output
    assert " ".join(status.output.split()).count("OUTSIDE THE VAULT'S LIMITS: ") == len(before), status.output

    outcome = keeper.run_cycle()
    assert outcome.status == CycleStatus.REBALANCED, outcome.reason
    assert outcome.reason.startswith("moving back inside the vault's limits (idle is ")
    after = breaches(keeper.chain.reader.state(), rails)
    assert after == [] or sum(b.amount for b in after) < sum(b.amount for b in before)

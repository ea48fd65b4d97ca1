"""Fork mode, tested by forking a local anvil that plays the upstream: a devnet with MockMarkets holding other
depositors' money, forked at a past block; the backtest runs its vault over those markets as they were then
(`ChainOptions.markets`, `--fork-market POOL=0xADDRESS`), or over new markets it deploys on the fork."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import pytest
from web3 import Web3

from backtest.chainmode import ChainOptions, ChainWorld
from backtest.chainmode.chain_vault import Call
from backtest.engine import StrategyRun, replay
from backtest.market import synthetic_market
from chain.artifacts import CompiledContracts
from chain.deployment import Deployment
from config import BacktestSettings
from devnet.anvil import AnvilProcess
from devnet.deploy import USDC, _Deployer, deploy_devnet
from tests.backtest.conftest import default_pools, every_pool, make_setup
from tests.backtest.test_chain_mode import NO_SLIPPAGE, ONE_BP, Rotating, mined_in_order, relative
from tests.cli import vaultbot

pytestmark = pytest.mark.anvil

START = pd.Timestamp("2024-03-01", tz="UTC")
END = START + pd.Timedelta(days=19)
SUPPLIED = 50_000 * USDC  # the upstream depositor's money in the first market before the fork block
LATER = 7_000 * USDC  # supplied after the fork block: the fork must not see it
UPSTREAM_FEE = 5 * 10**14  # 5 bps: the deposit fee the upstream markets charge from `fee_block` on


class Upstream(NamedTuple):
    rpc_url: str
    deployment: Deployment
    fork_block: int
    fee_block: int  # a later block, from which every upstream market charges UPSTREAM_FEE
    depositor: str


@pytest.fixture(scope="module")
def upstream(compiled_contracts: CompiledContracts, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    """A devnet anvil whose first market holds SUPPLIED at the fork block and SUPPLIED + LATER after it, and
    whose markets charge a deposit fee from a later block on."""
    with AnvilProcess() as node:
        w3 = Web3(Web3.HTTPProvider(node.rpc_url))
        deployment = deploy_devnet(w3, compiled_contracts, tmp_path_factory.mktemp("upstream") / "abi")
        token = deployment.contract(w3, "MockToken", deployment.asset)
        market = deployment.contract(w3, "MockMarket", deployment.markets[0].address)
        depositor = deployment.depositors[0]

        def supply(amount: int) -> None:
            for call in (token.functions.approve(market.address, amount), market.functions.deposit(amount, depositor)):
                assert w3.eth.wait_for_transaction_receipt(call.transact({"from": depositor}))["status"] == 1

        supply(SUPPLIED)
        w3.provider.make_request("anvil_mine", [5])
        fork_block = w3.eth.block_number
        supply(LATER)
        for listed in deployment.markets:
            fee = deployment.contract(w3, "MockMarket", listed.address).functions.set_deposit_fee(UPSTREAM_FEE)
            assert w3.eth.wait_for_transaction_receipt(fee.transact({"from": deployment.admin}))["status"] == 1
        yield Upstream(node.rpc_url, deployment, fork_block, w3.eth.block_number, depositor)


def test_fork_runs_the_vault_over_the_upstream_markets_as_of_the_fork_block(upstream: Upstream) -> None:
    market_data = synthetic_market(4, START, END, warmup_days=30, seed=3)
    deployed = make_setup(market_data, START, END, costs=NO_SLIPPAGE,  # caps of 4000 bps on chain
                          universe=every_pool(market_data, START))  # as many pools as the devnet has markets
    # The allocator plans 10 bps under the caps: depositing into a market whose shares are worth more than 1
    # rounds the vault's position down a unit, which lowers total assets and would push a market planned at
    # exactly its cap over it (the contract rejects that plan; the lossless Python mirror does not see it).
    caps = {pool: {"cap_bps": 3990} for pool in deployed.pools}
    margin = BacktestSettings(guardrails={"markets": caps})
    setup = make_setup(market_data, START, END, settings=margin, universe=deployed.pools, costs=NO_SLIPPAGE)
    fast = replay(setup, Rotating(setup.pools))
    markets = {pool: m.address for pool, m in zip(deployed.pools, upstream.deployment.markets, strict=True)}
    with ChainWorld(deployed, ChainOptions(upstream.rpc_url, upstream.fork_block, markets)) as world:
        first = world.contracts.markets[0]
        # the upstream depositor's position as of the fork block: the later deposit is not on the fork
        # (plus a few seconds of interest: the fork's clock starts at the wall clock, after the fork block)
        assert SUPPLIED <= first.functions.maxWithdraw(upstream.depositor).call() < SUPPLIED * 1.0001 < SUPPLIED + LATER
        chain = replay(setup, Rotating(setup.pools), vault=world.vault("rotating"))
        assert first.functions.maxWithdraw(upstream.depositor).call() > SUPPLIED  # it earned alongside the vault
        assert world.contracts.w3.eth.chain_id == 31337
    assert sum(d.accepted for d in chain.decisions) >= 2
    assert relative(chain.values["total"].iloc[-1], fast.values["total"].iloc[-1]) < ONE_BP
    assert chain.pnl["slippage"] == 0  # the upstream markets charged no fee yet at the fork block


def test_a_block_of_several_senders_is_mined_in_the_calls_order(upstream: Upstream,
                                                                compiled_contracts: CompiledContracts) -> None:
    """Markets on the fork run by their own operator: its calls and the admin's alternate in one block, sent one
    at a time (anvil may take a batch's calls in any order, and the order across senders is the order sent)."""
    w3 = Web3(Web3.HTTPProvider(upstream.rpc_url))
    d = _Deployer(w3, compiled_contracts)
    operator = d.accounts[7]
    markets = [d.deploy("MockMarket", upstream.deployment.asset, f"operated {i}", f"OP{i}", operator) for i in range(2)]
    market_data = synthetic_market(2, START, END, warmup_days=30, seed=3)
    setup = make_setup(market_data, START, END, costs=NO_SLIPPAGE, universe=every_pool(market_data, START))
    on_fork = {pool: market.address for pool, market in zip(setup.pools, markets, strict=True)}
    with ChainWorld(setup, ChainOptions(upstream.rpc_url, w3.eth.block_number, on_fork)) as world:
        world.vault("any")
        c = world.contracts
        assert set(c.operators) == {operator} != {c.admin}
        calls = [Call(sender, *pair) for _ in range(3) for market in c.markets for sender, pair in (
            (c.admin, (c.token.address, c.token_codec.encode("mint", market.address, 7))),
            (operator, (market.address, c.market_codec.encode("set_rate", 12_345))))]
        block = c.mine(c.w3.eth.get_block("latest")["timestamp"] + 60, "test", lambda _: calls).block
        assert mined_in_order(world, calls, block)


def test_markets_on_the_fork_with_a_liquidity_cap_set_already_are_run_as_fast_mode_runs_them(
        upstream: Upstream, compiled_contracts: CompiledContracts) -> None:
    """A MockMarket on the forked chain may pay back less than it holds (its operator set a liquidity cap):
    the backtest reads each market's cap when it starts, so it sets fast mode's bound on the first day instead
    of assuming none, and every withdrawal the replay plans is paid as fast mode pays it. (Caps 10 bps under the
    chain's, as in the test above.)"""
    w3 = Web3(Web3.HTTPProvider(upstream.rpc_url))
    d = _Deployer(w3, compiled_contracts)
    operator = d.accounts[7]
    markets = [d.deploy("MockMarket", upstream.deployment.asset, f"capped {i}", f"CP{i}", operator) for i in range(4)]
    token = upstream.deployment.contract(w3, "MockToken", upstream.deployment.asset)
    for market in markets:
        d.seed_market(token, market, USDC)  # other lenders' money, as every market on a chain has
        capped = market.functions.set_liquidity(0).transact({"from": operator})
        assert w3.eth.wait_for_transaction_receipt(capped)["status"] == 1
    market_data = synthetic_market(4, START, END, warmup_days=30, seed=3)  # rotates: withdraws on 5 days
    deployed = make_setup(market_data, START, END, costs=NO_SLIPPAGE, universe=every_pool(market_data, START))
    margin = BacktestSettings(guardrails={"markets": {pool: {"cap_bps": 3990} for pool in deployed.pools}})
    setup = make_setup(market_data, START, END, settings=margin, universe=deployed.pools, costs=NO_SLIPPAGE)
    fast = replay(setup, Rotating(setup.pools))
    on_fork = {pool: market.address for pool, market in zip(setup.pools, markets, strict=True)}
    with ChainWorld(deployed, ChainOptions(upstream.rpc_url, w3.eth.block_number, on_fork)) as world:
        chain = replay(setup, Rotating(setup.pools), vault=world.vault("rotating"))
    assert sum(d.accepted for d in chain.decisions) >= 2
    assert not [(d.day, d.rejections) for d in chain.decisions if d.rejections]

    def rebalances(run: StrategyRun) -> tuple[list[pd.Timestamp], list[int]]:
        return [d.day for d in run.decisions if d.accepted], [d.moved for d in run.decisions if d.accepted]

    (chain_days, chain_moved), (fast_days, fast_moved) = rebalances(chain), rebalances(fast)
    assert chain_days == fast_days and chain_moved == pytest.approx(fast_moved, rel=1e-6)
    assert relative(chain.values["total"].iloc[-1], fast.values["total"].iloc[-1]) < ONE_BP


CLI_WINDOW = ["--synthetic", "--synthetic-pools", "3", "--warmup-days", "30", "--start", "2024-03-01",
              "--end", "2024-03-06", "--seed", "3"]


def cli_pools() -> list[str]:
    """The pools a CLI run over CLI_WINDOW lists, in its order."""
    end = pd.Timestamp("2024-03-06", tz="UTC")
    return default_pools(synthetic_market(3, START, end, 30, 3), START, end)


def test_cli_fork_market_runs_the_vault_over_the_markets_already_on_the_fork(upstream: Upstream,
                                                                            tmp_path: Path) -> None:
    """Forked where the upstream markets charge a 5 bps deposit fee and the config says no slippage: only those
    markets can have charged the slippage the report shows."""
    config = tmp_path / "config.toml"
    config.write_text("[strategy.costs]\nslippage_bps = 0.0\n")
    # the CLI window lists fewer pools than the upstream has markets: they take the first ones
    pairs = [f"{pool}={market.address.lower()}"
             for pool, market in zip(cli_pools(), upstream.deployment.markets, strict=False)]
    result = vaultbot(
        "backtest", "run", *CLI_WINDOW, "--strategy", "equal", "--config", str(config),
        "--fork-url", upstream.rpc_url, "--fork-block", str(upstream.fee_block),
        *(arg for pair in pairs for arg in ("--fork-market", pair)), "--report", str(tmp_path / "report"),
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "report" / "report.json").read_text())
    assert summary["mode"] == "fork"
    traded = [s for s in summary["strategies"].values() if s["metrics"]["rebalances"] > 0]
    assert traded, "some strategy must supply the markets"
    for strategy in traded:
        assert strategy["pnl"]["slippage"] < 0


@pytest.mark.parametrize(("market", "message"), [
    ("0x000000000000000000000000000000000000dEaD", "no contract at that address on the fork"),
    ("asset", "not a MockMarket (it has no asset())"),
])
def test_cli_fork_market_that_is_no_market_is_one_line_exit_1(upstream: Upstream, market: str, message: str,
                                                              tmp_path: Path) -> None:
    market = upstream.deployment.asset if market == "asset" else market
    pools = cli_pools()
    pairs = [f"{pools[0]}={market}",
             *(f"{pool}={m.address}" for pool, m in zip(pools[1:], upstream.deployment.markets[1:], strict=False))]
    result = vaultbot(
        "backtest", "run", *CLI_WINDOW, "--fork-url", upstream.rpc_url, "--fork-block", str(upstream.fork_block),
        *(arg for pair in pairs for arg in ("--fork-market", pair)), "--report", str(tmp_path),
    )
    assert result.exit_code == 1, result.output
    assert f"--fork-market {pools[0]}=" in result.stderr and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_fork_mode_deploys_on_the_fork_and_says_so(upstream: Upstream, tmp_path: Path) -> None:
    result = vaultbot(
        "backtest", "run", "--synthetic", "--synthetic-pools", "3", "--warmup-days", "30", "--start", "2024-03-01",
        "--end", "2024-03-06", "--strategy", "equal", "--fork-url", upstream.rpc_url,
        "--fork-block", str(upstream.fork_block), "--report", str(tmp_path),
    )
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "report.json").read_text())["mode"] == "fork"


def test_a_fork_block_beyond_the_upstream_head_is_one_line_exit_1(upstream: Upstream, tmp_path: Path) -> None:
    result = vaultbot(
        "backtest", "run", "--synthetic", "--synthetic-pools", "3", "--start", "2024-03-01", "--end", "2024-03-06",
        "--fork-url", upstream.rpc_url, "--fork-block", "999999", "--report", str(tmp_path),
    )
    assert result.exit_code == 1
    assert "--fork-block 999999 is beyond the head of" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1

"""Chain mode: the replay on the real Vault and MockMarkets on anvil agrees with fast mode to a millionth of a
basis point, slippage included, in a few JSON-RPC batches a day; the contract's rejections are counted, and the
CLI refuses bad chain/fork flags with one line."""

from __future__ import annotations

import dataclasses
import json
import socket
from pathlib import Path

import pandas as pd
import pytest

from backtest.baselines import TrailingBestForecaster
from backtest.chainmode import ChainWorld
from backtest.chainmode.chain_vault import Call
from backtest.chainmode.world import deposit_fee_for
from backtest.engine import replay
from backtest.errors import ChainModeError
from backtest.market import MarketData, synthetic_market
from backtest.metrics import compute_metrics
from config import BacktestSettings
from strategy.allocator import MarketForecast
from strategy.costs import ExecutionCosts
from strategy.data.schema import POOL, TIMESTAMP
from tests.backtest.conftest import CAPITAL, every_pool, make_setup
from tests.cli import vaultbot
from tests.keeper.rpc_recorder import recording_proxy

pytestmark = pytest.mark.anvil

START = pd.Timestamp("2024-03-01", tz="UTC")
END = START + pd.Timedelta(days=29)  # 30 days
NO_SLIPPAGE = ExecutionCosts(slippage_bps=0.0)  # as markets already on a fork charge: no deposit fee
ONE_BP = 1e-4
MILLIONTH_BP = 1e-10


class Rotating:
    """Prefers the first half of the pools in even weeks and the second half in odd weeks: trades in and out.

    No two pools get the same forecast: with ties the solver's choice between equally good plans could flip on
    the few base units by which the chain's positions differ from fast mode's (ERC-4626 rounding)."""

    name, leaky = "rotating", False

    def __init__(self, pools: list[str]):
        self.pools = pools

    def forecast(self, view: MarketData, now: pd.Timestamp) -> dict[str, MarketForecast]:
        half = len(self.pools) // 2
        preferred = self.pools[:half] if (now - START).days // 7 % 2 == 0 else self.pools[half:]
        return {pool: MarketForecast(apy_pct=(20.0 if pool in preferred else 1.0) + index, p_event=0.0)
                for index, pool in enumerate(self.pools)}


@pytest.fixture(scope="module")
def market() -> MarketData:
    return synthetic_market(4, START, END, warmup_days=30, seed=3)


def relative(a: float, b: float) -> float:
    return abs(a / b - 1)


@pytest.mark.parametrize("slippage_bps", [0.0, 2.5])
def test_chain_mode_matches_fast_mode_within_a_millionth_of_a_basis_point(market: MarketData,
                                                                          slippage_bps: float) -> None:
    setup = make_setup(market, START, END, rebalance_every=1, costs=ExecutionCosts(slippage_bps=slippage_bps),
                       universe=every_pool(market, START))
    fast = replay(setup, Rotating(setup.pools))
    with ChainWorld(setup) as world:
        chain = replay(setup, Rotating(setup.pools), vault=world.vault("rotating"))
        snapshot = world.contracts.reader.snapshot()
    accepted = [d for d in chain.decisions if d.accepted]
    assert len(accepted) >= 4, "the window must exercise rebalances in and out of markets"
    assert [(d.traded, d.accepted) for d in chain.decisions] == [(d.traded, d.accepted) for d in fast.decisions]
    assert relative(chain.values["total"].iloc[-1], fast.values["total"].iloc[-1]) < MILLIONTH_BP
    # value per share: the vault's share price on chain (whole base units) vs the fast vault's value per unit
    fast_per_share = fast.values["total"].iloc[-1] / CAPITAL
    assert relative(snapshot.price_per_share / setup.settings.unit, fast_per_share) < ONE_BP
    assert chain.values["total"].iloc[-1] * setup.settings.unit == pytest.approx(snapshot.total_assets, abs=1)
    assert abs(chain.pnl["peg"]) > 0, "the stablecoin pools' price moves were applied on chain too"
    # the vault is a fifth of some of these markets: the dilution of their rates marked on chain too
    assert chain.pnl["dilution"] < -0.01 * chain.pnl["yield"]
    assert chain.pnl["gas"] < 0 and all(d.gas > 0 for d in accepted)  # receipts' gasUsed, priced
    # slippage: the deposit fees the markets charged, as fast mode's execution charges them
    assert (chain.pnl["slippage"] < 0) == (slippage_bps > 0)
    assert chain.pnl["slippage"] == pytest.approx(fast.pnl["slippage"], rel=1e-6, abs=1e-9)
    for on_chain, simulated in zip(chain.decisions, fast.decisions, strict=True):
        assert abs(on_chain.slippage - simulated.slippage) <= len(setup.pools)  # rounding of positions: a unit each


def test_a_market_short_of_cash_pays_back_only_its_liquidity_in_both_modes(market: MarketData) -> None:
    # The first pool lends out almost all it holds through the week the rotation leaves it: 50,000 of its
    # available liquidity a day, far below the vault's position there. Fast mode bounds the withdrawals by it
    # (the state's `withdrawable`), chain mode by the MockMarket's `maxWithdraw` set to it; both end alike.
    pools = every_pool(market, START)
    short = (market.history[POOL] == pools[0]) & market.history[TIMESTAMP].between(START + pd.Timedelta(days=6),
                                                                                   START + pd.Timedelta(days=13))
    history = market.history.assign(tvl_usd=market.history["tvl_usd"].mask(short, 50_000.0))
    dry = dataclasses.replace(market, history=history)
    setup = make_setup(dry, START, END, rebalance_every=1, universe=pools)
    fast = replay(setup, Rotating(setup.pools))
    with ChainWorld(setup) as world:
        chain = replay(setup, Rotating(setup.pools), vault=world.vault("rotating"))
    held = fast.positions[pools[0]]
    week_one = held.loc[START + pd.Timedelta(days=7):START + pd.Timedelta(days=13)]
    assert held.loc[START + pd.Timedelta(days=6)] > 200_000 and (week_one > 0).all(), "it could not leave at once"
    # no day took more than its liquidity (in the asset at the pool's price; a day's yield and price move on top)
    assert held.diff().loc[week_one.index].min() >= -50_000 * 1.01
    with_cash = replay(make_setup(market, START, END, rebalance_every=1, universe=pools), Rotating(pools))
    left = with_cash.positions[pools[0]].loc[week_one.index]
    assert (left < week_one - 100_000).all(), "with its usual cash the vault leaves it faster"
    assert [(d.traded, d.accepted) for d in chain.decisions] == [(d.traded, d.accepted) for d in fast.decisions]
    assert relative(chain.values["total"].iloc[-1], fast.values["total"].iloc[-1]) < MILLIONTH_BP
    assert (chain.positions[pools[0]] - held).abs().max() <= 1


def methods(body: dict | list) -> list[str]:
    return [call["method"] for call in (body if isinstance(body, list) else [body])]


def mined_in_order(world: ChainWorld, calls: list[Call], block: int) -> bool:
    """Whether `block` holds exactly `calls`, in their order."""
    mined = world.contracts.rpc("eth_getBlockByNumber", hex(block), True)["transactions"]
    return [(tx["from"].lower(), tx["to"].lower(), tx["input"]) for tx in mined] == [
        (call.sender.lower(), call.to.lower(), call.data) for call in calls]


def test_a_block_of_one_sender_is_one_batch_mined_in_the_calls_order(market: MarketData) -> None:
    setup = make_setup(market, START, END, universe=every_pool(market, START))
    with ChainWorld(setup) as world, recording_proxy(world.anvil.rpc_url) as proxy:
        world.vault("any")
        c = world.contracts
        c.w3.provider.endpoint_uri = proxy.url
        # mints and rates interleaved over the markets, many times: any reordering shows
        calls = [Call(c.admin, *pair) for _ in range(3) for market in c.markets for pair in (
            (c.token.address, c.token_codec.encode("mint", market.address, 7)),
            (market.address, c.market_codec.encode("set_rate", 12_345)))]
        block = c.mine(c.w3.eth.get_block("latest")["timestamp"] + 60, "test", lambda _: calls).block
        assert mined_in_order(world, calls, block)
        assert [methods(body) for body in proxy.bodies].count(["eth_sendTransaction"] * len(calls)) == 1


def test_a_chain_mode_day_is_a_few_json_rpc_batches(market: MarketData) -> None:
    """A day without a rebalance: one block of every market's rate and mark and the report, sent in one batch and
    mined at once, and the vault read there, for the next day's decision, with the block's receipts; four HTTP
    round trips in all."""
    setup = make_setup(market, START, START + pd.Timedelta(days=13), universe=every_pool(market, START))
    with ChainWorld(setup) as world, recording_proxy(world.anvil.rpc_url) as proxy:
        vault = world.vault("rotating")
        world.contracts.w3.provider.endpoint_uri = proxy.url  # every request of the replay through the proxy
        ends: list[int] = []
        run = replay(setup, Rotating(setup.pools), on_day=lambda: ends.append(len(proxy.bodies)), vault=vault)
    rebalanced = {d.day for d in run.decisions if d.accepted}
    # a day's requests: its decision and the move into the next day (the last day has none)
    days = [proxy.bodies[start:end] for start, end in zip([0, *ends[:-1]], ends, strict=True)]
    quiet = [bodies for day, bodies in zip(setup.days[:-1], days[:-1], strict=True) if day not in rebalanced]
    assert rebalanced and quiet
    for bodies in quiet:
        assert len(bodies) == 4
        first, sends, mine, last = bodies
        assert methods(first)[0] == "evm_setAutomine" and first[0]["params"] == [False]
        assert set(methods(sends)) == {"eth_sendTransaction"} and len(sends) >= len(setup.pools) + 1  # rates, report
        assert methods(mine) == ["evm_mine"] and methods(last)[:2] == ["evm_setAutomine", "eth_getBlockReceipts"]
        state_read = last[2:]  # at the block just mined, with nothing mined between
        assert set(methods(state_read)) == {"eth_call"} and {call["params"][1] for call in state_read} == {"latest"}
        assert len(state_read) > 2 * len(setup.pools)  # idle, the list, and each market's position and cash


def test_a_rebalance_the_contract_rejects_is_counted_with_its_reason(market: MarketData) -> None:
    loose = make_setup(market, START, START + pd.Timedelta(days=9), costs=NO_SLIPPAGE,
                       universe=every_pool(market, START))
    tight = make_setup(market, START, START + pd.Timedelta(days=9),
                       settings=BacktestSettings(guardrails={"max_turnover_bps": 100}), costs=NO_SLIPPAGE,
                       universe=every_pool(market, START))
    # the allocator plans under the loose guardrails; the vault on chain was deployed with the tight ones
    with ChainWorld(tight) as world:
        run = replay(loose, TrailingBestForecaster(), vault=world.vault("trailing-best"))
    rejected = [d for d in run.decisions if d.rejections]
    assert rejected and rejected[0].rejections == ["vault: turnover exceeded"]
    assert all(d.gas == 0 for d in rejected)  # the keeper simulates first: nothing is sent, no gas
    assert compute_metrics(run, CAPITAL)["rejections"] == len(rejected)
    assert run.values["total"].iloc[-1] == pytest.approx(CAPITAL, rel=1e-12)  # never invested: idle earns 0


def _backtest(*args: str):
    return vaultbot("backtest", "run", "--synthetic", "--synthetic-pools", "4", "--warmup-days", "30",
                    "--start", "2024-03-01", "--end", "2024-03-08", "--strategy", "trailing-best", *args)


def test_cli_chain_mode_reports_the_contracts_rejections(tmp_path: Path) -> None:
    result = _backtest("--chain", "--report", str(tmp_path))
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "report.json").read_text())
    assert summary["mode"] == "chain" and "Vault contract" in summary["rejections_by"]
    assert set(summary["strategies"]) == {"trailing-best", "equal", "hold", "perfect-foresight"}
    assert all("rejections" in s["metrics"] for s in summary["strategies"].values())


@pytest.mark.parametrize(("flags", "message"), [
    (["--fork-url", "http://127.0.0.1:1"], "--fork-url and --fork-block go together"),
    (["--fork-block", "5"], "--fork-url and --fork-block go together"),
    (["--fork-url", "http://127.0.0.1:1", "--fork-block", "-1"], "--fork-block must be >= 0, got -1"),
])
def test_cli_refuses_bad_fork_flags(flags: list[str], message: str, tmp_path: Path) -> None:
    result = _backtest(*flags, "--report", str(tmp_path))
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_cli_unreachable_fork_url_is_one_line_exit_1(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = _backtest("--fork-url", f"http://127.0.0.1:{port}", "--fork-block", "0", "--report", str(tmp_path))
    assert result.exit_code == 1
    assert f"--fork-url http://127.0.0.1:{port}: no JSON-RPC answers there" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_slippage_bps_becomes_an_exact_deposit_fee_or_is_refused() -> None:
    assert [deposit_fee_for(bps) for bps in (0.0, 1.0, 2.5, 0.3, 1e-5)] == [0, 10**14, 25 * 10**13, 3 * 10**13, 10**9]
    with pytest.raises(ChainModeError, match=r"slippage_bps = 0.3333333333333333: .* in steps of 1e-14 bps"):
        deposit_fee_for(1 / 3)


def test_cli_chain_mode_refuses_slippage_beyond_the_markets_fee_limit(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[strategy.costs]\nslippage_bps = 1500\n")
    result = _backtest("--chain", "--config", str(config), "--report", str(tmp_path))
    assert result.exit_code == 1
    assert "slippage_bps = 1500: chain mode charges it as a MockMarket deposit fee, which is at most 1000 bps" \
        in result.stderr and len(result.stderr.strip().splitlines()) == 1

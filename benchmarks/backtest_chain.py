"""Benchmark of chain mode: one strategy replayed on the real contracts on anvil, against the same replay in fast
mode. Prints steps (days) per second, the chain-vs-fast difference of the final value, and peak memory of this
process and of anvil.

    python -m benchmarks.backtest_chain [--pools 8] [--days 90] [--warmup-days 30]
                                        [--strategy trailing-best] [--rebalance-every 1] [--seed 7]
                                        [--slippage-bps 1.0]
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from backtest.chainmode import ChainWorld
from backtest.engine import replay
from backtest.market import synthetic_market
from backtest.run import RunConfig, build_setup, make_forecaster
from benchmarks.memory import peak_rss_mib

START = pd.Timestamp("2024-01-01", tz="UTC")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pools", type=int, default=8)
    parser.add_argument("--days", type=int, default=90, help="length of the backtest window")
    parser.add_argument("--warmup-days", type=int, default=30, help="history before the window")
    parser.add_argument("--strategy", choices=("equal", "trailing-best", "hold"), default="trailing-best")
    parser.add_argument("--rebalance-every", type=int, default=1)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--slippage-bps", type=float, default=1.0,
                        help="charged by both modes (on chain as the markets' deposit fee)")
    args = parser.parse_args()

    end = START + pd.Timedelta(days=args.days - 1)
    market = synthetic_market(args.pools, START, end, args.warmup_days, args.seed)
    config = RunConfig.load(None, args.seed)
    costs = config.strategy.costs.model_copy(update={"slippage_bps": args.slippage_bps})
    config = RunConfig(config.strategy.model_copy(update={"costs": costs}), config.backtest, config.source)
    setup = build_setup(market, START, end, config, 1_000_000.0, args.rebalance_every)

    started = time.perf_counter()
    fast = replay(setup, make_forecaster(args.strategy, setup, config))
    fast_seconds = time.perf_counter() - started

    started = time.perf_counter()
    with ChainWorld(setup) as world:
        deployed = time.perf_counter()
        vault = world.vault(args.strategy)
        chain = replay(setup, make_forecaster(args.strategy, setup, config), vault=vault)
        chain_seconds = time.perf_counter() - deployed
        anvil_mib = peak_rss_mib(world.anvil.pid)
    deploy_seconds = deployed - started

    steps = len(setup.days)
    accepted = sum(d.accepted for d in chain.decisions)
    difference_bp = abs(chain.values["total"].iloc[-1] / fast.values["total"].iloc[-1] - 1) * 1e4
    print(f"market: {args.pools} pools, {steps} days, strategy {args.strategy}, rebalance every "
          f"{args.rebalance_every} day(s), {len(setup.pools)} markets on chain; {accepted} rebalances sent, "
          f"{sum(bool(d.rejections) for d in chain.decisions)} rejected by the contract")
    print(f"anvil start + deployment: {deploy_seconds:.1f} s")
    print(f"chain mode: {chain_seconds:.1f} s = {steps / chain_seconds:.1f} steps/s "
          f"({chain_seconds / steps * 1000:.0f} ms/day)")
    print(f"fast mode:  {fast_seconds:.2f} s = {steps / fast_seconds:.0f} steps/s")
    print(f"final value, chain vs fast (gross of gas): {difference_bp:.2e} bp; slippage paid "
          f"{-chain.pnl['slippage']:,.2f} on chain, {-fast.pnl['slippage']:,.2f} in fast mode "
          f"({args.slippage_bps:g} bps)")
    print(f"peak memory: {peak_rss_mib():.0f} MiB (this process), {anvil_mib:.0f} MiB (anvil)")


if __name__ == "__main__":
    main()

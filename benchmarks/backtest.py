"""Benchmark of a fast-mode backtest: 2 years daily × 50 synthetic pools, the model retrained monthly,
plus every baseline. Prints wall time (total, per strategy, model training) and peak memory.

    python -m benchmarks.backtest [--pools 50] [--days 730] [--warmup-days 180] [--retrain-days 30]
                                  [--strategy ml] [--rebalance-every 1] [--seed 7]
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
from rich.console import Console

from backtest.market import synthetic_market
from backtest.report import rich_table, summarise
from backtest.run import STRATEGIES, RunConfig, build_setup, run_backtest
from benchmarks.memory import peak_rss_mib

START = pd.Timestamp("2024-01-01", tz="UTC")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pools", type=int, default=50)
    parser.add_argument("--days", type=int, default=730, help="length of the backtest window")
    parser.add_argument("--warmup-days", type=int, default=180, help="history before the window, to train on")
    parser.add_argument("--retrain-days", type=int, default=30)
    parser.add_argument("--strategy", choices=STRATEGIES, default="ml")
    parser.add_argument("--rebalance-every", type=int, default=1)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    started = time.perf_counter()
    end = START + pd.Timedelta(days=args.days - 1)
    market = synthetic_market(args.pools, START, end, args.warmup_days, args.seed)
    config = RunConfig.load(None, args.seed)
    model = config.strategy.model.model_copy(update={"retrain_every_days": args.retrain_days})
    config = RunConfig(config.strategy.model_copy(update={"model": model}), config.backtest, config.source)
    setup = build_setup(market, START, end, config, 1_000_000.0, args.rebalance_every)
    prepared = time.perf_counter() - started

    result = run_backtest(setup, config, args.strategy)
    total = time.perf_counter() - started

    Console().print(rich_table(summarise(result)))
    print(f"market: {args.pools} pools, window {len(setup.days)} days (+{args.warmup_days} warm-up), "
          f"{len(setup.pools)} listed markets, rebalance every {args.rebalance_every} day(s)")
    print(f"setup (synthetic data, universe): {prepared:.1f} s")
    for name, elapsed in result.seconds.items():
        print(f"  {name:<18} {elapsed:7.1f} s  ({elapsed / len(setup.days) * 1000:.1f} ms/day)")
    if result.model_trainings:
        print(f"  model: {result.model_trainings} trainings, {result.training_seconds:.1f} s of the ml time")
    print(f"wall time: {total:.1f} s")
    print(f"peak memory: {peak_rss_mib():.0f} MiB (max resident set size of the process)")


if __name__ == "__main__":
    main()

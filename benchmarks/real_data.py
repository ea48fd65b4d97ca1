"""Benchmark of the real-data runs the README reports, each beside the same work on a synthetic market of the
same size (pools, days): walk-forward evaluation and a fast-mode backtest of every strategy.

    python -m benchmarks.real_data [--data DIR] [--test-days 730] [--start 2023-03-01] [--end 2025-02-28]

DIR defaults to the first real dataset under ../shared/data (laid out as `vaultbot data download` writes it).
The figures are wall times on a shared, noisy machine: compare the two columns of one run, not runs.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from backtest.market import MarketData, load_market, synthetic_market
from backtest.run import RunConfig, build_setup, run_backtest
from benchmarks.memory import peak_rss_mib
from strategy.models import walk_forward

SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def find_dataset(root: Path) -> Path:
    """The first folder under `root` holding a market_history.parquet (what the tests switch to as well)."""
    for path in sorted(root.rglob("market_history.parquet")):
        return path.parent
    raise SystemExit(f"no real dataset (market_history.parquet) under {root}")


def timed(work):
    started = time.perf_counter()
    result = work()
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--test-days", type=int, default=730)
    parser.add_argument("--start", default="2023-03-01")
    parser.add_argument("--end", default="2025-02-28")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    directory = args.data or find_dataset(SHARED_DATA)
    real = load_market(directory / "market_history.parquet", directory / "news", directory / "pools.json")
    start, end = pd.Timestamp(args.start, tz="UTC"), pd.Timestamp(args.end, tz="UTC")
    days = (real.history["timestamp"].max() - real.history["timestamp"].min()).days + 1
    pools = real.history["pool"].nunique()
    first = real.history["timestamp"].min()
    synthetic = synthetic_market(pools, start, end, warmup_days=(start - first).days, seed=args.seed)
    config = RunConfig.load(None, args.seed)

    table = Table(title=f"real data ({directory.name}: {pools} pools, {days} days, {len(real.history)} rows) "
                        f"beside a synthetic market of {pools} pools over the same days "
                        f"({len(synthetic.history)} rows)")
    for column in ("work", "real (s)", "synthetic (s)", "real / synthetic"):
        table.add_column(column, justify="left" if column == "work" else "right")

    def compare(name: str, work) -> None:
        (_, real_seconds), (_, synthetic_seconds) = timed(lambda: work(real)), timed(lambda: work(synthetic))
        ratio = real_seconds / synthetic_seconds
        table.add_row(name, f"{real_seconds:.1f}", f"{synthetic_seconds:.1f}", f"{ratio:.2f}")

    def evaluate(market: MarketData) -> object:
        return walk_forward(market.history, market.news, market.pools, config.strategy.model,
                            test_days=args.test_days)

    def backtest(market: MarketData) -> object:
        return run_backtest(build_setup(market, start, end, config, 1_000_000.0, 1), config, "ml")

    compare(f"model evaluate, last {args.test_days} days", evaluate)
    compare(f"backtest ml + baselines, {args.start} to {args.end} daily", backtest)
    Console().print(table)
    print(f"peak memory: {peak_rss_mib():.0f} MiB (max resident set size of the process)")


if __name__ == "__main__":
    main()

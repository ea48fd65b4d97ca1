"""Benchmark of the model layer on a synthetic market (default: 2 years daily × 50 pools): time to build
the features, train the three models, predict every row and forecast the last day, and peak memory.

    python -m benchmarks.strategy [--pools 50] [--days 730] [--seed 7] [--threads 2]

Run it as a module: as a script, the file name would shadow the `strategy` package.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import TypeVar

from rich.console import Console
from rich.table import Table

from benchmarks.memory import peak_rss_mib
from strategy.config import ModelSettings
from strategy.forecast import forecast_at
from strategy.models import train_artifact
from strategy.models.dataset import model_features
from strategy.synthetic import generate_market

T = TypeVar("T")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pools", type=int, default=50)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=ModelSettings().num_threads, help="LightGBM threads")
    args = parser.parse_args()
    settings = ModelSettings(seed=args.seed, num_threads=args.threads)

    table = Table(title=f"model layer: {args.pools} pools × {args.days} days (synthetic, seed {args.seed}), "
                        f"{args.threads} thread(s)")
    for column in ("stage", "seconds", "peak RSS so far (MiB)", "detail"):
        table.add_column(column, justify="left" if column in ("stage", "detail") else "right")

    def stage(name: str, work: Callable[[], T], detail: Callable[[T], str]) -> T:
        started = time.perf_counter()
        result = work()
        table.add_row(name, f"{time.perf_counter() - started:.2f}", f"{peak_rss_mib():.0f}", detail(result))
        return result

    market = stage("generate market", lambda: generate_market(args.pools, args.days, args.seed),
                   lambda m: f"{len(m.history)} rows, {len(m.news)} news items")
    history, news, pools = market.history, market.news, market.pools
    end = history["timestamp"].max()
    features = stage("build features", lambda: model_features(history, news, pools),
                     lambda f: f"{f.shape[1]} features")
    artifact = stage("train (incl. features, targets)",
                     lambda: train_artifact(history, news, pools, train_end=end, settings=settings),
                     lambda a: f"{a.metadata.rows} rows; rounds " + ", ".join(
                         f"{name} {n}" for name, n in a.metadata.best_iterations.items()))
    stage("predict every row", lambda: artifact.predict(features), lambda p: f"{len(p)} rows")
    stage("forecast_at the last day", lambda: forecast_at(artifact, history, news, pools, end),
          lambda f: f"{len(f)} pools (features rebuilt up to the day)")
    Console(width=120).print(table)


if __name__ == "__main__":
    main()

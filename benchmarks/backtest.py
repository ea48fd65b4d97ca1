"""Benchmark of a fast-mode backtest: 2 years daily × 50 synthetic pools, the model retrained monthly,
plus every baseline. Prints wall time (total, per strategy, model training), peak memory and, for the ML
strategy, its floor: LightGBM alone on the same matrices, measured in the same run, and the ratio to it.

    python -m benchmarks.backtest [--pools 50] [--days 730] [--warmup-days 180] [--retrain-days 30]
                                  [--strategy ml] [--rebalance-every 1] [--seed 7] [--no-floor]

The floor retrains, after the replay, each model the ML strategy trained (every challenger's three boosters,
every trial's yield booster) from its matrices, built untimed: what is left is LightGBM binning, boosting and
predicting the validation split, with nothing around it.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
from rich.console import Console

from backtest.engine import Setup, replay
from backtest.market import synthetic_market
from backtest.model import ModelForecaster
from backtest.report import rich_table, summarise
from backtest.run import STRATEGIES, BacktestResult, RunConfig, build_setup, require_trained, run_backtest
from benchmarks.memory import peak_rss_mib
from strategy.models.artifact import MODELS, YIELD
from strategy.models.training import _fit, _training_rows

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
    parser.add_argument("--no-floor", action="store_true", help="skip retraining the ML models for the floor")
    args = parser.parse_args()

    started = time.perf_counter()
    end = START + pd.Timedelta(days=args.days - 1)
    market = synthetic_market(args.pools, START, end, args.warmup_days, args.seed)
    config = RunConfig.load(None, args.seed)
    model = config.strategy.model.model_copy(update={"retrain_every_days": args.retrain_days})
    config = RunConfig(config.strategy.model_copy(update={"model": model}), config.backtest, config.source)
    setup = build_setup(market, START, end, config, 1_000_000.0, args.rebalance_every)
    prepared = time.perf_counter() - started

    forecaster, ml_cpu = None, 0.0
    if args.strategy == "ml":
        result, forecaster, ml_cpu = with_model(setup, config)
    else:
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
    if forecaster is not None:
        print(f"  ml CPU time: {ml_cpu:.1f} s (a busy machine stretches wall time, much less CPU time)")
    print(f"wall time: {total:.1f} s")
    print(f"peak memory: {peak_rss_mib():.0f} MiB (max resident set size of the process)")
    if forecaster is not None and not args.no_floor:
        (floor, floor_cpu), boosters = lightgbm_floor(setup, forecaster)
        ml = result.seconds["ml"]
        print(f"floor: LightGBM alone on the same matrices ({boosters} boosters) {floor:.1f} s, CPU {floor_cpu:.1f} s; "
              f"ml {ml:.1f} s = {ml / floor:.2f}× the floor (CPU {ml_cpu / floor_cpu:.2f}×), its training "
              f"{result.training_seconds:.1f} s = {result.training_seconds / floor:.2f}×")


def with_model(setup: Setup, config: RunConfig) -> tuple[BacktestResult, ModelForecaster, float]:
    """`run_backtest` of the ML strategy, keeping its forecaster (what it trained) and the ML replay's CPU
    seconds: the ML replay, then every baseline as `run_backtest` replays them."""
    forecaster = ModelForecaster(config.strategy.model)
    started, cpu = time.perf_counter(), time.process_time()
    run = replay(setup, forecaster)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    require_trained(forecaster, setup)
    baselines = run_backtest(setup, config, "equal")  # the baselines alone: `equal` is one of them
    result = BacktestResult(setup, config, {"ml": run, **baselines.runs}, "ml", len(forecaster.trainings),
                            {"ml": seconds, **baselines.seconds}, forecaster.training_seconds,
                            model_first_trained=forecaster.first_trained, model_policy=forecaster.policy_counts())
    return result, forecaster, cpu


def lightgbm_floor(setup: Setup, forecaster: ModelForecaster) -> tuple[tuple[float, float], int]:
    """Seconds (wall, CPU) LightGBM alone takes to train what `forecaster` trained, and how many boosters."""
    trainings = [(verdict.day, MODELS) for verdict in forecaster.verdicts]
    trainings += [(verdict.scores.first, (YIELD,)) for verdict in forecaster.verdicts
                  if verdict.scores is not None and verdict.scores.first is not None]
    seconds, cpu, boosters = 0.0, 0.0, 0
    for day, models in trainings:
        view = setup.market.until(day)
        rows = _training_rows(view.history, view.news, view.pools, day, forecaster.settings,
                              view.model_features_until(day))
        started, cpu_started = time.perf_counter(), time.process_time()
        _fit(rows, forecaster.settings, models)
        seconds, cpu = seconds + time.perf_counter() - started, cpu + time.process_time() - cpu_started
        boosters += len(models)
    return (seconds, cpu), boosters


if __name__ == "__main__":
    main()

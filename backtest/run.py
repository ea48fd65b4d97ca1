"""A backtest run: the config, the setup shared by every strategy, and the strategy plus all baselines.

`STRATEGIES` can be chosen as the headline strategy; every run also replays each of `BASELINES` on the same
setup (the perfect-foresight one is an upper bound that reads the future, never a strategy to choose).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from pydantic import TypeAdapter, ValidationError

from backtest.baselines import (
    EqualForecaster,
    HoldForecaster,
    PerfectForesightForecaster,
    TrailingBestForecaster,
)
from backtest.engine import Forecaster, Setup, StrategyRun, replay
from backtest.errors import BacktestError, UsageError
from backtest.market import (
    MarketData,
    default_universe,
    investable_pools,
    require_investable,
    require_known_pools,
    window_days,
)
from backtest.model import ModelForecaster
from backtest.settings import vault_guardrails
from config import BacktestSettings, load_config
from strategy.config import Seed
from strategy.costs import allocator_config
from strategy.units import UINT256_MAX

if TYPE_CHECKING:
    from backtest.chainmode import ChainOptions
    from strategy.config import StrategyConfig

STRATEGIES = ("ml", "equal", "trailing-best", "hold")
BASELINES = ("equal", "trailing-best", "hold", "perfect-foresight")


@dataclass(frozen=True)
class RunConfig:
    """The `[strategy]` and `[backtest]` tables of one TOML file (defaults without a file)."""

    strategy: StrategyConfig
    backtest: BacktestSettings
    source: str  # the file, or "defaults"

    @classmethod
    def load(cls, path: Path | None, seed: int | None = None) -> RunConfig:
        """Read `path` (the defaults without one) with `config.load_config`; `seed`, when given, replaces the
        model's seed. A bad file or key is a `config.ConfigError`."""
        config = load_config(path)
        strategy = config.strategy
        if seed is not None:
            try:
                TypeAdapter(Seed).validate_python(seed)  # model_copy below does not validate
            except ValidationError as error:
                raise UsageError(f"`seed` {seed}: {error.errors()[0]['msg']}", "seed") from None
            strategy = strategy.model_copy(update={"model": strategy.model.model_copy(update={"seed": seed})})
        try:
            model = strategy.model.for_asset(config.backtest.asset_symbol)
        except ValueError as error:
            raise UsageError(str(error), "config") from None
        strategy = strategy.model_copy(update={"model": model})
        return cls(strategy, config.backtest, str(path) if path is not None else "defaults")


@dataclass(frozen=True)
class BacktestResult:
    setup: Setup
    config: RunConfig
    runs: dict[str, StrategyRun]  # the headline strategy first, then the baselines
    headline: str
    model_trainings: int  # models trained by the ML strategy (0 when it did not run)
    seconds: dict[str, float]  # wall time per strategy (not part of the report: it would break reproducibility)
    training_seconds: float  # of which training the model
    mode: str = "fast"  # fast, chain or fork (`backtest.chainmode.ChainOptions.mode`)
    model_first_trained: pd.Timestamp | None = None  # the ML strategy's first model: its warm-up ends there
    model_policy: dict[str, int] | None = None  # `ModelForecaster.policy_counts` of the ML strategy


def build_setup(
    market: MarketData, start: pd.Timestamp, end: pd.Timestamp, config: RunConfig, capital: float, rebalance_every: int
) -> Setup:
    """The window, vault universe and guardrails, allocator and cost settings every strategy shares."""
    if not math.isfinite(capital) or capital <= 0:  # nan and inf pass a comparison, then break the arithmetic
        raise UsageError(f"`capital` must be positive, got {capital}", "capital")
    if rebalance_every < 1:
        raise UsageError(f"`rebalance_every` must be at least 1 day, got {rebalance_every}", "rebalance_every")
    settings = config.backtest
    scaled = capital * settings.unit  # 1e308 dollars are infinitely many base units
    units = round(scaled) if math.isfinite(scaled) else UINT256_MAX + 1
    if units < 1:
        raise UsageError(f"`capital` {capital:g} is less than one base unit of {settings.asset_symbol}", "capital")
    if units > UINT256_MAX:
        raise UsageError(f"`capital` {capital:g} is more than a vault can hold (2**256 - 1 base units)", "capital")
    days = window_days(market, start, end)
    investable = investable_pools(market, settings.asset_symbol)
    universe = settings.configured_markets()
    if universe is None:
        universe = default_universe(market, days, settings.max_markets, investable)
    else:
        require_known_pools(market, universe)
        require_investable(market, universe, investable)
    guardrails = vault_guardrails(settings, universe, where=config.source)
    # The allocator is told the costs the simulation charges, at the simulated gas price, as the keeper is live.
    allocator = allocator_config(config.strategy.allocator, config.strategy.costs, settings.gas_price_wei,
                                 settings.asset_decimals)
    return Setup(
        market=market,
        days=days,
        guardrails=guardrails,
        allocator=allocator,
        costs=config.strategy.costs,
        targets=config.strategy.target_params(),
        settings=settings,
        capital=units,
        rebalance_every=rebalance_every,
        investable=investable,
    )


def make_forecaster(name: str, setup: Setup, config: RunConfig) -> Forecaster:
    """A fresh forecaster for strategy `name` (a `STRATEGIES` or `BASELINES` name)."""
    factories: dict[str, Callable[[], Forecaster]] = {
        "ml": lambda: ModelForecaster(config.strategy.model),
        "equal": EqualForecaster,
        "trailing-best": TrailingBestForecaster,
        "hold": HoldForecaster,
        "perfect-foresight": lambda: PerfectForesightForecaster(setup.market, setup.targets),
    }
    if name not in factories:
        raise UsageError(f"unknown strategy {name!r}: choose one of {', '.join(STRATEGIES)}")
    return factories[name]()


def strategy_names(headline: str) -> list[str]:
    """The headline strategy, then every baseline (once)."""
    if headline not in STRATEGIES:
        raise UsageError(f"unknown strategy {headline!r}: choose one of {', '.join(STRATEGIES)}")
    return [headline, *(name for name in BASELINES if name != headline)]


def run_backtest(
    setup: Setup,
    config: RunConfig,
    headline: str,
    on_day: Callable[[str], None] | None = None,
    chain: ChainOptions | None = None,
) -> BacktestResult:
    """Replay the headline strategy and every baseline; `on_day(name)` is called after each simulated day.

    With `chain`, every strategy runs on the real contracts on one anvil (`backtest.chainmode`), each from the
    same fresh deployment; anvil is stopped before this returns."""
    with ExitStack() as stack:
        world = None
        if chain is not None:
            from backtest.chainmode import ChainWorld

            world = stack.enter_context(ChainWorld(setup, chain))
        runs: dict[str, StrategyRun] = {}
        seconds: dict[str, float] = {}
        trainings, training_seconds, first_trained, policy = 0, 0.0, None, None
        for name in strategy_names(headline):
            forecaster = make_forecaster(name, setup, config)
            started = time.perf_counter()
            vault = world.vault(name) if world is not None else None
            runs[name] = replay(setup, forecaster, None if on_day is None else partial(on_day, name), vault)
            seconds[name] = time.perf_counter() - started
            if isinstance(forecaster, ModelForecaster):
                require_trained(forecaster, setup)
                trainings, training_seconds = len(forecaster.trainings), forecaster.training_seconds
                first_trained, policy = forecaster.first_trained, forecaster.policy_counts()
    mode = "fast" if chain is None else chain.mode
    return BacktestResult(setup, config, runs, headline, trainings, seconds, training_seconds, mode, first_trained,
                          policy)


def require_trained(forecaster: ModelForecaster, setup: Setup) -> None:
    """A model strategy that never trained sat in cash throughout: its replay says nothing about the model,
    so the run stops with the reason instead of reporting it."""
    if forecaster.first_trained is None:
        raise BacktestError(f"the ml model never trained between {setup.days[0].date()} and "
                            f"{setup.days[-1].date()}: {forecaster.untrained_reason or 'no decision day'}")

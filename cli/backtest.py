"""`vaultbot backtest run|lookahead`: point-in-time backtests of the strategy against its baselines.

Bad input ends with a one-line message: exit code 2 for a bad flag value, 1 for bad data or config.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.common import as_flags, fail, no_files_beside_synthetic, output_dir, utc_day

if TYPE_CHECKING:
    from rich.console import Console

    from backtest.chainmode import ChainOptions
    from backtest.engine import Setup
    from backtest.run import RunConfig

app = typer.Typer(help="Backtest the strategy and its baselines on historical or synthetic data.",
                  no_args_is_help=True)

Data = Annotated[Path | None, typer.Option(
    "--data", help="Market history: CSV/Parquet, DeFiLlama chart JSON or a directory of them.")]
News = Annotated[Path | None, typer.Option(
    "--news", help="News: CSV/Parquet table, RSS/Atom file or a directory of feeds (needs --pools).")]
Pools = Annotated[Path | None, typer.Option("--pools", help="Pool metadata: a saved DeFiLlama /pools JSON.")]
Synthetic = Annotated[bool, typer.Option(
    "--synthetic", help="Use a generated market (strategy.synthetic) instead of --data.")]
SyntheticPools = Annotated[int, typer.Option(
    "--synthetic-pools", help="Stablecoin lending pools of the synthetic market, all listed by the vault "
                              "(at most \\[backtest] max_markets).")]
WarmupDays = Annotated[int, typer.Option("--warmup-days", help="Synthetic history before --start (to train on).")]
Start = Annotated[str, typer.Option("--start", help="First day, YYYY-MM-DD (UTC).")]
End = Annotated[str, typer.Option("--end", help="Last day, YYYY-MM-DD (UTC).")]
Strategy = Annotated[str, typer.Option(
    "--strategy", help="ml, equal, trailing-best or hold; the baselines always run too.")]
Capital = Annotated[float, typer.Option("--capital", help="Starting capital in asset units.")]
RebalanceEvery = Annotated[int, typer.Option("--rebalance-every", help="Days between rebalance decisions.")]
Config = Annotated[Path | None, typer.Option(
    "--config", help="TOML with \\[strategy] and \\[backtest] tables (the keeper's file).")]
Seed = Annotated[int | None, typer.Option(
    "--seed", help="Seed of the synthetic market and the model (default: the config's model seed).")]
Report = Annotated[Path, typer.Option("--report", help="Directory for report.json and report.html.")]
Chain = Annotated[bool, typer.Option(
    "--chain",
    help="Replay on the real Vault and MockMarkets on a fresh local anvil (slower; see backtest.chainmode).")]
ForkUrl = Annotated[str | None, typer.Option(
    "--fork-url", help="Fork mode: run on anvil forked from this (archive) RPC; needs --fork-block.")]
ForkBlock = Annotated[int | None, typer.Option("--fork-block", help="Fork mode: the block to fork at.")]
ForkMarket = Annotated[list[str] | None, typer.Option(
    "--fork-market", metavar="POOL=0xADDRESS",
    help="Fork mode: use the MockMarket already at 0xADDRESS on the fork for pool POOL (a pool id, as in "
         "\\[backtest.guardrails.markets]) instead of deploying one; repeat it for every pool of the backtest.")]


@dataclass(frozen=True)
class _Prepared:
    setup: Setup
    config: RunConfig
    strategy: str


@contextmanager
def _one_line_errors() -> Iterator[None]:
    """Expected failures (bad flags, data, config, model training) as one line and an exit code, no traceback."""
    from backtest.errors import BacktestError, UsageError
    from config import ConfigError
    from strategy.data import DataError
    from strategy.models import ModelError

    try:
        yield
    except BacktestError as error:
        fail(as_flags(error), 2 if isinstance(error, UsageError) else 1)  # 2: a usage error, as Typer's own
    except ConfigError as error:
        fail(str(error), 1)
    except (DataError, ModelError) as error:
        fail(str(error).splitlines()[0], 1)


def _prepare(
    data: Path | None, news: Path | None, pools: Path | None, synthetic: bool, synthetic_pools: int,
    warmup_days: int, start: str, end: str, strategy: str, capital: float, rebalance_every: int,
    config_path: Path | None, seed: int | None,
) -> _Prepared:
    from backtest.errors import UsageError
    from backtest.market import load_market, synthetic_market
    from backtest.run import RunConfig, build_setup, strategy_names

    strategy_names(strategy)  # a bad name fails before any work
    first, last = utc_day("--start", start), utc_day("--end", end)
    if first > last:
        raise UsageError(f"--start {first.date()} is after --end {last.date()}")
    if synthetic == (data is not None):
        raise UsageError("give either --data PATH or --synthetic")
    config = RunConfig.load(config_path, seed)
    if data is None:  # --synthetic, checked above
        no_files_beside_synthetic(news, pools)
        if warmup_days < 0:
            raise UsageError(f"--warmup-days must be >= 0, got {warmup_days}")
        if synthetic_pools > config.backtest.max_markets:
            raise UsageError(f"--synthetic-pools {synthetic_pools}: a vault lists at most "
                             f"{config.backtest.max_markets} markets ([backtest] max_markets)")
        market_seed = seed if seed is not None else config.strategy.model.seed
        market = synthetic_market(synthetic_pools, first, last, warmup_days, market_seed)
    else:
        market = load_market(data, news, pools)
    return _Prepared(build_setup(market, first, last, config, capital, rebalance_every), config, strategy)


def _chain_options(chain: bool, fork_url: str | None, fork_block: int | None,
                   fork_markets: list[str] | None) -> ChainOptions | None:
    """None for fast mode; fork flags imply chain mode and are checked here (both or neither, block >= 0,
    --fork-market only with them and with valid addresses; that it covers the pools is checked by ChainWorld)."""
    from backtest.chainmode import ChainOptions

    options = ChainOptions(fork_url, fork_block, _fork_markets(fork_markets) if fork_markets else None)
    return options if chain or options.fork_url is not None else None


def _fork_markets(values: list[str]) -> dict[str, str]:
    """`--fork-market POOL=0xADDRESS` values as pool -> address; each pool once."""
    from backtest.errors import UsageError

    markets: dict[str, str] = {}
    for value in values:
        pool, equals, address = value.rpartition("=")  # the last "=": a pool id may hold one, an address cannot
        if not equals or not pool.strip() or not address.strip():
            raise UsageError(f"--fork-market {value!r}: expected POOL=0xADDRESS")
        pool, address = pool.strip(), address.strip()
        if pool in markets:
            raise UsageError(f"--fork-market: pool {pool} is given twice ({markets[pool]} and {address})")
        markets[pool] = address
    return markets


def _stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True)


@app.command()
def run(
    start: Start, end: End, data: Data = None, news: News = None, pools: Pools = None, synthetic: Synthetic = False,
    synthetic_pools: SyntheticPools = 12, warmup_days: WarmupDays = 180, strategy: Strategy = "ml",
    capital: Capital = 1_000_000.0, rebalance_every: RebalanceEvery = 1, config: Config = None, seed: Seed = None,
    report: Report = Path("backtest-report"), chain: Chain = False, fork_url: ForkUrl = None,
    fork_block: ForkBlock = None, fork_market: ForkMarket = None,
) -> None:
    """Replay the strategy and every baseline day by day; print the metrics, write report.json and report.html.

    --chain replays on the contracts on a local anvil; --fork-url with --fork-block on anvil forked at that block.

    --fork-market POOL=0xADDRESS, once per pool, uses markets already on the fork instead of deploying new ones.
    """
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from backtest.report import market_share_text, policy_text, rich_table, summarise, write_report
    from backtest.run import run_backtest, strategy_names

    output_dir("--report", report)
    with _one_line_errors():
        options = _chain_options(chain, fork_url, fork_block, fork_market)
        prepared = _prepare(data, news, pools, synthetic, synthetic_pools, warmup_days, start, end, strategy,
                            capital, rebalance_every, config, seed)
        console = _stderr()
        names = strategy_names(prepared.strategy)
        columns = (TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console, disable=not console.is_terminal) as progress:
            task = progress.add_task(names[0], total=len(names) * len(prepared.setup.days))
            result = run_backtest(prepared.setup, prepared.config, prepared.strategy,
                                  on_day=lambda name: progress.update(task, advance=1, description=name),
                                  chain=options)
        summary = summarise(result)
        files = write_report(result, report, summary)
    Console().print(rich_table(summary))
    if (policy := policy_text(summary)) is not None:
        typer.echo(policy)
    if (share := market_share_text(summary)) is not None:
        typer.echo(share)
    typer.echo(f"report: {files.json} {files.html}; tables: {', '.join(path.name for path in files.tables)}")


@app.command()
def lookahead(
    start: Start, end: End, data: Data = None, news: News = None, pools: Pools = None, synthetic: Synthetic = False,
    synthetic_pools: SyntheticPools = 12, warmup_days: WarmupDays = 180, strategy: Strategy = "ml",
    capital: Capital = 1_000_000.0, rebalance_every: RebalanceEvery = 1, config: Config = None, seed: Seed = None,
    cuts: Annotated[int, typer.Option("--cuts", help="How many cut-off days to re-run with.")] = 3,
) -> None:
    """Re-run with the data cut off at several days; fail (exit 1) if any decision up to a cut changes:
    the forecasts it was made on, its targets or the vault's outcome.

    Perfect foresight reads the future by design: its changes are shown, as proof the check can fail,
    but do not fail the check.
    """
    from rich.console import Console
    from rich.table import Table

    from backtest.lookahead import check_lookahead, cut_points
    from backtest.run import make_forecaster, strategy_names

    with _one_line_errors():
        prepared = _prepare(data, news, pools, synthetic, synthetic_pools, warmup_days, start, end, strategy,
                            capital, rebalance_every, config, seed)
        points = cut_points(prepared.setup.days, cuts)
        factories = {name: (lambda setup, name=name: make_forecaster(name, setup, prepared.config))
                     for name in strategy_names(prepared.strategy)}
        console = _stderr()
        with console.status("look-ahead check", spinner="dots") as status:
            report = check_lookahead(prepared.setup, factories, points, on_replay=lambda name, cut: status.update(
                f"look-ahead check: {name} {'full data' if cut is None else f'cut at {cut.date()}'}"))
    table = Table(title=f"look-ahead check, data cut at {', '.join(str(c.date()) for c in points)}")
    for column in ("strategy", "decisions compared", "changed decisions", "verdict"):
        table.add_column(column)
    for name, compared in report.compared.items():
        changed = sum(1 for m in report.mismatches if m.strategy == name)
        verdict = ("leaky by design" if report.leaky[name] else "LOOK-AHEAD") if changed else "ok"
        table.add_row(name, str(compared), str(changed), verdict)
    Console().print(table)
    unexpected = report.unexpected()
    for mismatch in unexpected[:10]:
        typer.echo(mismatch.describe(), err=True)
    if unexpected:
        fail(f"look-ahead found: {len(unexpected)} decisions change when later data is removed", 1)
    typer.echo("no look-ahead: every decision is the same with the later data removed")

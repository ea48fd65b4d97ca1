"""`vaultbot model train|evaluate|explain`: fit a model artifact, score it out of sample, show what it uses.

Without --data the commands run on a generated market (`strategy.synthetic`) and say so. Bad flag values
exit with code 2, bad data, config or artifacts with a one-line message and code 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.common import exit_on, fail, no_files_beside_synthetic, output_dir, utc_day
from strategy.units import MAX_WINDOW_DAYS

if TYPE_CHECKING:
    from rich.console import JustifyMethod
    from rich.table import Table

    from backtest.market import MarketData
    from strategy.config import ModelSettings
    from strategy.models import Evaluation, ModelArtifact

app = typer.Typer(help="Train, evaluate and explain the LightGBM yield and risk models.", no_args_is_help=True)

Data = Annotated[Path | None, typer.Option(
    "--data", help="Market history: CSV/Parquet, DeFiLlama chart JSON or a directory of them. "
                   "Default: a synthetic market.")]
News = Annotated[Path | None, typer.Option(
    "--news", help="News: CSV/Parquet table, RSS/Atom file or a directory of feeds (needs --pools).")]
Pools = Annotated[Path | None, typer.Option("--pools", help="Pool metadata: a saved DeFiLlama /pools JSON.")]
Config = Annotated[Path | None, typer.Option(
    "--config", help="TOML whose \\[strategy.model] table sets the model (the keeper's or backtest's file).")]
Seed = Annotated[int | None, typer.Option("--seed", help="Seed of the model and the synthetic market "
                                                         "(default: the config's model seed).")]
SyntheticPools = Annotated[int, typer.Option(
    "--synthetic-pools", min=1, help="Stablecoin lending pools of the synthetic market.")]
SyntheticDays = Annotated[int, typer.Option("--synthetic-days", min=60, help="Days of the synthetic market.")]
ArtifactDir = Annotated[Path | None, typer.Option(
    "--artifact", help="Directory of a saved model artifact, or the keeper's model store (its champion). Default: "
                       "where `model train` saves without --config and --out, $VAULTBOT_HOME/model (else "
                       ".vaultbot/model).")]


def _expected_errors() -> tuple[type[Exception], ...]:
    from backtest.errors import BacktestError
    from config import ConfigError
    from strategy.data import DataError
    from strategy.models import ModelError

    return BacktestError, DataError, ModelError, ConfigError


def _settings(config: Path | None, seed: int | None) -> ModelSettings:
    from backtest.run import RunConfig

    return RunConfig.load(config, seed).strategy.model  # the backtest's reading of the file and --seed


def _market(data: Path | None, news: Path | None, pools: Path | None, seed: int, synthetic_pools: int,
            synthetic_days: int) -> MarketData:
    from backtest.market import MarketData, load_market, require_synthetic_size
    from strategy.synthetic import generate_market

    if data is not None:
        return load_market(data, news, pools)
    no_files_beside_synthetic(news, pools)
    require_synthetic_size(synthetic_pools, synthetic_days, "`synthetic_days`", "synthetic_days")
    typer.echo(f"note: no --data given, using SYNTHETIC data (strategy.synthetic: {synthetic_pools} stablecoin "
               f"lending pools, {synthetic_days} days, seed {seed}); the numbers say nothing about real markets",
               err=True)
    market = generate_market(n_pools=synthetic_pools, days=synthetic_days, seed=seed, stablecoin_lending=True)
    return MarketData(market.history, market.news, market.pools, f"synthetic(seed={seed})")


@app.command()
def train(
    data: Data = None, news: News = None, pools: Pools = None, config: Config = None, seed: Seed = None,
    out: Annotated[Path | None, typer.Option("--out", help=(
        "Directory to write the artifact to. Default: the keeper's model store, model.artifact_dir of --config "
        "(else $VAULTBOT_HOME/model, else .vaultbot/model), where a keeper with the same config adopts it as its "
        "champion at its next start; refused once the keeper keeps its models there (champion.json)."))] = None,
    train_end: Annotated[str | None, typer.Option(
        "--train-end", help="Train on what was known at this day, YYYY-MM-DD (default: the last day of data).")] = None,
    synthetic_pools: SyntheticPools = 20, synthetic_days: SyntheticDays = 540,
) -> None:
    """Train the yield, risk and quantile models and save them as an artifact directory: by default in the
    keeper's model store, which adopts it (see --out)."""
    from config import load_config
    from strategy.models import train_artifact

    end = utc_day("--train-end", train_end) if train_end is not None else None
    with exit_on(*_expected_errors()):
        settings = _settings(config, seed)
        loaded = load_config(config)
        store = loaded.model.artifact_dir  # as the keeper reads the same file
    out = _artifact_out(out if out is not None else store)
    with exit_on(*_expected_errors()):
        market = _market(data, news, pools, settings.seed, synthetic_pools, synthetic_days)
        end = end if end is not None else market.history["timestamp"].max()
        artifact = train_artifact(market.history, market.news, market.pools, train_end=end, settings=settings)
    try:
        artifact.save(out)
    except OSError as error:  # /proc, a read-only disk: known only once written to
        fail(f"--out: cannot write to {out}: {error.strerror or error}")
    meta = artifact.metadata
    typer.echo(f"model {artifact.content_hash} saved to {out}{_handover(out, store, config)}")
    typer.echo(f"trained on {meta.rows} rows of {meta.pools} pools, days {meta.train_start.date()} to "
               f"{meta.last_label_day.date()} (train_end {meta.train_end.date()}, horizon "
               f"{settings.horizon_days} days); rounds {meta.best_iterations}")
    validation = meta.validation
    typer.echo(f"validation: yield MAE {validation['mae_model']:.3f} (persistence {validation['mae_baseline']:.3f}), "
               f"risk AUC {_number(validation['auc'])}, Brier {validation['brier']:.4f}")
    typer.echo(f"events: {meta.event_rate:.2%} of its rows; "
               f"{_loss_given(meta.loss_given_event, loaded.strategy.allocator.loss_given_event)}")
    for warning in _skill_warnings(artifact, settings):
        typer.secho(warning, fg="yellow", err=True)


def _artifact_out(out: Path) -> Path:
    """`out`, checked before training: a directory to write into, and not a model store the keeper keeps already
    (`keeper.modelstore`: it reads the champion its champion.json names and would never use an artifact beside it)."""
    from keeper.modelstore import STATE_FILE

    output_dir("--out", out)
    if (out / STATE_FILE).is_file():
        raise typer.BadParameter(
            f"{out} is the keeper's model store ({STATE_FILE} names its champion): the keeper would not use a model "
            "saved there, as it adopts one only into a model.artifact_dir that holds no store yet; give another "
            "directory", param_hint="--out")
    return out


def _handover(out: Path, store: Path, config: Path | None) -> str:
    """How the keeper of `config` gets the model saved in `out`, its model store being `store`."""
    key = f"model.artifact_dir of {config}" if config is not None else "model.artifact_dir"
    adopted = "the keeper adopts it as its champion, without the promotion gate, at its next start"
    if out.resolve() == store.resolve():
        return f", the keeper's model store ({key}): {adopted}"
    return f", not the keeper's model store {store} ({key}): copied there while that holds no store yet, {adopted}"


def _skill_warnings(artifact: ModelArtifact, settings: ModelSettings) -> list[str]:
    """A warning for each of the artifact's models without skill on its validation split, with what the keeper
    does with such a model (`strategy.models.promotion`, `keeper.modelstore`)."""
    from strategy.models import ModelError
    from strategy.models.metrics import brier_of_rate, risk_without_skill
    from strategy.models.promotion import first_verdict, trained_day

    meta, warnings = artifact.metadata, []
    verdict = first_verdict(artifact, trained_day(artifact))
    if not verdict.promoted and verdict.scores is not None:
        warnings.append(
            f"warning: the yield model is worse than persistence on {verdict.scores.span}: its yield MAE "
            f"{verdict.scores.model:.3f}, persistence's {verdict.scores.persistence:.3f}. The keeper's promotion gate "
            "rejects such a model when the keeper trains it (the trailing-best rule decides until a retrained model "
            "passes); put in model.artifact_dir, this artifact is adopted as the champion without the gate and "
            f"decides until its realised yield error over {settings.fallback_window_days} days runs worse than "
            "persistence's.")
    event_rate, brier = meta.validation["event_rate"], meta.validation["brier"]
    if event_rate is None or brier is None:  # training scores both on every split; only the AUC can be undefined
        raise ModelError(f"model {artifact.content_hash}: its validation event rate or Brier score is missing")
    base = brier_of_rate(meta.event_rate, event_rate)
    risk = risk_without_skill(meta.validation["auc"], brier, base)
    if risk is not None:
        warnings.append(
            f"warning: the risk model has no skill on its validation split: {risk}. The promotion gate judges yield "
            "forecasts only: while this model decides, the keeper uses its p_event forecasts in every allocation "
            "(a market is worth its yield less risk_aversion x p_event x loss_given_event); [strategy.allocator] "
            "risk_aversion = 0 leaves them out.")
    return warnings


@app.command()
def evaluate(
    data: Data = None, news: News = None, pools: Pools = None, config: Config = None, seed: Seed = None,
    test_days: Annotated[int, typer.Option("--test-days", min=1, help="Length of the test period (last days).")] = 180,
    fold_days: Annotated[int | None, typer.Option(
        "--fold-days", min=1, max=MAX_WINDOW_DAYS,
        help="Retrain every this many test days (default: model.retrain_every_days).")] = None,
    until: Annotated[str | None, typer.Option(
        "--until", help="Evaluate on what was known at this day, YYYY-MM-DD: market rows and news after it are left "
                        "out, so the test period ends before it (a validation period chosen without the later "
                        "test period's data). Default: all the data.")] = None,
    synthetic_pools: SyntheticPools = 20, synthetic_days: SyntheticDays = 540,
) -> None:
    """Walk-forward out-of-sample scores: yield MAE against persistence, risk AUC, Brier and reliability."""
    from rich.console import Console

    from strategy.models import walk_forward

    cut = utc_day("--until", until) if until is not None else None
    with exit_on(*_expected_errors()):
        settings = _settings(config, seed)
        market = _market(data, news, pools, settings.seed, synthetic_pools, synthetic_days)
        market = market.until(cut) if cut is not None else market
        evaluation, _ = walk_forward(market.history, market.news, market.pools, settings, test_days=test_days,
                                     fold_days=fold_days)
    console = Console()
    console.print(_scores_table(evaluation, market.source))
    console.print(_reliability_table(evaluation))
    verdict = "beats" if evaluation.beats_baseline else "does NOT beat"
    typer.echo(f"the yield model {verdict} persistence on the test period "
               f"({evaluation.mae_model:.3f} vs {evaluation.mae_baseline:.3f} MAE, percentage points)")
    from config import load_config
    from strategy.targets import loss_given_event

    measured = loss_given_event(market.history, market.pools, settings.target_params(), market.news)
    typer.echo(f"loss given an event on this data: {_number(measured, 4)} "
               f"({_pricing(load_config(config).strategy.allocator.loss_given_event)})")


def _pricing(configured: float | None) -> str:
    """How the allocator prices an event under `[strategy.allocator] loss_given_event`."""
    from strategy.allocator import UNMEASURED_LOSS_GIVEN_EVENT

    if configured is not None:
        return f"the allocator prices every event at {configured:g}: [strategy.allocator] loss_given_event"
    return (f"each model weighs its p_event by this measure on its own training rows, a forecast without one by "
            f"{UNMEASURED_LOSS_GIVEN_EVENT:g}; [strategy.allocator] loss_given_event set prices every event")


def _loss_given(measured: float | None, configured: float | None) -> str:
    """What an event of a model's training rows cost, and so how its p_event is weighed."""
    from strategy.allocator import UNMEASURED_LOSS_GIVEN_EVENT

    if configured is not None:
        return f"each priced at [strategy.allocator] loss_given_event = {configured:g}"
    if measured is None:
        return f"none with a known price path, so its p_event is weighed by {UNMEASURED_LOSS_GIVEN_EVENT:g}"
    return (f"one cost {measured:.4%} of the position on average (the worst price fall in the horizon), the "
            "weight of its p_event in an allocation")


@app.command()
def explain(
    artifact_dir: ArtifactDir = None,
    top: Annotated[int, typer.Option("--top", min=1, help="How many features to show.")] = 20,
) -> None:
    """Feature importances (total gain, as a share of each model's) of a saved artifact, or of the champion of the
    keeper's model store."""
    from rich.console import Console
    from rich.table import Table

    from config import load_config

    with exit_on(*_expected_errors()):
        artifact = _saved_model(artifact_dir if artifact_dir is not None else load_config(None).model.artifact_dir)
    gains = artifact.importances("gain")
    shares = gains / gains.sum().where(gains.sum() > 0, 1.0)
    table = Table(title=f"feature importance (gain share) of model {artifact.content_hash[:18]}...")
    table.add_column("feature")
    for name in gains.columns:
        table.add_column(name, justify="right")
    for feature, row in shares.head(top).iterrows():
        table.add_row(str(feature), *(f"{value:.1%}" for value in row))
    Console().print(table)


def _saved_model(directory: Path) -> ModelArtifact:
    """The artifact saved in `directory`, or the champion of the keeper's model store there (a store's own
    top-level artifact, the one it adopted, may be a champion since replaced)."""
    from keeper.modelstore import STATE_FILE, ModelStore
    from strategy.models import ModelArtifact, ModelError

    if not (directory / STATE_FILE).is_file():
        return ModelArtifact.load(directory)
    state = ModelStore(directory).load_state()  # with its state file there, this only reads
    if state is None or state.champion is None:
        raise ModelError(f"{directory}: the keeper's model store names no champion yet")
    return state.champion


def _number(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _scores_table(evaluation: Evaluation, source: str) -> Table:
    from rich.table import Table

    from strategy.models.metrics import NO_SKILL_AUC

    table = Table(title=f"walk-forward evaluation on {source}: {evaluation.test_start.date()} to "
                        f"{evaluation.test_end.date()}, {evaluation.folds} folds, {evaluation.rows} rows, "
                        f"{evaluation.pools} pools")
    columns: tuple[tuple[str, JustifyMethod], ...] = (("measure", "left"), ("model", "right"), ("baseline", "right"),
                                                      ("baseline is", "left"))
    for column, justify in columns:
        table.add_column(column, justify=justify)
    table.add_row("yield MAE (pp of APY)", f"{evaluation.mae_model:.4f}", f"{evaluation.mae_baseline:.4f}",
                  "trailing 7-day mean APY")
    table.add_row("risk AUC", _number(evaluation.auc), f"{NO_SKILL_AUC:.3f}", "no skill")
    table.add_row("risk Brier score", f"{evaluation.brier:.5f}", f"{evaluation.brier_base_rate:.5f}",
                  "training event rate")
    table.add_row("event rate", f"{evaluation.event_rate:.4f}", "", "")
    table.add_row("outcomes below q10", f"{evaluation.q10_below_share:.3f}", "0.100", "calibrated")
    return table


def _reliability_table(evaluation: Evaluation) -> Table:
    from rich.table import Table

    table = Table(title="risk reliability: forecast p_event bins")
    for column in ("p_event bin", "rows", "mean forecast", "observed rate"):
        table.add_column(column, justify="right")
    for row in evaluation.reliability:
        if row.count:
            table.add_row(f"[{row.low:.1f}, {row.high:.1f})", str(row.count), _number(row.mean_predicted),
                          _number(row.observed_rate))
    return table

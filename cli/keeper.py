"""`vaultbot keeper run|once|status|verify`: the keeper service, one cycle, its journal, and audits.

Every command takes `--config PATH` (a keeper TOML, see keeper/example-config.toml). Without it the keeper
runs against the devnet of $VAULTBOT_HOME/devnet.json (else .vaultbot/devnet.json) with synthetic market
data, so `vaultbot devnet up && vaultbot keeper once` works on a fresh checkout.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from cli.common import exit_on, fail

if TYPE_CHECKING:
    from rich.console import Console

    from config import Config, ServiceSettings
    from journal.db import Decision
    from keeper.cycle import Keeper
    from keeper.metrics import KeeperMetrics

app = typer.Typer(help="Run the keeper (decide and rebalance on a schedule) and inspect its journal.",
                  no_args_is_help=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Keeper config (TOML). Default: the devnet of $VAULTBOT_HOME/devnet.json "
                                        "(else .vaultbot/devnet.json) with synthetic market data."),
]
LogLevel = Annotated[str, typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR.")]
LogFormat = Annotated[Literal["text", "json"], typer.Option(
    "--log-format", envvar="VAULTBOT_LOG_FORMAT",
    help="text, or json: one object per line with cycle_id, status, decision_hash, tx_hash fields.")]


def _config(path: Path | None) -> "Config":
    from config import ConfigError, load_config
    from devnet.config import devnet_config
    from vaultbot.paths import state_dir

    with exit_on(ConfigError):
        return load_config(path, keeper=True) if path is not None else devnet_config(state_dir() / "devnet.json")


@contextmanager
def opened_keeper(settings: "Config", metrics: "KeeperMetrics | None" = None) -> "Iterator[Keeper]":
    """`keeper.startup.open_keeper`, after serving the devnet's synthetic data when the config asks for it;
    a start-up failure is one line and exit 1."""
    from devnet.synthetic_sources import serving_synthetic_sources
    from keeper.startup import open_keeper

    with exit_on(*startup_errors()), serving_synthetic_sources(settings) as served, \
            open_keeper(served, metrics=metrics) as keeper:
        yield keeper


def configure_logging(level: str, log_format: Literal["text", "json"] = "text") -> None:
    """`keeper.logs.configure_logging`, a bad level being a usage error."""
    from keeper.logs import configure_logging as configure

    try:
        configure(level, log_format)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--log-level") from None


def startup_errors() -> tuple[type[Exception], ...]:
    from chain.errors import RpcUnavailable
    from config import ConfigError
    from journal.db import DatabaseError
    from keeper.startup import StartupError
    from sources import SourceError
    from strategy.models import ModelError

    return StartupError, ConfigError, DatabaseError, RpcUnavailable, ModelError, SourceError


@app.command()
def run(config: ConfigOption = None, log_level: LogLevel = "INFO", log_format: LogFormat = "text") -> None:
    """Run a cycle now and then every service.interval_s until SIGTERM/SIGINT; serves /metrics and /health."""
    configure_logging(log_level, log_format)
    settings = _config(config)
    from keeper.metrics import KeeperMetrics

    metrics = KeeperMetrics(max_age_s=settings.service.health_age_s)
    with opened_keeper(settings, metrics) as keeper:
        serve(keeper, metrics, settings.service)


def serve(keeper: "Keeper", metrics: "KeeperMetrics", service: "ServiceSettings") -> None:
    """The keeper service with its /metrics and /health server, until SIGTERM/SIGINT."""
    from keeper.metrics import start_metrics_server
    from keeper.service import Schedule, run_service

    try:
        server = start_metrics_server(metrics, service.metrics_host, service.metrics_port, service.decisions_dir)
    except OSError as error:  # the port taken, a host that does not resolve: before the first cycle runs
        fail(f"cannot listen on {service.metrics_host}:{service.metrics_port} (service.metrics_host and "
             f"service.metrics_port): {error}")
    try:
        typer.echo(f"keeper running every {service.interval_s:g}s; metrics {server.url}/metrics, "
                   f"health {server.url}/health, decision bundles {server.url}/decisions/<hash>")
        run_service(keeper.run_cycle, Schedule(service.interval_s, service.misfire_grace_s))
    finally:
        server.stop()


@app.command()
def once(config: ConfigOption = None,
         dry_run: Annotated[bool, typer.Option("--dry-run", help="Decide and simulate, but send nothing.")] = False,
         log_level: LogLevel = "WARNING", log_format: LogFormat = "text") -> None:
    """Run one cycle and print its outcome; exit 1 if it failed, was refused or reverted."""
    configure_logging(log_level, log_format)
    settings = _config(config)
    from vaultbot.redact import redact

    with opened_keeper(settings) as keeper:
        outcome = keeper.run_cycle(dry_run=dry_run)
    reason = f": {redact(outcome.reason)}" if outcome.reason else ""  # error texts may name a URL with its key
    typer.echo(f"cycle {outcome.cycle_id}: {outcome.status.value}{reason}")
    if outcome.decision_hash:
        typer.echo(f"decision {outcome.decision_hash}")
    if outcome.tx_hash:
        typer.echo(f"transaction {outcome.tx_hash}")
    if not outcome.succeeded:
        raise typer.Exit(1)


@app.command()
def status(config: ConfigOption = None,
           limit: Annotated[int, typer.Option(min=1, help="How many recent cycles to show.")] = 10) -> None:
    """The last cycles and their outcomes, pending transactions, the proposals waiting for the guardian, the
    vault's positions against the last decision's targets, and that decision: per market its forecast APY and
    event probability next to the APY on chain, its part of the expected gain, and the limits that bound it (the
    chain part needs the RPC; without it the journal part still prints)."""
    settings = _config(config)
    from rich.console import Console
    from rich.table import Table

    from depositor.keeper_health import decision_block
    from journal.db import DatabaseError, JournalMissing, KeeperDB

    console = Console(soft_wrap=True)
    with exit_on(DatabaseError):
        try:
            db = KeeperDB(settings.service.database_url, create=False)  # a read must not leave an empty journal
        except JournalMissing as missing:  # the chain part still says what the vault holds
            console.print(str(missing), markup=False)
            _print_chain(None, None, settings, console)
            return
        try:
            cycles, pending, decision = db.recent_cycles(limit), db.pending_transactions(), db.last_decision()
            block = None if decision is None else decision_block(db, decision)
        finally:
            db.close()
    table = Table(title=f"keeper journal {db.shown_url}")
    for column in ("cycle", "started (UTC)", "took", "status", "reason"):
        table.add_column(column)
    for cycle in cycles:
        took = f"{(cycle.finished - cycle.started).total_seconds():.1f}s" if cycle.finished else "-"
        table.add_row(str(cycle.id), f"{cycle.started:%Y-%m-%d %H:%M:%S}", took,
                      cycle.status.value + (" (dry)" if cycle.dry_run else ""), cycle.reason or "")
    console.print(table if cycles else "no cycles yet")
    for tx in pending:
        console.print(f"pending transaction {tx.tx_hash} (nonce {tx.nonce}, {tx.status.value} at {tx.updated:%c})")
    _print_chain(decision, block, settings, console)


def _print_chain(decision: "Decision | None", block: int | None, settings: "Config", console: "Console") -> None:
    """The vault's live proposals, and its positions against `decision`'s targets (read at `block`), next to the
    markets' APY on chain and the forecasts the keeper decided on, and why it chose them."""
    from rich.table import Table

    from chain.errors import RpcUnavailable
    from keeper.proposals import chain_time
    from keeper.startup import StartupError, connect_vault
    from vaultbot.redact import redact

    try:
        _, reader = connect_vault(settings)
        state, snapshot = reader.state(), reader.snapshot()
    except (RpcUnavailable, StartupError) as error:
        console.print(f"proposals and positions not shown: {redact(str(error))}")
        return
    for proposal in snapshot.proposals:  # one line each: ids stay whole for `vaultbot vault approve ID`
        approved = "yes: the keeper runs it next" if proposal.approved else "no: waiting for the guardian"
        console.print(f"proposal beyond the daily budgets {proposal.id}: decision {proposal.decision_hash}, "
                      f"deadline {chain_time(proposal.deadline)}, approved {approved}")
    if not snapshot.proposals:
        console.print("no proposal waiting for the guardian")
    from journal.audit import Labels
    from strategy.guardrails import breaches

    labels = Labels.of(reader, snapshot)
    for breach in breaches(state, reader.guardrails()):
        console.print(f"OUTSIDE THE VAULT'S LIMITS: {breach.text(labels.assets, labels.name)}; the keeper moves "
                      "back as fast as its turnover and loss limits allow", style="bold red", markup=False)
    if decision is None:
        return
    from depositor.dashboard import market_apys
    from depositor.keeper_health import decision_of
    from depositor.report import decision_tables

    shown = decision_of(decision, block, reader, settings.strategy, snapshot.asset_decimals)
    targets, decided = shown.targets, f"cycle {decision.cycle_id}, {decision.decision_hash}"
    table = Table(title=f"positions now vs targets of the last decision ({decided})")
    for column in ("market", "position", "target", "difference"):
        table.add_column(column, justify="left" if column == "market" else "right")
    for market in sorted(set(state.positions) | set(targets), key=labels.name):
        position, target = state.position(market), targets.get(market, state.position(market))
        difference = labels.assets(position - target)
        table.add_row(labels.name(market), labels.assets(position), labels.assets(target),
                      difference if position < target else f"+{difference}")
    table.add_row("idle", labels.assets(state.idle), "", "")
    console.print(table)
    for part in decision_tables(shown, labels.names, market_apys(reader, snapshot.markets, snapshot.block),
                                labels.assets):
        console.print(part)


@app.command()
def verify(tx: Annotated[str, typer.Argument(help="Hash of a rebalance transaction (0x + 64 hex digits).")],
           config: ConfigOption = None) -> None:
    """Check a rebalance: its on-chain decision hash equals the hash of the journal's stored record, and it moved
    each market to the record's target. Ends in one verdict line: exit 0 for OK, 1 for any other verdict (MISMATCH
    alone means the chain and the journal disagree), 2 for a TX that is not a hash."""
    from journal.audit import NotAHash, transaction_hash, verify_transaction

    try:
        tx = transaction_hash(tx)  # before any connection: a mistyped hash needs no chain to be told
    except NotAHash as error:
        fail(f"TX: {error}", 2)
    settings = _config(config)
    from journal.db import KeeperDB
    from keeper.startup import connect_vault

    with exit_on(*startup_errors()):
        _, reader = connect_vault(settings)
        db = KeeperDB(settings.service.database_url, create=False)  # a read must not leave an empty journal
        try:
            report = verify_transaction(db, reader, tx)
        finally:
            db.close()
    for line in report.lines():
        typer.echo(line)
    raise typer.Exit(0 if report.ok else 1)

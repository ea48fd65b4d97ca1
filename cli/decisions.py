"""`vaultbot decisions export`: copy the keeper's decision bundles of a range of days, and their models, into a
directory for archiving (`decisions.export`); the journal says which decisions the days hold."""

from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.common import JsonOption, deployment_path, exit_on, fail, output_dir, utc_day
from cli.keeper import ConfigOption

if TYPE_CHECKING:
    from config import Config

app = typer.Typer(help="Export the keeper's decision bundles (the files `vaultbot verify` checks).",
                  no_args_is_help=True)

@app.command()
def export(
    out: Annotated[Path, typer.Option("--out", help="Directory to write into (created; files already there with "
                                                    "the same names are replaced).")],
    from_day: Annotated[str | None, typer.Option("--from", help="First UTC day (YYYY-MM-DD) of decisions to "
                                                                "export. Default: the journal's first.")] = None,
    to_day: Annotated[str | None, typer.Option("--to", help="Last UTC day (YYYY-MM-DD), included. Default: the "
                                                            "journal's last.")] = None,
    config: ConfigOption = None,
    json_path: JsonOption = None,
) -> None:
    """Copy the bundles of the decisions the keeper journaled from --from to --to (UTC days, both included), and
    each model artifact they name once, into --out in the bundle directory's own layout: give it to `vaultbot
    verify --bundle` or upload it to any content-addressed store. Decisions without a bundle
    (journaled before bundles existed) are named, not fatal."""
    output_dir("--out", out)
    first = None if from_day is None else utc_day("--from", from_day)
    last = None if to_day is None else utc_day("--to", to_day)
    if first is not None and last is not None and first > last:
        fail(f"--from {first.date()} is after --to {last.date()}", 2)
    # the decisions before the day after --to; there is no day after 9999-12-31, nor a decision past it
    end = None if last is None or last.date() == date.max else (last + timedelta(days=1)).to_pydatetime()
    settings = _settings(config, json_path)
    from decisions.export import export_bundles
    from journal.db import DatabaseError, KeeperDB

    with exit_on(DatabaseError):
        db = KeeperDB(settings.service.database_url, create=False)  # a read must not leave an empty journal
        try:
            decisions = db.decisions_between(None if first is None else first.to_pydatetime(), end)
        finally:
            db.close()
    source = settings.service.decisions_dir
    with exit_on(OSError):
        exported = export_bundles(source, (decision.decision_hash for decision in decisions), out)
    journaled = {decision.decision_hash.lower(): decision for decision in reversed(decisions)}  # each hash's first
    for decision_hash in exported.no_bundle:
        decision = journaled[decision_hash]
        typer.echo(f"no bundle for decision {decision_hash} (cycle {decision.cycle_id}, journaled "
                   f"{decision.created:%Y-%m-%d %H:%M} UTC) in {source}: it was journaled before bundles existed, "
                   "or its bundle was removed")
    for model_hash in exported.no_model:
        typer.echo(f"no model artifact {model_hash} in {source}: the bundles naming it are exported without it")
    typer.echo(f"exported {exported.bundles} bundle(s) and {exported.models} model(s), {exported.bytes:,} bytes, "
               f"to {out} ({len(decisions)} decision(s) journaled in the range)")


def _settings(config: Path | None, json_path: Path | None) -> "Config":
    """The keeper's configuration as `vaultbot keeper` reads it: --config, else the devnet of --json."""
    if config is not None and json_path is not None:
        fail("give --config or --json, not both", 2)
    from config import ConfigError, load_config
    from devnet.config import devnet_config

    with exit_on(ConfigError):
        return load_config(config, keeper=True) if config is not None else devnet_config(deployment_path(json_path))


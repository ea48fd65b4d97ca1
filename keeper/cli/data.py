"""`vaultbot data download`: record real DeFiLlama history (and news feeds) for backtests and model evaluation.

Writes the layout of `keeper.sources.recorder`, which `vaultbot backtest run` and `vaultbot model evaluate`
read with --data DIR/charts --pools DIR/pools.json [--news DIR/news]. Exit codes: 0 all recorded, 1 /pools
unreadable, an empty selection, or some chart or feed failed (the rest is written; re-run to fetch it),
2 bad flags.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from keeper.cli.common import exit_on, fail

app = typer.Typer(help="Record real market data (DeFiLlama yields, news feeds) for backtests and models.",
                  no_args_is_help=True)

@app.command()
def download(
    out: Annotated[Path, typer.Option("--out", help="Directory to write into (created if needed).")],
    top: Annotated[int, typer.Option("--top", min=1, help="How many pools, biggest TVL first.")] = 20,
    chain: Annotated[list[str] | None, typer.Option("--chain", help="Only pools on this chain (repeatable).")] = None,
    project: Annotated[list[str] | None, typer.Option(
        "--project", help="Only pools of this DeFiLlama project, e.g. aave-v3 (repeatable).")] = None,
    symbol: Annotated[list[str] | None, typer.Option("--symbol", help="Only pools of this symbol (repeatable).")] = None,
    any_asset: Annotated[bool, typer.Option(
        "--any-asset", help="Also pools that are not stablecoin pools (default: stablecoin pools only).")] = False,
    min_tvl: Annotated[float, typer.Option("--min-tvl", min=0, help="Only pools with at least this TVL (USD).")] = 0.0,
    pool: Annotated[list[str] | None, typer.Option(
        "--pool", help="Exactly this pool id (repeatable); the filters are then ignored.")] = None,
    feed: Annotated[list[str] | None, typer.Option("--feed", help="An RSS/Atom news feed URL (repeatable).")] = None,
    yields_url: Annotated[str, typer.Option("--yields-url", help="DeFiLlama yields API base URL.")] =
        "https://yields.llama.fi",
) -> None:
    """Fetch /pools, the chosen pools' /chart histories and news feeds into --out, with a manifest."""
    from pydantic import ValidationError
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import Progress

    from keeper.sources import SourceError, SourcesConfig, open_sources
    from keeper.sources.recorder import CHARTS_DIR, NEWS_DIR, POOLS_FILE, PoolSelection, SelectionError, record

    try:
        config = SourcesConfig(yields_base_url=yields_url)
    except ValidationError as error:
        fail(f"--yields-url: {error.errors()[0]['msg'].removeprefix('Value error, ')}", code=2)
    selection = PoolSelection(chains=tuple(chain or ()), projects=tuple(project or ()), symbols=tuple(symbol or ()),
                              stablecoin_only=not any_asset, min_tvl_usd=min_tvl, top=top, pools=tuple(pool or ()))
    sources = open_sources(config)
    try:
        with exit_on(SourceError, SelectionError, OSError), Progress(transient=True) as progress:
            task = progress.add_task("DeFiLlama /pools", total=None)
            recording = record(sources, out, selection, feed or (),
                               on_step=lambda step: progress.update(task, description=step, advance=1))
    finally:
        sources.close()
    console = Console()
    days = sum(entry["rows"] for entry in recording.pools.values())
    console.print(f"recorded {len(recording.pools)} pool histories ({days} daily points) and "
                  f"{len(recording.feeds)} feed(s) into {out}")
    for what, reason in recording.failures.items():
        console.print(f"[red]failed[/] {escape(what)}: {escape(reason)}", highlight=False)
    news = f" --news {out / NEWS_DIR}" if recording.feeds else ""
    console.print(f"use it: vaultbot backtest run --data {out / CHARTS_DIR} --pools {out / POOLS_FILE}{news}",
                  highlight=False, markup=False)
    if recording.failures:
        fail(f"{len(recording.failures)} of {len(recording.failures) + len(recording.pools) + len(recording.feeds)} "
             "downloads failed (listed above and in manifest.json); run the command again to fetch them")

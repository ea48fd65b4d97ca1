"""`vaultbot data download`: record real DeFiLlama history (and news feeds) for backtests and model evaluation.

Writes the layout of `sources.recorder`, which `vaultbot backtest run` and `vaultbot model evaluate`
read with --data DIR/market_history.parquet --pools DIR/pools.json [--news DIR/news]. Exit codes: 0 all recorded,
1 /pools unreadable, an empty selection, or some chart or feed failed (the rest is written; re-run to fetch it),
2 bad flags.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import exit_on, fail, output_dir

app = typer.Typer(help="Record real market data (DeFiLlama yields, news feeds) for backtests and models.",
                  no_args_is_help=True)

@app.command()
def download(
    out: Annotated[Path, typer.Option("--out", help="Directory to write into (created if needed).")],
    top: Annotated[int, typer.Option("--top", min=1, help="How many pools, biggest TVL first.")] = 20,
    chain: Annotated[list[str] | None, typer.Option("--chain", help="Only pools on this chain (repeatable).")] = None,
    project: Annotated[list[str] | None, typer.Option(
        "--project", help="Only pools of this DeFiLlama project, e.g. aave-v3 (repeatable).")] = None,
    symbol: Annotated[list[str] | None, typer.Option(
        "--symbol", help="Only pools of this symbol (repeatable).")] = None,
    any_asset: Annotated[bool, typer.Option(
        "--any-asset", help="Also pools that are not stablecoin lending pools: volatile tokens, LP pairs "
                            "(default: stablecoin lending pools only).")] = False,
    min_tvl: Annotated[float, typer.Option("--min-tvl", min=0, help="Only pools with at least this TVL (USD).")] = 0.0,
    pool: Annotated[list[str] | None, typer.Option(
        "--pool", help="Exactly this pool id (repeatable); the filters are then ignored.")] = None,
    feed: Annotated[list[str] | None, typer.Option("--feed", help="An RSS/Atom news feed URL (repeatable).")] = None,
    yields_url: Annotated[str, typer.Option("--yields-url", help="DeFiLlama yields API base URL.")] =
        "https://yields.llama.fi",
    coins_url: Annotated[str, typer.Option("--coins-url", help="DeFiLlama coins API base URL (token prices).")] =
        "https://coins.llama.fi",
) -> None:
    """Fetch /pools, the chosen pools' /chart histories and news feeds into --out, with a manifest."""
    from pydantic import ValidationError
    from rich.progress import Progress

    from sources import SourceError, SourcesConfig, open_sources
    from sources.recorder import (
        CHARTS_DIR,
        NEWS_DIR,
        POOLS_FILE,
        TABLE_FILE,
        PoolSelection,
        SelectionError,
        record,
    )

    output_dir("--out", out)
    try:
        config = SourcesConfig(yields_base_url=yields_url, coins_base_url=coins_url)
    except ValidationError as error:
        problem = error.errors()[0]
        flag = "--yields-url" if problem["loc"][0] == "yields_base_url" else "--coins-url"
        fail(f"{flag}: {problem['msg'].removeprefix('Value error, ')}", code=2)
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
    # plain lines: the paths are to be copied, never wrapped or shortened
    days = sum(entry["rows"] for entry in recording.pools.values())
    typer.echo(f"recorded {len(recording.pools)} pool histories ({days} daily points) and "
               f"{len(recording.feeds)} feed(s) into {out}")
    if recording.table is not None:
        typer.echo(f"{TABLE_FILE}: {recording.table['rows']} rows, prices for {recording.table['priced_pools']} "
                   "pools (those with a single underlying token)")
    for what, reason in recording.failures.items():
        typer.secho(f"failed {what}: {reason}", fg="red")
    news = f" --news {out / NEWS_DIR}" if recording.feeds else ""
    data = out / (TABLE_FILE if recording.table is not None else CHARTS_DIR)
    typer.echo(f"use it: vaultbot backtest run --data {data} --pools {out / POOLS_FILE}{news}")
    if recording.failures:
        attempts = len(recording.failures) + len(recording.pools) + len(recording.feeds) + (recording.table is not None)
        fail(f"{len(recording.failures)} of {attempts} downloads failed (listed above and in manifest.json); "
             "run the command again to fetch them")

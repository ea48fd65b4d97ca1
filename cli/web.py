"""`vaultbot web`: serve the depositors' page (vault figures, history, keeper health, each rebalance's decision
re-executed from its bundle on request; deposit and withdraw through the browser's wallet) until Ctrl-C."""

import signal
import threading
from typing import TYPE_CHECKING, Annotated

import typer

from cli.common import JsonOption, as_flags, deployment_path, fail
from cli.vault import DecisionsOption, RpcOption, VaultOption
from vaultbot.wsgi import REQUEST_TIMEOUT_S

if TYPE_CHECKING:
    from pathlib import Path

    from depositor.keeper_health import KeeperSources

app = typer.Typer(help="Serve the depositors' web page.")


@app.callback(invoke_without_command=True)
def web(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port; 0 picks a free one.")] = 8550,
    rpc: RpcOption = None,
    vault: VaultOption = None,
    json_path: JsonOption = None,
    keeper_health: Annotated[str | None, typer.Option(
        "--keeper-health", help="The keeper's health URL, e.g. http://127.0.0.1:9464/health.")] = None,
    keeper_db: Annotated[str | None, typer.Option(
        "--keeper-db", help="The keeper's journal database URL, e.g. sqlite:///.vaultbot/keeper.sqlite. Default: "
        "for the devnet's vault (no --vault), the devnet keeper's journal next to the deployment JSON, if there is "
        "one (the one `vaultbot keeper status` reads).")] = None,
    decisions: DecisionsOption = None,
    allowed_host: Annotated[list[str] | None, typer.Option(
        "--allowed-host", help="Also answer requests with this Host header, e.g. the name a reverse proxy forwards "
        "(vault.example.com); repeatable. HOST:PORT, localhost, 127.0.0.1 and [::1] at PORT are always answered.")
    ] = None,
    timeout: Annotated[float, typer.Option(
        min=0.1, help="Seconds a connection may stall (send nothing) before it is dropped.")] = REQUEST_TIMEOUT_S,
) -> None:
    """Serve the page on http://HOST:PORT; with no keeper health URL nor journal to read it shows 'no keeper data'."""
    from chain.errors import RpcUnavailable
    from depositor.errors import BadInput, DepositorError
    from depositor.vault import open_vault
    from depositor.views import VaultViews
    from depositor.web.server import serve

    path = deployment_path(json_path)
    try:
        opened = open_vault(rpc, vault, path)
    except BadInput as error:
        fail(as_flags(error), 2)
    except (DepositorError, RpcUnavailable) as error:
        fail(str(error))
    views = VaultViews(opened, keeper_sources(path, health_url=keeper_health, database_url=keeper_db,
                                              decisions=decisions, devnet=vault is None))
    try:
        server = serve(views, host, port, unavailable=(RpcUnavailable,), allowed_hosts=allowed_host or (),
                       request_timeout_s=timeout)
    except OSError as error:
        fail(f"cannot listen on {host}:{port}: {error}")
    typer.echo(f"vault {opened.address} on chain {opened.chain_id}: serving {server.url}/ (Ctrl-C stops)")
    stopped = threading.Event()
    # Ctrl-C and a service manager's SIGTERM stop it, even where the shell that started it ignores SIGINT (a
    # background job: Python then leaves SIGINT ignored), as the keeper service's own handlers do.
    previous = {sig: signal.signal(sig, lambda *_: stopped.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        stopped.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.stop()


def keeper_sources(deployment_json: "Path", *, health_url: str | None = None, database_url: str | None = None,
                   decisions: "Path | None" = None, devnet: bool) -> "KeeperSources":
    """Where the page and `vault info` find the keeper: the URLs and the bundle directory (`decisions`) given; for
    the devnet's vault (`devnet`: no --vault) without --keeper-db, the devnet keeper's journal next to the
    deployment JSON if it has written one, with the devnet keeper's [strategy] settings, which explain its
    decisions, and its decision bundles, which verify them."""
    from depositor.keeper_health import KeeperSources
    from depositor.verification import bundle_directory
    from devnet.config import devnet_config, devnet_journal
    from journal.db import sqlite_url

    journal = devnet_journal(deployment_json)
    if database_url is not None or not devnet or not journal.is_file():
        return KeeperSources(health_url, database_url, decisions_dir=bundle_directory(decisions, None))
    config = devnet_config(deployment_json)
    return KeeperSources(health_url, sqlite_url(journal), config.strategy,
                         bundle_directory(decisions, config.service.decisions_dir))

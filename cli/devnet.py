"""`vaultbot devnet up|down|status`: a local anvil chain with the vault deployed, in the background.

A devnet lives in the directory of its deployment JSON (default $VAULTBOT_HOME/devnet.json,
else .vaultbot/devnet.json): anvil.pid, anvil.log and abi/ sit next to it.
"""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.common import JsonOption, deployment_path, existing_deployment_only, exit_on, fail

if TYPE_CHECKING:
    from chain.deployment import Deployment

app = typer.Typer(help="Start and stop a local anvil chain with the vault deployed.", no_args_is_help=True)


@app.command()
def up(
    json_path: JsonOption = None,
    port: Annotated[int | None, typer.Option(
        min=0, max=65535, show_default=False,
        help="RPC port on 127.0.0.1; 0 picks a free one. Default: 8545 (Foundry's) when free, else a free "
             "one.")] = None,
    markets: Annotated[int, typer.Option(help="How many mock markets to deploy (1-8).")] = 4,
) -> None:
    """Start anvil in the background, deploy the token, markets and vault, write the deployment JSON."""
    from devnet.anvil import AnvilError, running_background

    path = deployment_path(json_path)
    with exit_on(AnvilError):
        running = running_background(path.parent)
    if running is not None:
        fail(f"a devnet is already running (pid {running.pid}, {running.rpc_url}); "
             f"stop it first with `vaultbot devnet down{_json_flag(json_path)}`")
    start_devnet(path, port=port, markets=markets)


def start_devnet(path: Path, *, port: int | None = None, markets: int = 4) -> "Deployment":
    """`devnet.lifecycle.start_devnet` (port None: 8545 when free), its summary printed; exit 1 on failure."""
    from devnet.anvil import FOUNDRY_PORT
    from devnet.deploy import DevnetParams
    from devnet.lifecycle import DevnetError
    from devnet.lifecycle import start_devnet as start

    existing_deployment_only(path)  # it is overwritten below
    try:
        params = DevnetParams(markets=markets)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--markets") from error
    with exit_on(DevnetError):
        started = start(path, params, port=port)
    if started.foundry_port_taken:
        typer.echo(f"port {FOUNDRY_PORT} is in use: anvil listens on {started.deployment.rpc_url} instead "
                   "(point [chain] rpc_urls of a keeper config at it)")
    _print_summary(path, started.deployment, started.log_path,
                   compiled=f"{'from cache' if started.compiled_from_cache else 'compiled'} in "
                            f"{started.compile_seconds:.1f}s",
                   deployed=f"in {started.deploy_seconds:.1f}s")
    return started.deployment


def _json_flag(json_path: Path | None) -> str:
    return f" --json {json_path}" if json_path is not None else ""


def _print_summary(path: Path, deployment: "Deployment", log_path: Path, compiled: str, deployed: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"devnet up: {deployment.rpc_url} (chain {deployment.chain_id})", show_header=False)
    table.add_row("vault", deployment.vault)
    table.add_row("asset (USDC)", deployment.asset)
    for market in deployment.markets:
        table.add_row(f"{market.name} ({market.apy:.1%} APY)", market.address)
    table.add_row("admin / keeper / guardian", f"{deployment.admin}\n{deployment.keeper}\n{deployment.guardian}")
    table.add_row("depositors", "\n".join(deployment.depositors))
    table.add_row("contracts", compiled)
    table.add_row("anvil + deploy", deployed)
    table.add_row("deployment", str(path))
    table.add_row("anvil log / pid", f"{log_path} / {deployment.anvil_pid}")
    Console().print(table)


@app.command()
def down(json_path: JsonOption = None) -> None:
    """Stop the background anvil and delete its deployment JSON. Nothing running is not an error."""
    from devnet.anvil import AnvilError, stop_background

    path = deployment_path(json_path)
    existing_deployment_only(path)  # it is deleted below
    with exit_on(AnvilError):
        result = stop_background(path.parent)
    if path.is_file():  # it described a chain that no longer exists (none under a file or a missing directory)
        with exit_on(OSError):
            path.unlink()
    typer.echo(result.message)


@app.command()
def status(json_path: JsonOption = None) -> None:
    """Whether the devnet is up, its block number and the vault's totalAssets; exits 1 if it is down."""
    from devnet.anvil import AnvilError, running_background

    path = deployment_path(json_path)
    with exit_on(AnvilError):
        running = running_background(path.parent)
    if running is None:
        fail(f"no devnet is running for {path}; start one with `vaultbot devnet up{_json_flag(json_path)}`")
    from web3 import (
        Web3,  # only once there is a chain to talk to: it takes a second to import
    )

    from chain.deployment import Deployment

    # the deployment checked before "up" is said: a refusal is then its one line
    with exit_on(FileNotFoundError, ValueError):
        deployment = Deployment.load(path)
    w3 = Web3(Web3.HTTPProvider(running.rpc_url))
    with exit_on(ValueError):
        vault = deployment.contract(w3, "Vault", deployment.vault)
        token = deployment.contract(w3, "MockToken", deployment.asset)
    # a JSON of another chain: web3's calls would fail with a riddle about syncing
    for key, address in (("vault", deployment.vault), ("asset", deployment.asset)):
        if not w3.eth.get_code(Web3.to_checksum_address(address)):
            fail(f"{path}: {key} {address} has no code on {running.rpc_url}; the file is not of this devnet")
    typer.echo(f"devnet is up: {running.rpc_url} (pid {running.pid}), chain {w3.eth.chain_id}, "
               f"block {w3.eth.block_number}")
    decimals = token.functions.decimals().call()
    total = vault.functions.totalAssets().call()
    typer.echo(f"vault {deployment.vault}: totalAssets {total / 10**decimals:,.2f} USDC ({total} base units)")

"""`vaultbot demo`: the main job on its embedded default, from nothing to a vault managed by the keeper.

It starts the devnet (or reuses a running one), lets the devnet's depositors put money in, and runs the
keeper on synthetic DeFiLlama data: `--cycles N` cycles (the default), each after moving the chain's
clock on by `--chain-hours` so that the vault's rebalance cooldown has passed, the markets have earned and
the synthetic market has moved on (a day per day of chain time; each market's rate on chain is its pool's
APY of the chain's day, `devnet.synthetic_sources`), or, with `--cycles 0`, the keeper service itself until
Ctrl-C. Each cycle prints every market's rate on chain next to the model's forecast. The devnet stays up afterwards
for `vaultbot web`, `vaultbot vault ...` and `vaultbot keeper status`; `vaultbot devnet down` stops it.
"""

from typing import TYPE_CHECKING, Annotated

import typer

from cli.common import JsonOption, deployment_path, exit_on

if TYPE_CHECKING:
    from pathlib import Path

    from chain.deployment import Deployment
    from keeper.cycle import Keeper

Cycles = Annotated[int, typer.Option(min=0, help="Keeper cycles to run; 0 runs the service until Ctrl-C.")]
ChainHours = Annotated[float, typer.Option(
    min=0, help="Chain time moved on before each cycle after the first (the devnet's cooldown is 1 hour); the "
    "synthetic market moves a day per day of chain time, and each market's rate on chain with it.")]
Deposit = Annotated[str, typer.Option(help="USDC each devnet depositor puts in if it holds no shares.")]


def demo(json_path: JsonOption = None, cycles: Cycles = 3, chain_hours: ChainHours = 24.0,
         deposit: Deposit = "25000",
         log_level: Annotated[str, typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR.")] = "WARNING",
         ) -> None:
    """Start the devnet, deposit, and run the keeper on synthetic market data (the README's main job)."""
    from chain.deployment import Deployment
    from cli.devnet import start_devnet
    from cli.keeper import configure_logging, opened_keeper, serve
    from config import ConfigError
    from devnet.anvil import AnvilError, running_background
    from devnet.config import devnet_config
    from keeper.metrics import KeeperMetrics

    configure_logging(log_level)
    check_deposit(deposit)
    path = deployment_path(json_path)
    with exit_on(AnvilError, FileNotFoundError, ValueError):
        running = running_background(path.parent)
        deployment = Deployment.load(path) if running is not None else start_devnet(path)
    if running is not None:
        typer.echo(f"using the devnet already running at {deployment.rpc_url}")
    with exit_on(ConfigError):
        settings = devnet_config(path)
    typer.echo("starting the keeper (the first start trains its model on synthetic history) ...")
    deposit_for_depositors(path, deployment, deposit)
    metrics = KeeperMetrics(max_age_s=settings.service.health_age_s)
    with opened_keeper(settings, metrics) as keeper:
        if cycles == 0:
            serve(keeper, metrics, settings.service)
        else:
            _run_cycles(keeper, deployment, cycles, round(chain_hours * 3600))
    json_flag = f" --json {json_path}" if json_path is not None else ""
    typer.echo(f"\nthe devnet stays up. Next: `vaultbot web{json_flag}` (the depositors' page), "
               f"`vaultbot vault info{json_flag}`, `vaultbot keeper status`, `vaultbot devnet down{json_flag}`.")


def check_deposit(amount: str) -> None:
    """A bad --deposit is told before a devnet is started for nothing (the devnet's USDC has fixed decimals)."""
    from depositor.amounts import parse_amount
    from depositor.errors import BadInput
    from devnet.deploy import USDC_DECIMALS

    with exit_on(BadInput):
        parse_amount(amount, USDC_DECIMALS, what="--deposit")


def deposit_for_depositors(path: "Path", deployment: "Deployment", amount: str) -> None:
    """Each devnet depositor without shares deposits `amount` USDC, through the depositor CLI's own flow."""
    from depositor.accounts import UnlockedSender
    from depositor.amounts import parse_amount
    from depositor.errors import BadInput, Refusal
    from depositor.flows import describe_result, execute, plan_action
    from depositor.vault import open_vault

    with exit_on(BadInput, Refusal):
        vault = open_vault(None, None, path)
        units = parse_amount(amount, vault.asset_decimals, what="--deposit")
    if units == 0:
        return
    for depositor in deployment.depositors:
        if vault.reader.balance(depositor) > 0:
            continue
        with exit_on(BadInput, Refusal):
            receipt = execute(vault, plan_action(vault, "deposit", depositor, units),
                              UnlockedSender(vault.w3, depositor))
        typer.echo(f"{depositor} {describe_result(vault, receipt)}")


def _run_cycles(keeper: "Keeper", deployment: "Deployment", cycles: int, chain_seconds: int) -> None:
    from devnet.lifecycle import advance_chain

    w3 = keeper.chain.w3
    for number in range(cycles):
        if number and chain_seconds:
            advance_chain(w3, chain_seconds)
        outcome = keeper.run_cycle()
        line = f"cycle {outcome.cycle_id}: {outcome.status.value}"
        typer.echo(line + (f" ({outcome.reason})" if outcome.reason else "")
                   + (f", decision {outcome.decision_hash}" if outcome.tx_hash and outcome.decision_hash else ""))
        _print_positions(keeper, deployment)


def _print_positions(keeper: "Keeper", deployment: "Deployment") -> None:
    """Positions, with each market's rate on chain (its synthetic pool's APY of the chain's day) and the model's
    forecast for that pool: its APY and the probability of an adverse event over the horizon (the forecast, not
    the rate, is what the allocator weighs)."""
    from rich.console import Console
    from rich.table import Table
    from web3 import Web3

    from depositor.dashboard import percent_text, rate_to_apy, utc_time

    state = keeper.chain.reader.state()
    total = state.total or 1
    snapshot = keeper.chain.reader.snapshot()
    decimals = 10 ** snapshot.asset_decimals
    rates = {Web3.to_checksum_address(m.address): m.rate for m in snapshot.markets}
    decision = keeper.db.last_decision()
    forecasts = {} if decision is None else {
        Web3.to_checksum_address(p["market"]): p for p in decision.predictions.values() if p["market"]}
    block = keeper.chain.w3.eth.get_block(snapshot.block)
    table = Table(title=f"block {block['number']}, chain time {utc_time(block['timestamp'])}", title_justify="left",
                  show_header=True, box=None, pad_edge=False)
    for column in ("where", "rate on chain", "forecast APY", "event risk", "USDC", "share"):
        table.add_column(column, justify="right" if column != "where" else "left")
    table.add_row("idle", "", "", "", f"{state.idle / decimals:,.2f}", f"{state.idle / total:.1%}")
    for market in deployment.markets:
        position = state.position(market.address)
        forecast = forecasts.get(Web3.to_checksum_address(market.address), {})
        rate = rates.get(Web3.to_checksum_address(market.address))
        table.add_row(market.name, percent_text(None if rate is None else rate_to_apy(rate)) or "",
                      percent_text(forecast["apy_pct"] / 100) if forecast else "",
                      percent_text(forecast["p_event"]) if forecast else "",
                      f"{position / decimals:,.2f}", f"{position / total:.1%}")
    table.add_row("total", "", "", "", f"{state.total / decimals:,.2f}", "")
    Console().print(table)

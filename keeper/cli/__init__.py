"""The `vaultbot` console script: one Typer app with a sub-command group per user.

Each group lives next to the code it drives and keeps heavy imports inside its
commands, so `vaultbot --help` stays fast.
"""

import typer

from keeper.cli.devnet import app as devnet_app

app = typer.Typer(
    name="vaultbot",
    help="Adaptive ERC-4626 vault: devnet, keeper, models, backtests and depositor tools.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(devnet_app, name="devnet")

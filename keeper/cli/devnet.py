"""`vaultbot devnet`: a local anvil chain with the vault deployed (placeholder until the devnet lands)."""

import typer

app = typer.Typer(help="Start and stop a local anvil chain with the vault deployed.", no_args_is_help=True)

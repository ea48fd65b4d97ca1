"""Running the `vaultbot` console script in-process, as the CLI tests do."""

from click.testing import Result
from typer.testing import CliRunner

from cli import app

_runner = CliRunner()


def vaultbot(*args: str, input: str | None = None) -> Result:
    """`vaultbot ARGS...` with its exit code and combined output."""
    return _runner.invoke(app, list(args), input=input)

"""What every `vaultbot` command group shares: the devnet JSON option and one-line error exits."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

if TYPE_CHECKING:
    import pandas as pd

JsonOption = Annotated[
    Path | None,
    typer.Option(
        "--json",
        help="Deployment JSON (a directory means <dir>/devnet.json); anvil.pid, anvil.log and abi/ go next to it. "
        "Default: $VAULTBOT_HOME/devnet.json, else .vaultbot/devnet.json.",
    ),
]


def deployment_path(json_path: Path | None) -> Path:
    """The devnet deployment JSON a command works on (see `JsonOption`)."""
    from vaultbot.paths import state_dir

    path = json_path if json_path is not None else state_dir() / "devnet.json"
    return path / "devnet.json" if path.is_dir() else path


def utc_day(flag: str, text: str) -> "pd.Timestamp":
    """A YYYY-MM-DD flag value as that day's midnight UTC; any other form is a usage error (01/02/2024 may be
    the 2nd of January or the 1st of February)."""
    from datetime import datetime

    import pandas as pd

    try:
        day = datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date (YYYY-MM-DD)", param_hint=flag) from None
    return pd.Timestamp(day, tz="UTC")


def no_files_beside_synthetic(news: Path | None, pools: Path | None) -> None:
    """--news and --pools describe a --data market: beside a generated one they would be dropped without a word."""
    if news is not None or pools is not None:
        raise typer.BadParameter("--news and --pools go with --data (the synthetic market has its own)")


def output_dir(flag: str, path: Path) -> Path:
    """`path` as a directory a command may create and write into, checked before any work: not an existing
    file, and not under one."""
    if path.exists() and not path.is_dir():
        raise typer.BadParameter(f"{path} is a file, not a directory", param_hint=flag)
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise typer.BadParameter(f"{path}: {parent} is a file, not a directory", param_hint=flag)
            break
    return path


def existing_deployment_only(path: Path) -> None:
    """Exit 1 when `path` exists but is not a devnet deployment JSON: --json names the file a command writes or
    deletes, and a wrong one must not cost the user another file."""
    from chain.deployment import Deployment

    if path.exists():
        with exit_on(FileNotFoundError, ValueError):
            Deployment.load(path)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `error: message` (URL credentials masked) to stderr and exit with `code` (1: bad data or state,
    2: bad usage)."""
    from rich.console import Console
    from rich.markup import escape

    from vaultbot.redact import redact

    Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {escape(redact(message))}", highlight=False)
    raise typer.Exit(code)


def as_flags(error: Exception) -> str:
    """The error's message with each option it names (`name`, see `vaultbot.options`) as this CLI's `--name`."""
    message = str(error)
    for option in getattr(error, "options", ()):
        message = message.replace(f"`{option}`", f"--{option.replace('_', '-')}")
    return message


@contextmanager
def exit_on(*errors: type[Exception]) -> Iterator[None]:
    """Turn the expected failures into a one-line message and exit code 1 instead of a traceback."""
    try:
        yield
    except errors as error:
        fail(as_flags(error))

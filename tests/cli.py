"""Running the `vaultbot` console script in-process, as the CLI tests do.

Click's runner holds an exception the command did not handle instead of printing its traceback, so a test
that reads only the output would pass on a crash: `vaultbot` fails the test on one instead.
"""

import traceback

import pytest
from click.testing import Result
from typer.testing import CliRunner

from cli import app

_runner = CliRunner()


def vaultbot(*args: str, input: str | None = None) -> Result:
    """`vaultbot ARGS...` with its exit code and combined output; the test fails if it raised (a traceback)."""
    result = _runner.invoke(app, list(args), input=input)
    raised = result.exception
    if raised is not None and not isinstance(raised, SystemExit):
        pytest.fail(f"vaultbot {' '.join(args)} raised:\n{''.join(traceback.format_exception(raised))}"
                    f"output:\n{result.output}")
    return result

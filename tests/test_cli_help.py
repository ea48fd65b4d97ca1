"""Every `vaultbot` command's --help renders, and shows config table names such as [backtest] (rich markup
would swallow an unescaped one)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer.main

from cli import app
from tests.cli import vaultbot

TABLE_NAME = re.compile(r"\\?\[([a-z_.]+)\]")


def command_paths(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every command under `command` (a group has `commands`), with the words that invoke it."""
    found = [(path, command)]
    for name, sub in getattr(command, "commands", {}).items():
        found += command_paths(sub, (*path, name))
    return found


COMMANDS = command_paths(typer.main.get_command(app))


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(path) or "vaultbot" for path, _ in COMMANDS])
def test_help_renders_with_its_table_names(path: tuple[str, ...], command: Any) -> None:
    result = vaultbot(*path, "--help")
    assert result.exit_code == 0, result.output
    texts = [command.help or ""] + [getattr(param, "help", None) or "" for param in command.params]
    for name in {match for text in texts for match in TABLE_NAME.findall(text)}:
        assert f"[{name}]" in result.output, f"[{name}] is lost from `vaultbot {' '.join(path)} --help`"

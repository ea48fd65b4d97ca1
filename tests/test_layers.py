"""The package layers of ARCHITECTURE.md (the import-linter contracts in pyproject.toml): kept on this tree, and
broken by a deliberately bad import in a copy of it, so the gate is known to bite."""

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def packages() -> list[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    return config["tool"]["importlinter"]["root_packages"]


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports on the packages under `root` (they come first on the path, before the editable install)."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--config", str(root / "pyproject.toml")], cwd=root,
                          env=env, capture_output=True, text=True, timeout=120)


def copy_of_the_tree(tmp_path: Path) -> Path:
    for package in packages():
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "static"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_tree_keeps_every_layer() -> None:
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(("module", "bad_import", "contract"), [
    ("strategy/bad.py", "import keeper.cycle", "layers"),  # the pure layer reaching up to the service
    ("backtest/bad.py", "import keeper.cycle", "layers"),  # the backtester importing the keeper
    ("keeper/bad.py", "import devnet.llama_server", "production code never imports the devnet"),
    ("depositor/bad.py", "import typer", "only the CLI speaks typer"),
    ("chain/bad.py", "import sources.http", "the chain client imports only strategy's types"),
])
def test_a_bad_import_breaks_its_contract(tmp_path: Path, module: str, bad_import: str, contract: str) -> None:
    root = copy_of_the_tree(tmp_path)
    (root / module).write_text(f"{bad_import}\n")
    result = lint_imports(root)
    assert result.returncode == 1
    broken = result.stdout[result.stdout.index("Broken contracts"):]
    assert contract in broken and module.removesuffix(".py").replace("/", ".") in broken

"""Packaging: the built wheel, installed in a fresh venv, runs a devnet and a keeper cycle outside the checkout."""

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from devnet.anvil import ANVIL_ENV, find_anvil, stop_background
from vaultbot.paths import CACHE_DIR_ENV, STATE_DIR_ENV

REPO = Path(__file__).resolve().parents[1]
# never copied into the build: setuptools would pack stale build/ output, the rest is large or not source
NOT_SOURCES = (".git", ".venv", "node_modules", "build", "*.egg-info", "__pycache__", ".*cache", ".hypothesis",
               ".vaultbot", "test-artifacts", "tests")
# where the installed project finds its code and data, printed as JSON by the venv's python
LOCATE = """
import json, chain, cli
from vaultbot import resources
print(json.dumps({"chain": chain.__file__, "cli": cli.__file__, "contracts": str(resources.contracts_dir()),
                  "static": str(resources.web_static_dir()), "example": str(resources.example_config()),
                  "deploy": str(resources.deploy_dir())}))
"""
SHIPPED = {"contracts": ["Vault.vy", "MockMarket.vy", "MockToken.vy"],
           "static": ["index.html", "app.js", "style.css", "charts.js", "vendor/uPlot.iife.min.js",
                      "vendor/uPlot.min.css", "vendor/LICENSE"],  # vendor/: inlined into backtest reports too
           "deploy": ["vaultbot-keeper.service", "prometheus-alerts.yml"]}


def test_every_package_of_the_checkout_is_listed() -> None:
    """`packages` is a list (see pyproject.toml), so a new package must be added to it by hand."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    listed = set(pyproject["tool"]["setuptools"]["packages"])
    found = {
        ".".join(init.parent.relative_to(REPO).parts)
        for root in pyproject["tool"]["importlinter"]["root_packages"]
        for init in (REPO / root).rglob("__init__.py")
    }
    assert found - listed == set()


def _run(*command: str | Path, cwd: Path, env: dict[str, str] | None = None,
         timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)  # _ok() reports a failure with the output


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{result.args} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def build_wheel(out: Path) -> Path:
    """The wheel of a copy of the checkout: the build writes build/ and *.egg-info next to its sources."""
    source = out / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*NOT_SOURCES))
    _ok(_run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", out, source, cwd=out))
    (wheel,) = out.glob("vaultbot-*.whl")
    return wheel


def install(wheel: Path, venv: Path) -> Path:
    """A fresh venv with the wheel and its dependencies; returns its bin directory."""
    _ok(_run(sys.executable, "-m", "venv", venv, cwd=venv.parent))
    bin_dir = venv / "bin"
    _ok(_run(bin_dir / "python", "-m", "pip", "install", "--quiet", "--no-compile", wheel, cwd=venv.parent,
             timeout=600))
    return bin_dir


def outside_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a user without the checkout: state and caches in tmp_path, anvil named explicitly."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV", ANVIL_ENV)}
    return env | {STATE_DIR_ENV: str(tmp_path / "home"), CACHE_DIR_ENV: str(tmp_path / "cache")}


def assert_installed_from(venv: Path, bin_dir: Path, cwd: Path, env: dict[str, str]) -> None:
    located = json.loads(_ok(_run(bin_dir / "python", "-c", LOCATE, cwd=cwd, env=env)))
    for name, path in located.items():
        assert Path(path).is_relative_to(venv), f"{name} comes from {path}, not from the wheel in {venv}"
        assert Path(path).exists(), f"the wheel lacks {name}: {path}"
    for name, files in SHIPPED.items():
        assert {file for file in files if (Path(located[name]) / file).is_file()} == set(files)


@pytest.mark.slow
@pytest.mark.anvil
def test_the_wheel_runs_a_devnet_keeper_cycle_outside_the_checkout(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    env = outside_env(tmp_path)
    try:
        bin_dir = install(build_wheel(tmp_path / "dist"), venv)
        assert_installed_from(venv, bin_dir, tmp_path, env)
        no_anvil = _run(bin_dir / "python", "-c", "from devnet.anvil import find_anvil; find_anvil()",
                        cwd=tmp_path, env=env)
        assert no_anvil.returncode != 0 and f"set {ANVIL_ENV}" in no_anvil.stderr

        env[ANVIL_ENV] = str(find_anvil())  # the checkout's pinned binary: the wheel carries no anvil
        _ok(_run(bin_dir / "vaultbot", "devnet", "up", cwd=tmp_path, env=env))
        cycle = _ok(_run(bin_dir / "vaultbot", "keeper", "once", cwd=tmp_path, env=env))
        assert re.search(r"^cycle \d+: (rebalanced|held|skipped)\b", cycle, re.MULTILINE), cycle
        assert "stopped anvil" in _ok(_run(bin_dir / "vaultbot", "devnet", "down", cwd=tmp_path, env=env))
    finally:
        stop_background(tmp_path / "home")  # no anvil outlives a failed step (nothing to do after `down`)
        shutil.rmtree(venv, ignore_errors=True)  # about 800 MB; pytest keeps the last runs' tmp_path

"""The files vaultbot ships beside its code, found with importlib.resources in a checkout and an installed wheel.

pyproject.toml's [tool.setuptools.package-data] puts them in the wheel; the top-level contracts/ directory is
installed as the package `vaultbot.contracts` ([tool.setuptools.package-dir]). The packages are named as
strings: this bottom layer only locates their data, it never uses their code.
"""

from importlib.resources import files
from pathlib import Path
from typing import NamedTuple


def _package_dir(package: str) -> Path:
    # pip installs packages as plain directories (never zipped), so this is a real path: vyper compiles from it
    return Path(str(files(package)))


def contracts_dir() -> Path:
    """The Vyper sources (contracts/*.vy of the checkout) that chain.artifacts compiles at runtime."""
    return _package_dir("vaultbot.contracts")


def web_static_dir() -> Path:
    """The depositor page's static files (depositor/web/static)."""
    return _package_dir("depositor.web") / "static"


class ChartLibrary(NamedTuple):
    script: Path
    stylesheet: Path
    licence: Path


def chart_library() -> ChartLibrary:
    """uPlot, vendored once among the page's static files (vendor/README.md: version, licence, source): the
    depositor page loads it, the backtest report inlines it."""
    vendor = web_static_dir() / "vendor"
    return ChartLibrary(vendor / "uPlot.iife.min.js", vendor / "uPlot.min.css", vendor / "LICENSE")


def chart_helpers() -> Path:
    """The page's and the report's one way to draw a chart with uPlot (depositor/web/static/charts.js)."""
    return web_static_dir() / "charts.js"


def example_config() -> Path:
    """The documented example keeper config (keeper/example-config.toml)."""
    return _package_dir("keeper") / "example-config.toml"


def deploy_dir() -> Path:
    """The keeper service's systemd unit and Prometheus alert rules (keeper/deploy)."""
    return _package_dir("keeper") / "deploy"

"""constraints.txt pins what `./run setup` installs: every version in it is the one installed, and every package
pyproject.toml asks for (the dev extra included) is pinned there, so that a dependency added without a pin
fails here instead of installing whatever the registry has that day."""

import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def pinned() -> dict[str, str]:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    pins = [line.split("==") for line in lines if line.strip() and not line.startswith("#")]
    return {canonicalize_name(name): exact for name, exact in pins}


def test_every_pinned_version_is_the_one_installed() -> None:
    installed = {}
    for name in pinned():
        try:
            installed[name] = version(name)
        except PackageNotFoundError:
            installed[name] = "not installed"
    assert installed == pinned()


def test_every_requirement_of_the_project_is_pinned() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(line) for line in [*project["dependencies"], *project["optional-dependencies"]["dev"]]]
    unpinned = [str(requirement) for requirement in wanted
                if (requirement.marker is None or requirement.marker.evaluate())
                and canonicalize_name(requirement.name) not in pinned()]
    assert unpinned == []

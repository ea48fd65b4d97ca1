"""Where the chain tooling finds the repo, keeps devnet state and caches compiled contracts."""

import os
from pathlib import Path

import platformdirs

STATE_DIR_ENV = "VAULTBOT_HOME"
CACHE_DIR_ENV = "VAULTBOT_CACHE"


def repo_root() -> Path:
    """The directory holding package.json (it pins anvil), searched upward from this file."""
    here = Path(__file__).resolve()
    for directory in here.parents:
        if (directory / "package.json").is_file():
            return directory
    raise FileNotFoundError(f"no package.json in any parent directory of {here}; is vaultbot installed from its repo?")


def state_dir() -> Path:
    """Devnet state (deployment JSON, ABIs, anvil pidfile and log): $VAULTBOT_HOME, else ./.vaultbot."""
    return Path(os.environ.get(STATE_DIR_ENV) or ".vaultbot")


def cache_dir() -> Path:
    """Compiled-contract cache: $VAULTBOT_CACHE, else the user's cache directory."""
    override = os.environ.get(CACHE_DIR_ENV)
    return Path(override) if override else Path(platformdirs.user_cache_dir("vaultbot"))

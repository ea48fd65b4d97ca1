"""Where the chain tooling keeps devnet state and caches compiled contracts."""

import os
from pathlib import Path

import platformdirs

STATE_DIR_ENV = "VAULTBOT_HOME"
CACHE_DIR_ENV = "VAULTBOT_CACHE"


def state_dir() -> Path:
    """Devnet state (deployment JSON, ABIs, anvil pidfile and log): $VAULTBOT_HOME, else ./.vaultbot."""
    return Path(os.environ.get(STATE_DIR_ENV) or ".vaultbot")


def cache_dir() -> Path:
    """Compiled-contract cache: $VAULTBOT_CACHE, else the user's cache directory."""
    override = os.environ.get(CACHE_DIR_ENV)
    return Path(override) if override else Path(platformdirs.user_cache_dir("vaultbot"))

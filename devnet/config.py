"""The configuration of the devnet: what `vaultbot keeper` and the demo use without a config file."""

import os
from pathlib import Path

from chain.deployment import Deployment
from config import Config, ConfigError, build_config
from journal.db import sqlite_url

# Key of anvil's default account 1 (mnemonic "test test ... junk"): the devnet deployment's keeper. Public.
ANVIL_KEEPER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
DEVNET_KEY_ENV = "VAULTBOT_DEVNET_KEEPER_KEY"


def devnet_journal(deployment_path: Path) -> Path:
    """The devnet keeper's SQLite journal, next to the deployment JSON: the keeper writes it and `keeper status`
    reads it (through `devnet_config`), and `vaultbot web` shows it, without being told where."""
    return deployment_path.parent / "keeper.sqlite"


def devnet_config(deployment_path: Path) -> Config:
    """The configuration `vaultbot keeper` uses without --config: the devnet of `deployment_path`.

    Everything lives next to the deployment JSON (journal keeper.sqlite, model/, decisions/); data come from the
    synthetic DeFiLlama (`devnet.llama_server`), the keeper signs with anvil's well-known account 1 key (read
    from $VAULTBOT_DEVNET_KEEPER_KEY, which defaults to it). Environment overrides apply as usual.
    """
    # The devnet signs with anvil's published account-1 key unless the variable says otherwise.
    os.environ.setdefault(DEVNET_KEY_ENV, ANVIL_KEEPER_KEY)
    try:
        deployment = Deployment.load(deployment_path)
    except (FileNotFoundError, ValueError) as error:
        raise ConfigError(f"no config file given and no usable devnet: {error}") from error
    home = deployment_path.parent
    table = {
        "chain": {"rpc_urls": [deployment.rpc_url], "chain_id": deployment.chain_id,
                  "deployment": str(deployment_path), "raw_key_env": DEVNET_KEY_ENV,
                  "receipt_timeout_s": 30.0},
        "sources": {"synthetic": {}, "http": {"cache_dir": str(home / "http-cache")}},
        "model": {"artifact_dir": str(home / "model"), "train_if_missing": True},
        "service": {"database_url": sqlite_url(devnet_journal(deployment_path)), "interval_s": 300.0,
                    "decisions_dir": str(home / "decisions")},
    }
    return build_config(table, origin=f"(devnet default from {deployment_path})")

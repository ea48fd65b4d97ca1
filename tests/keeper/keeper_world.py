"""Fixtures for keeper tests on a real anvil: a funded devnet vault, DeFiLlama answers on pytest-httpserver,
a model trained once per session on the same synthetic data, and a keeper config pointing at all of it.

Test modules import the fixtures they use from here (`from tests.keeper.keeper_world import ...`).
"""

import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pytest_httpserver import HTTPServer
from web3 import Web3

from chain.artifacts import CompiledContracts
from chain.deployment import Deployment
from config import Config, build_config
from devnet.anvil import AnvilProcess
from devnet.config import ANVIL_KEEPER_KEY
from devnet.deploy import USDC, deploy_devnet
from devnet.llama_server import NEWS_PATH, SyntheticLlama
from journal.db import KeeperDB
from keeper.cycle import Keeper
from keeper.startup import open_keeper
from strategy.config import ModelSettings
from strategy.data import align_to_daily
from strategy.data.defillama import parse_pools
from tests.cli import vaultbot
from tests.keeper.llama_payloads import base_url, serve_llama
from tests.keeper.tomlfile import toml_text

KEY_ENV = "VAULTBOT_TEST_KEEPER_KEY"
DEPOSIT = 100_000 * USDC


@pytest.fixture(scope="session")
def llama() -> SyntheticLlama:
    return SyntheticLlama.generate(seed=7, days=400, pools=4)


@pytest.fixture(scope="session")
def artifact_dir(llama: SyntheticLlama, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model trained on the served history, as `model.train_if_missing` would at start (once per session)."""
    from strategy.models import train_artifact

    now = datetime.now(UTC)
    pools_meta = parse_pools(llama.pools_payload(now))
    artifact = train_artifact(align_to_daily(llama.history(now)), llama.news(now), pools_meta,
                              train_end=pd.Timestamp(now).floor("D"), settings=ModelSettings())
    directory = tmp_path_factory.mktemp("model")
    artifact.save(directory)
    return directory


@pytest.fixture
def funded(w3: Web3, devnet: Deployment, chain_snapshot: None) -> Deployment:
    """The devnet with DEPOSIT from each depositor in the vault, all idle; reverted after the test."""
    vault = devnet.contract(w3, "Vault", devnet.vault)
    token = devnet.contract(w3, "MockToken", devnet.asset)
    for depositor in devnet.depositors:
        transact(w3, token.functions.approve(devnet.vault, DEPOSIT), depositor)
        transact(w3, vault.functions.deposit(DEPOSIT, depositor), depositor)
    return devnet


def transact(w3: Web3, call: Any, sender: str) -> dict:
    receipt = w3.eth.wait_for_transaction_receipt(call.transact({"from": sender}))
    assert receipt["status"] == 1, f"{call.fn_name} from {sender} reverted"
    return receipt


@pytest.fixture
def keeper_table(funded: Deployment, llama: SyntheticLlama, httpserver: HTTPServer, artifact_dir: Path,
                 tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A keeper config (as a TOML table) for the funded devnet and the served synthetic DeFiLlama."""
    monkeypatch.setenv(KEY_ENV, ANVIL_KEEPER_KEY)
    deployment_path = tmp_path / "devnet.json"
    funded.save(deployment_path)
    serve_llama(httpserver, llama)
    url = base_url(httpserver)
    return {
        "chain": {"rpc_urls": [funded.rpc_url], "chain_id": funded.chain_id, "deployment": str(deployment_path),
                  "raw_key_env": KEY_ENV, "receipt_timeout_s": 20.0},
        "sources": {"yields_base_url": url, "coins_base_url": url, "news_feeds": [url + NEWS_PATH],
                    "http": {"cache_dir": str(tmp_path / "http"), "retries": 1, "backoff_factor": 0.0,
                             "read_timeout": 3.0, "retry_after_max": 0}},
        "markets": {pool: market.address for pool, market in zip(llama.pool_ids, funded.markets, strict=True)},
        "model": {"artifact_dir": str(artifact_dir)},
        "service": {"database_url": f"sqlite:///{tmp_path / 'keeper.sqlite'}", "metrics_port": 0,
                    "decisions_dir": str(tmp_path / "decisions")},
    }


def config_of(table: Mapping[str, Any]) -> Config:
    return build_config(dict(table), origin="(test)")


@pytest.fixture
def keeper_config(keeper_table: dict[str, Any]) -> Config:
    return config_of(keeper_table)


@pytest.fixture
def keeper(keeper_config: Config) -> Iterator[Keeper]:
    with open_keeper(keeper_config) as opened:
        yield opened


def as_a(kind: type[Keeper], keeper: Keeper) -> Keeper:
    """The same keeper (journal, sources, chain, model) as an instance of a test subclass."""
    return kind(keeper.config, keeper.db, keeper.sources, keeper.chain, keeper.models, keeper.markets, keeper.news,
                metrics=keeper.metrics, clock=keeper.clock)


def journal(config: Config) -> KeeperDB:
    return KeeperDB(config.service.database_url)


def rebalanced_hashes(w3: Web3, deployment: Deployment) -> list[str]:
    """Decision hashes of every Rebalanced the vault emitted since its deployment."""
    vault = deployment.contract(w3, "Vault", deployment.vault)
    events = vault.events.Rebalanced().get_logs(from_block=deployment.deployed_at)
    return ["0x" + bytes(event["args"]["decision_hash"]).hex() for event in events]



def config_file(table: Mapping[str, Any], directory: Path) -> Path:
    """`table` written as `directory`/keeper.toml, for the CLI's --config."""
    path = directory / "keeper.toml"
    path.write_text(toml_text(dict(table)))
    return path


def once_rebalancing(w3: Web3, deployment: Deployment, config: Path) -> tuple[str, str]:
    """`vaultbot keeper once --config CONFIG`, which must rebalance: its (tx hash, decision hash), the
    decision checked against the vault's Rebalanced event."""
    once = vaultbot("keeper", "once", "--config", str(config))
    assert once.exit_code == 0, once.output
    assert re.search(r"cycle \d+: rebalanced", once.output), once.output
    tx_hash = re.search(r"transaction (0x[0-9a-f]{64})", once.output).group(1)
    decision_hash = re.search(r"decision (0x[0-9a-f]{64})", once.output).group(1)
    assert rebalanced_hashes(w3, deployment)[-1] == decision_hash
    return tx_hash, decision_hash


def own_devnet(compiled: CompiledContracts, directory: Path) -> tuple[AnvilProcess, Deployment]:
    """A fresh anvil with the devnet deployed (the same deterministic addresses every time) and funded."""
    node = AnvilProcess(log_path=directory / "anvil.log").start()
    try:
        own = Web3(Web3.HTTPProvider(node.rpc_url))
        deployment = deploy_devnet(own, compiled, directory / "abi")
        vault = deployment.contract(own, "Vault", deployment.vault)
        token = deployment.contract(own, "MockToken", deployment.asset)
        for depositor in deployment.depositors:
            transact(own, token.functions.approve(deployment.vault, DEPOSIT), depositor)
            transact(own, vault.functions.deposit(DEPOSIT, depositor), depositor)
    except BaseException:
        node.stop()
        raise
    return node, deployment

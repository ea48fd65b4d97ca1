"""Fixtures shared by every test package."""

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, settings

if TYPE_CHECKING:
    from web3 import Web3

    from chain.artifacts import CompiledContracts
    from chain.deployment import Deployment
    from devnet.anvil import AnvilProcess

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"  # the team's real data, read-only: tests/shared_data.py

# CI gets more examples than a developer's quick run, never a deadline (timings vary on shared machines).
settings.register_profile("dev", max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """The root logger's handlers and level back as they were after each test: a command run in-process (the
    keeper's, the page's) configures logging, and a later test's command output would carry its records."""
    import logging

    handlers, level = logging.root.handlers[:], logging.root.level
    yield
    logging.root.handlers[:], logging.root.level = handlers, level


# ---- chain fixtures: one real anvil on 127.0.0.1 per test session (tests using them: @pytest.mark.anvil)


@pytest.fixture(scope="session")
def anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator["AnvilProcess"]:
    """A running anvil (chain id 31337, 10 unlocked accounts), stopped at the end of the session."""
    from devnet.anvil import AnvilProcess

    with AnvilProcess(log_path=tmp_path_factory.mktemp("anvil") / "anvil.log") as node:
        yield node


@pytest.fixture(scope="session")
def w3(anvil: "AnvilProcess") -> "Web3":
    """web3.py connected to the session's anvil."""
    from web3 import Web3

    return Web3(Web3.HTTPProvider(anvil.rpc_url))


@pytest.fixture(scope="session")
def compiled_contracts() -> "CompiledContracts":
    """contracts/*.vy compiled (through the on-disk cache, $VAULTBOT_CACHE or the user's cache dir)."""
    from chain.artifacts import compile_contracts

    return compile_contracts()


@pytest.fixture(scope="session")
def devnet(w3: "Web3", compiled_contracts: "CompiledContracts",
           tmp_path_factory: pytest.TempPathFactory) -> "Deployment":
    """The devnet (mock USDC, 4 markets, the vault with default guardrails) deployed once on the session's anvil.

    Tests that change chain state should use `chain_snapshot` so the next test sees the fresh deployment.
    """
    from devnet.deploy import deploy_devnet

    return deploy_devnet(w3, compiled_contracts, tmp_path_factory.mktemp("devnet") / "abi")


@pytest.fixture
def chain_snapshot(w3: "Web3", devnet: "Deployment") -> Iterator[None]:
    """Reverts the session's anvil to its state before the test (balances, contracts, block number, time).

    It requests `devnet` so the session's deployment always predates the snapshot and survives the revert.
    """
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
    yield
    assert w3.provider.make_request("evm_revert", [snapshot])["result"] is True, "evm_revert failed"
    # evm_revert keeps the pool: a transaction a test left pending (a stuck or replaced version) would be valid
    # again on the reverted chain and mined into the next test's first block
    w3.provider.make_request("anvil_dropAllTransactions", [])

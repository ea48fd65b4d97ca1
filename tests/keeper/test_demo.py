"""`vaultbot demo`, the README's main job: devnet up, deposits, keeper cycles that rebalance on chain."""

import re
from pathlib import Path

import pytest
from web3 import Web3

from chain.deployment import Deployment
from chain.vault_reader import VaultReader
from tests.cli import vaultbot

pytestmark = [pytest.mark.anvil, pytest.mark.slow]
@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("VAULTBOT_HOME", str(tmp_path))
    yield tmp_path
    assert vaultbot("devnet", "down").exit_code == 0  # never leave anvil behind


def test_demo_deploys_deposits_and_rebalances_verifiably(home: Path) -> None:
    result = vaultbot("demo", "--cycles", "2", "--chain-hours", "2")
    assert result.exit_code == 0, result.output
    assert len(re.findall(r"deposited 25,000.00 USDC", result.output)) == 3
    assert "cycle 1: rebalanced" in result.output

    deployment = Deployment.load(home / "devnet.json")
    reader = VaultReader(Web3(Web3.HTTPProvider(deployment.rpc_url)), deployment.vault, deployment)
    events = reader.rebalance_events()
    assert events, "the demo's keeper put no Rebalanced event on chain"
    state = reader.state()
    assert state.idle < state.total  # money went into the markets
    for event in events:
        verified = vaultbot("keeper", "verify", event.tx_hash)
        assert verified.exit_code == 0, verified.output

    again = vaultbot("demo", "--cycles", "1")
    assert again.exit_code == 0, again.output
    assert "using the devnet already running" in again.output
    assert "deposited" not in again.output  # the depositors already hold shares


def test_demo_rejects_a_bad_deposit_amount(home: Path) -> None:
    result = vaultbot("demo", "--cycles", "1", "--deposit", "lots")
    assert result.exit_code == 1
    assert "--deposit" in result.output

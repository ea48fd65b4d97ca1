"""Depositor fixtures: the session devnet saved as a deployment JSON, the vault as a depositor sees it,
the web page served in-process, and helpers that move the chain into the states the vault refuses."""

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.keeper.keeper_world import transact

if TYPE_CHECKING:
    from web3 import Web3
    from web3.contract import Contract

    from chain.deployment import Deployment
    from depositor.vault import DepositorVault

USDC = 10**6
SHARE = 10**18  # the devnet vault has 6 + 12 decimals


@pytest.fixture(scope="session")
def devnet_json(devnet: "Deployment", tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session devnet as `vaultbot devnet up` would have saved it."""
    path = tmp_path_factory.mktemp("devnet-json") / "devnet.json"
    devnet.save(path)
    return path


@pytest.fixture(scope="session")
def depositor_vault(devnet_json: Path) -> "DepositorVault":
    from depositor.vault import open_vault

    return open_vault(None, None, devnet_json)


@pytest.fixture(scope="module")
def web_url(depositor_vault: "DepositorVault") -> Iterator[str]:
    """The page served in-process on a free port, without keeper data."""
    from chain.errors import RpcUnavailable
    from depositor.keeper_health import KeeperSources
    from depositor.views import VaultViews
    from depositor.web.server import serve

    server = serve(VaultViews(depositor_vault, KeeperSources()), "127.0.0.1", 0, unavailable=(RpcUnavailable,))
    yield server.url
    server.stop()


def vault_contract(w3: "Web3", devnet: "Deployment") -> "Contract":
    return devnet.contract(w3, "Vault", devnet.vault)


def token(w3: "Web3", devnet: "Deployment") -> "Contract":
    return devnet.contract(w3, "MockToken", devnet.asset)


def deposit_directly(w3: "Web3", devnet: "Deployment", account: str, assets: int) -> None:
    """A deposit set up without the code under test (approve + deposit from the unlocked account), mined before
    it returns (anvil may answer a send before the block that holds it is mined)."""
    transact(w3, token(w3, devnet).functions.approve(devnet.vault, assets), account)
    transact(w3, vault_contract(w3, devnet).functions.deposit(assets, account), account)


def position_leaving_dust(w3: "Web3", devnet: "Deployment") -> tuple[str, int, int]:
    """The first depositor's 2,000 USDC position at a share price that is not round, so that withdrawing its worth
    would leave share dust: (account, its shares, their worth)."""
    account, other = devnet.depositors[0], devnet.depositors[1]
    vault = vault_contract(w3, devnet)
    deposit_directly(w3, devnet, account, 2_000 * USDC)
    deposit_directly(w3, devnet, other, 1_000 * USDC)
    transact(w3, token(w3, devnet).functions.transfer(devnet.vault, 333_333), other)
    shares = vault.functions.balanceOf(account).call()
    worth = vault.functions.previewRedeem(shares).call()
    assert vault.functions.previewWithdraw(worth).call() < shares, "withdrawing the worth would leave dust"
    return account, shares, worth


def lock_in_markets(w3: "Web3", devnet: "Deployment", first: int, second: int) -> None:
    """The keeper moves assets into the first two markets, which then pay nothing out (liquidity 0)."""
    vault = vault_contract(w3, devnet)
    markets = [m.address for m in devnet.markets[:2]]
    transact(w3, vault.functions.rebalance([(markets[0], first), (markets[1], second)], b"\x01" * 32), devnet.keeper)
    for market in markets:
        transact(w3, devnet.contract(w3, "MockMarket", market).functions.set_liquidity(0), devnet.admin)


def propose_directly(w3: "Web3", devnet: "Deployment", target: int) -> str:
    """The keeper proposes moving `target` into the first market beyond the daily budgets; the proposal's id."""
    vault = vault_contract(w3, devnet)
    allocations, decision_hash = [(devnet.markets[0].address, target)], b"\x02" * 32
    transact(w3, vault.functions.propose_rebalance(allocations, decision_hash), devnet.keeper)
    return "0x" + bytes(vault.functions.proposal_id(allocations, decision_hash).call()).hex()

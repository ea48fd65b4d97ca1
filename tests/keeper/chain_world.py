"""Helpers for the chain tests on the session devnet: a fresh locally-signing account made the vault's
keeper, and a vault holding deposits."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract

from chain.deployment import Deployment
from devnet.deploy import USDC

DEPOSIT = 10_000 * USDC


@dataclass(frozen=True)
class Devnet:
    w3: Web3
    deployment: Deployment
    vault: Contract
    token: Contract

    def transact(self, call, sender: str) -> dict:
        receipt = self.w3.eth.wait_for_transaction_receipt(call.transact({"from": sender}))
        assert receipt["status"] == 1, f"{call.fn_name} from {sender} reverted"
        return receipt

    def rpc(self, method: str, *params: object) -> object:
        reply = self.w3.provider.make_request(method, list(params))
        assert "error" not in reply, reply
        return reply["result"]


@pytest.fixture
def net(w3: Web3, devnet: Deployment, chain_snapshot: None) -> Devnet:
    """The session devnet, reverted after the test."""
    return Devnet(w3, devnet, devnet.contract(w3, "Vault", devnet.vault),
                  devnet.contract(w3, "MockToken", devnet.asset))


@pytest.fixture
def keeper_account(net: Devnet) -> LocalAccount:
    """A fresh account with gas money, made the vault's keeper (it signs locally, unlike anvil's accounts)."""
    account = Account.create()
    net.w3.eth.send_transaction({"from": net.deployment.admin, "to": account.address, "value": 10**19})
    net.transact(net.vault.functions.set_keeper(account.address), net.deployment.admin)
    return account


def fund_vault(net: Devnet) -> None:
    """DEPOSIT from each depositor into the vault (idle until a rebalance)."""
    for depositor in net.deployment.depositors:
        net.transact(net.token.functions.approve(net.deployment.vault, DEPOSIT), depositor)
        net.transact(net.vault.functions.deposit(DEPOSIT, depositor), depositor)


def first_markets(net: Devnet, amounts: list[int]) -> list[tuple[str, int]]:
    """Allocations moving the first markets to `amounts`."""
    return [(m.address, amount) for m, amount in zip(net.deployment.markets, amounts, strict=False)]


@contextmanager
def manual_mining(w3: Web3) -> Iterator[None]:
    """Automine off: sent transactions wait in the pool until the test mines a block (evm_mine)."""
    w3.provider.make_request("evm_setAutomine", [False])
    try:
        yield
    finally:
        w3.provider.make_request("evm_setAutomine", [True])

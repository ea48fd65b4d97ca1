"""Fixtures for the Vyper contract tests.

One configured world (token, three markets, vault, roles) is deployed per session;
every test runs inside a `boa.env.anchor()`, so its state changes and time travel
are undone afterwards. Hypothesis tests open their own anchor per example.
"""

import boa
import pytest
from boa.contracts.vyper.vyper_contract import VyperContract

from tests.contracts.world import USDC, Accounts, World, deploy_world, rebalance


@pytest.fixture(scope="session")
def world() -> World:
    return deploy_world()


@pytest.fixture(autouse=True)
def _isolated(world: World):
    with boa.env.anchor():
        yield


@pytest.fixture
def accounts(world: World) -> Accounts:
    return world.accounts


@pytest.fixture
def token(world: World) -> VyperContract:
    return world.token


@pytest.fixture
def markets(world: World) -> list[VyperContract]:
    return world.markets


@pytest.fixture
def vault(world: World) -> VyperContract:
    return world.vault


@pytest.fixture
def invested(world: World) -> World:
    """Alice has deposited 1M; 300k sit in market 0 and 200k in market 1, 500k idle."""
    with boa.env.prank(world.accounts.alice):
        world.vault.deposit(1_000_000 * USDC, world.accounts.alice)
    rebalance(world, {world.markets[0]: 300_000 * USDC, world.markets[1]: 200_000 * USDC})
    boa.env.time_travel(seconds=world.vault.min_rebalance_interval())
    return world

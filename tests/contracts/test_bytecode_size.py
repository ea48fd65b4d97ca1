"""Every contract fits mainnet's code size limits: EIP-170 (runtime code) and EIP-3860 (init code)."""

import boa
import pytest

from tests.contracts.world import CONTRACTS, deployer

EIP170_RUNTIME_LIMIT = 24_576
EIP3860_INITCODE_LIMIT = 2 * EIP170_RUNTIME_LIMIT


@pytest.fixture
def deployed(world):
    return {"Vault": world.vault, "MockMarket": world.markets[0], "MockToken": world.token}


def test_every_contract_is_checked(deployed):
    assert sorted(path.stem for path in CONTRACTS.glob("*.vy")) == sorted(deployed)


@pytest.mark.parametrize("name", ["Vault", "MockMarket", "MockToken"])
def test_deployed_runtime_code_is_under_the_eip170_limit(deployed, name):
    code = boa.env.get_code(deployed[name].address)
    assert 0 < len(code) <= EIP170_RUNTIME_LIMIT, f"{name} runtime code is {len(code)} bytes"


@pytest.mark.parametrize("name", ["Vault", "MockMarket", "MockToken"])
def test_init_code_is_under_the_eip3860_limit(name):
    # constructor arguments add at most a few hundred bytes (two short strings and some words)
    initcode = deployer(name).compiler_data.bytecode
    assert len(initcode) + 512 <= EIP3860_INITCODE_LIMIT, f"{name} init code is {len(initcode)} bytes"

"""chain.errors: revert reasons decoded from raw data, from web3's errors, and from a real vault revert."""

import pytest
from eth_abi import encode
from web3.exceptions import ContractCustomError, ContractLogicError, ContractPanicError

from chain.errors import (
    ERROR_SELECTOR,
    PANIC_SELECTOR,
    ContractRevert,
    RpcUnavailable,
    decode_revert,
)
from tests.keeper.chain_world import Devnet, net

ERROR_DATA = ERROR_SELECTOR + encode(["string"], ["vault: cooldown"])
PANIC_DATA = PANIC_SELECTOR + encode(["uint256"], [0x11])


@pytest.mark.parametrize(("data", "reason"), [
    (ERROR_DATA, "vault: cooldown"),
    ("0x" + ERROR_DATA.hex(), "vault: cooldown"),
    (PANIC_DATA, "panic 0x11: arithmetic overflow or underflow"),
    (PANIC_SELECTOR + encode(["uint256"], [0x99]), "panic 0x99: unknown panic code"),
    (bytes.fromhex("deadbeef") + bytes(32), "custom error 0xdeadbeef" + "00" * 32),
    (ERROR_SELECTOR + b"\x01", "custom error 0x08c379a001"),  # malformed Error(string): shown as bytes
    (b"", None),
    ("0x", None),
    (None, None),
])
def test_raw_revert_data(data, reason):
    assert decode_revert(data) == reason


def test_web3_errors_are_decoded_from_their_data_or_message():
    assert decode_revert(ContractLogicError("execution reverted: vault: paused", data="0x" + ERROR_DATA.hex())) \
        == "vault: cooldown"  # the data wins over the message
    assert decode_revert(ContractPanicError("Panic error 0x11", data="0x" + PANIC_DATA.hex())).startswith("panic 0x11")
    assert decode_revert(ContractCustomError("0xdeadbeef", data="0xdeadbeef")) == "custom error 0xdeadbeef"
    assert decode_revert(ContractLogicError("execution reverted: vault: paused")) == "vault: paused"
    assert decode_revert(ContractLogicError("execution reverted")) is None


def test_not_hex_is_a_clear_error():
    with pytest.raises(ValueError, match="revert data must be bytes or 0x-hex, got 'oops'"):
        decode_revert("oops")


def test_contract_revert_and_rpc_unavailable_messages():
    assert str(ContractRevert("vault: paused")) == "vault: paused"
    assert str(ContractRevert(None)) == "reverted without a reason"
    assert str(ContractRevert("vault: paused", tx_hash="0xab")) == "transaction 0xab reverted: vault: paused"
    down = RpcUnavailable("no RPC answered eth_chainId: tried http://a", ["http://a"])
    assert isinstance(down, ConnectionError) and down.urls == ["http://a"]


@pytest.mark.anvil
def test_a_real_vault_revert_decodes_to_its_reason(net: Devnet):
    """A rebalance from someone who is not the keeper, as anvil reports it through web3."""
    market = net.deployment.markets[0].address
    call = net.vault.functions.rebalance([(market, 0)], b"\x00" * 32)
    with pytest.raises(ContractLogicError) as raised:
        call.call({"from": net.deployment.admin})
    assert decode_revert(raised.value) == "vault: not keeper"
    assert ContractRevert.of(raised.value).reason == "vault: not keeper"
    assert ContractRevert.of(raised.value).data.startswith(ERROR_SELECTOR)

"""chain.vault_reader.AbiCodec: calldata as web3 spells it, whether encoded afresh or kept from an earlier call."""

from web3 import Web3

from chain.vault_reader import AbiCodec

ABI = [
    {"type": "function", "name": "balanceOf", "stateMutability": "view",
     "inputs": [{"name": "owner", "type": "address"}], "outputs": [{"name": "", "type": "uint256"}]},
    {"type": "function", "name": "rebalance", "stateMutability": "nonpayable",
     "inputs": [{"name": "markets", "type": "address[]"}, {"name": "targets", "type": "uint256[]"}], "outputs": []},
]
OWNER = Web3.to_checksum_address("0x" + "ab" * 20)
OTHER = Web3.to_checksum_address("0x" + "cd" * 20)


def reference(function: str, *args) -> str:
    return Web3().eth.contract(abi=ABI).encode_abi(function, list(args))


def test_repeated_calls_give_web3s_calldata_and_differ_with_their_arguments():
    codec = AbiCodec(ABI)
    first, again, other = (codec.encode("balanceOf", owner) for owner in (OWNER, OWNER, OTHER))
    assert first == again == reference("balanceOf", OWNER)
    assert other == reference("balanceOf", OTHER) != first


def test_list_arguments_are_encoded_each_time():
    codec = AbiCodec(ABI)
    markets, targets = [OWNER, OTHER], [5, 7]
    assert codec.encode("rebalance", markets, targets) == reference("rebalance", markets, targets)
    targets[1] = 8
    assert codec.encode("rebalance", markets, targets) == reference("rebalance", markets, [5, 8])

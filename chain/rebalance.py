"""The one rebalance call: `Vault.rebalance(allocations, decision_hash)` as the keeper and the backtester's
chain mode simulate and send it."""

from collections.abc import Sequence

from web3.contract import Contract
from web3.contract.contract import ContractFunction


def rebalance_call(vault: Contract, allocations: Sequence[tuple[str, int]], decision_hash: str) -> ContractFunction:
    """`Vault.rebalance(allocations, decision_hash)` as the keeper simulates and sends it (also the backtester's
    chain mode); `decision_hash` is 0x-hex."""
    return vault.functions.rebalance(list(allocations), bytes.fromhex(decision_hash[2:]))

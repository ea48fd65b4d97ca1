"""The one rebalance step on the chain side: encode `Vault.rebalance(allocations, decision_hash)`, simulate it
with eth_call, then (unless only simulating) send it through `TxSender` with the journaling hook. The keeper's
cycle and the backtester's chain mode both call `simulate_then_send`."""

from collections.abc import Callable, Sequence

from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

from chain.tx import OnSigned, TxSender


def rebalance_call(vault: Contract, allocations: Sequence[tuple[str, int]], decision_hash: str) -> ContractFunction:
    """`Vault.rebalance(allocations, decision_hash)`; `decision_hash` is 0x-hex."""
    return vault.functions.rebalance(list(allocations), bytes.fromhex(decision_hash[2:]))


def simulate_then_send(sender: TxSender, vault: Contract, allocations: Sequence[tuple[str, int]],
                       decision_hash: str, *, send: bool = True, on_signed: OnSigned | None = None,
                       before_send: Callable[[], None] | None = None) -> TxReceipt | None:
    """Simulate the rebalance (a revert raises `ContractRevert` with the vault's reason and nothing is sent);
    with `send`, call `before_send` (chain mode pins the block time there) and send it, `on_signed` seeing the
    signed transaction before broadcast. The receipt, or None when only simulated."""
    call = rebalance_call(vault, allocations, decision_hash)
    sender.simulate(call)
    if not send:
        return None
    if before_send is not None:
        before_send()
    return sender.send(call, on_signed=on_signed)

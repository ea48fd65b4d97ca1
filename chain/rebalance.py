"""The one rebalance step on the chain side: encode `Vault.rebalance(allocations, decision_hash)`, simulate it
with eth_call, then (unless only simulating) send it through `TxSender` with the journaling hook. The keeper's
cycle and the backtester's chain mode both call `simulate_then_send`.

The keeper's other two vault calls are encoded here too: `propose_rebalance` (the same move, offered to the
guardian when it is over the daily budgets) and `report` (the markets valued anew between rebalances).
"""

from collections.abc import Callable, Sequence

from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

from chain.tx import OnSigned, PendingTx, TxSender

# The vault functions the keeper calls, as a journaled transaction names them (`called_function`).
PROPOSE, REPORT = "propose_rebalance", "report"


def rebalance_call(vault: Contract, allocations: Sequence[tuple[str, int]], decision_hash: str) -> ContractFunction:
    """`Vault.rebalance(allocations, decision_hash)`; `decision_hash` is 0x-hex."""
    return vault.functions.rebalance(list(allocations), bytes.fromhex(decision_hash[2:]))


def propose_call(vault: Contract, allocations: Sequence[tuple[str, int]], decision_hash: str) -> ContractFunction:
    """`Vault.propose_rebalance(allocations, decision_hash)`: the move the guardian may approve by its id."""
    return vault.functions.propose_rebalance(list(allocations), bytes.fromhex(decision_hash[2:]))


def report_call(vault: Contract) -> ContractFunction:
    """`Vault.report()`: every listed market valued anew, so totalAssets and the share price follow them."""
    return vault.functions.report()


def called_function(vault: Contract, pending: PendingTx) -> str:
    """The name of the vault function a signed transaction calls, or "cancel" for one without calldata (what
    `chain.tx.TxSender.resume` sends on a stale transaction's nonce)."""
    if not pending.data:
        return "cancel"
    function, _ = vault.decode_function_input(pending.data)
    return function.fn_name


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

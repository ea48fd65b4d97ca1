"""A contract's own events in a transaction receipt."""

from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD
from web3.types import EventData, TxReceipt


def emitted(contract: Contract, event: str, receipt: TxReceipt) -> list[EventData]:
    """The `event` logs in `receipt` that `contract` itself emitted. web3's `process_receipt` decodes every log
    whose topics match, whoever emitted it: a market's ERC-4626 Withdraw reads exactly like the vault's."""
    address = Web3.to_checksum_address(contract.address)
    decoded = getattr(contract.events, event)().process_receipt(receipt, errors=DISCARD)
    return [log for log in decoded if Web3.to_checksum_address(log["address"]) == address]

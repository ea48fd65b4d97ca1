"""Who sends a depositor's transactions: an account the node holds unlocked (anvil's), or a keystore.

An account spec `3` or `0xabc...` names an account the node signs for (eth_sendTransaction: anvil's
unlocked accounts); `path/to/keystore.json` signs locally with `chain.keys.load_account`
and sends through `chain.tx.TxSender` (EIP-1559 fees with a cap, replacement of stuck transactions).
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError, TimeExhausted
from web3.types import TxReceipt

from chain.errors import ContractRevert, decode_revert
from chain.keys import keystore_json
from chain.tx import TxError, TxSender
from depositor.errors import BadInput, DepositorError, Refusal
from depositor.refusals import explain_reason

RECEIPT_TIMEOUT_S = 180.0


class Sender(Protocol):
    @property
    def address(self) -> str: ...

    def send(self, call: ContractFunction) -> TxReceipt:
        """Send `call` from `address`, wait for its receipt; a revert raises Refusal."""
        ...


@dataclass(frozen=True)
class UnlockedSender:
    """The node signs (eth_sendTransaction): anvil's unlocked accounts."""

    w3: Web3
    address: str

    def send(self, call: ContractFunction) -> TxReceipt:
        try:
            tx_hash = call.transact({"from": self.address})
        except ContractLogicError as error:  # web3 estimates gas first: a revert shows up here
            raise Refusal(explain_reason(decode_revert(error))) from error
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT_S)
        if receipt["status"] != 1:
            raise Refusal(f"transaction {tx_hash.to_0x_hex()} reverted in block {receipt['blockNumber']}")
        return receipt


@dataclass(frozen=True)
class KeystoreSender:
    """Signs locally and sends through TxSender."""

    tx_sender: TxSender
    address: str

    def send(self, call: ContractFunction) -> TxReceipt:
        signed: list[str] = []
        try:
            receipt = self.tx_sender.send(call, on_signed=lambda pending: signed.append(pending.tx_hash.to_0x_hex()))
        except ContractRevert as error:
            raise Refusal(explain_reason(error.reason)) from error
        except TxError as error:
            raise DepositorError(f"not sent: {error}") from error
        except TimeExhausted as error:
            # It may still be mined: say which transaction, so the user checks before trying again.
            raise DepositorError(f"no receipt for {signed[-1] if signed else 'the transaction'} in time ({error}); "
                                 "it may still be mined: check `vaultbot vault balance` before trying again") from error
        if receipt["status"] != 1:
            raise Refusal(f"transaction {receipt['transactionHash'].to_0x_hex()} reverted "
                          f"in block {receipt['blockNumber']}")
        return receipt


def resolve_address(w3: Web3, spec: str) -> str:
    """An anvil index ('3') or an address; a keystore file's address is read from its JSON."""
    text = spec.strip()
    if _is_index(text):
        accounts = w3.eth.accounts
        index = int(text)
        if index >= len(accounts):
            raise BadInput(f"`account` {spec}: the node has {len(accounts)} unlocked accounts "
                           f"(0..{len(accounts) - 1})", "account")
        return Web3.to_checksum_address(accounts[index])
    if Web3.is_address(text):
        return Web3.to_checksum_address(text)
    path = Path(text)
    if path.is_file():
        return _keystore_address(path)
    raise _not_an_account(spec)


def _keystore_address(path: Path) -> str:
    """The address a keystore file names (its plain `address` field), without asking for the password."""
    try:
        address = keystore_json(path)["address"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise BadInput(f"`account` {path}: not a readable keystore JSON with an 'address' ({error!r})",
                       "account") from None
    if not isinstance(address, str) or not Web3.is_address(address):
        raise BadInput(f"`account` {path}: the keystore's address {address!r} is not an address", "account")
    return Web3.to_checksum_address(address)


def open_sender(w3: Web3, spec: str, *, password_file: Path | None, password_env: str | None) -> Sender:
    """A Sender for --account: unlocked on the node (index or address), or a keystore file."""
    text = spec.strip()
    if _is_index(text) or Web3.is_address(text):
        address = resolve_address(w3, text)
        unlocked = {Web3.to_checksum_address(a) for a in w3.eth.accounts}
        if address not in unlocked:
            raise BadInput(f"`account` {spec}: the node does not hold {address} unlocked; "
                           f"pass a keystore file as `account` to sign locally", "account")
        return UnlockedSender(w3, address)
    path = Path(text)
    if not path.is_file():
        raise _not_an_account(spec)
    from chain.keys import KeyLoadError, load_account

    try:
        account = load_account(path, password_env=password_env, password_file=password_file)
    except KeyLoadError as error:
        raise BadInput(f"`account` {spec}: {error}", "account") from error
    # the chain connected to now: every later signing is for it, and refused if the RPC starts serving another
    return KeystoreSender(TxSender(w3, account, chain_id=w3.eth.chain_id), account.address)


def _is_index(text: str) -> bool:
    """Whether `text` is an account index: ASCII digits ('³' and '٣' are digits to str.isdigit, and to int() the
    second is 3)."""
    return text.isascii() and text.isdigit()


def _not_an_account(spec: str) -> BadInput:
    return BadInput(f"`account` {spec!r}: not an anvil account index, an address (0x + 40 hex) or a keystore file",
                    "account")

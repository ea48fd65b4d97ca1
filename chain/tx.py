"""Sends contract calls as locally signed EIP-1559 transactions under a fee cap, crash-safe and unstuck.

Crash safety: every signed transaction is handed to `on_signed` (a `PendingTx`: hash, nonce, fees, the signed
bytes) BEFORE it is broadcast, so a caller that journals it can, after a crash, `resume` exactly those
transactions instead of signing a new one: the nonce is never used twice by us.

Stuck transactions: when no receipt arrives within `receipt_timeout_s`, the same nonce is signed again with
both fee fields raised by at least `bump_percent` (never less than MIN_BUMP_PERCENT, what nodes demand for a
replacement) and never above the fee cap, at most `max_replacements` times per call; a receipt of any version
ends the wait. When the cap leaves no room for a bump (or the base fee reached it), web3's TimeExhausted is
raised and the transaction stays pending for `resume`.

Resume: `resume` takes every journaled version of one nonce. A receipt of any of them settles it (the node
may have mined an older version than the newest we signed). Otherwise the newest is broadcast again and
then waited for and replaced exactly as `send` does (one shared loop); it is replaced at once when its fee
cap is below the base fee or the node refuses it. Replacements are re-signed from the stored signed bytes
and handed to `on_signed` before broadcast, like every version `send` signs.

The chain: the sender signs for the chain id it was built with, never for whatever `eth_chainId` answers; it
asks the RPC before signing anything or broadcasting again and raises WrongChain when it disagrees. Each
signed version records the chain it was built on (`BuiltOn`: genesis hash, latest block). When no version
was mined, `resume` abandons a transaction (Abandoned, nothing broadcast) whose chain is gone (another genesis:
the chain was reset; its block replaced: a reorg) or that the caller says is stale. A stale one that the node
still holds could yet be mined, a decision executed long after it was made: its nonce is taken first by a
cancel, a transfer of nothing to ourselves at replacement fees (journaled through `on_signed` like any version,
replaced while stuck), and the transaction is abandoned once the cancel is mined, or settled by the receipt of
a version that was mined before it.

A receipt with status 0 raises ContractRevert (carrying the receipt) with the reason found by replaying the
call with eth_call at its block.
"""

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from eth_abi import encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_account.typed_transactions import TypedTransaction
from eth_typing import ChecksumAddress, HexStr
from eth_utils import function_abi_to_4byte_selector, get_abi_input_types
from hexbytes import HexBytes
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.exceptions import (
    BlockNotFound,
    ContractLogicError,
    TimeExhausted,
    TransactionNotFound,
    Web3RPCError,
)
from web3.types import BlockData, Nonce, TxParams, TxReceipt, Wei

from chain.errors import ContractRevert, WrongChain, decode_revert
from strategy.units import GWEI

log = logging.getLogger(__name__)

MIN_BUMP_PERCENT = 12.5  # geth wants +10 % on both fee fields for a replacement, others +12.5 %
GAS_MARGIN = 1.2  # estimates miss state changes between estimate and block
CANCEL_GAS = 21_000  # a transfer of nothing to ourselves: what taking a nonce costs
NONCE_RECEIPT_GRACE_S = 2.0  # how long a used nonce may wait for our receipt before another transaction is blamed


def gas_with_margin(estimate: int) -> int:
    """The gas limit to send with: an estimate is the least gas at the estimate's block, and a market's
    accrual in the next block (a mint, a storage slot set from zero) can cost more."""
    return math.ceil(estimate * GAS_MARGIN)
MAX_REPLACEMENTS = 5


# Both take hashes and bytes as bytes or 0x-hex (a journal stores hex) and hold them as HexBytes: their own
# __init__ converts, which a dataclass field cannot.
@dataclass(frozen=True, init=False)
class BuiltOn:
    """The chain a transaction was signed on: its genesis hash and the latest block then."""

    genesis_hash: HexBytes
    block_number: int
    block_hash: HexBytes

    def __init__(self, genesis_hash: bytes | str, block_number: int, block_hash: bytes | str) -> None:
        object.__setattr__(self, "genesis_hash", HexBytes(genesis_hash))
        object.__setattr__(self, "block_number", block_number)
        object.__setattr__(self, "block_hash", HexBytes(block_hash))


@dataclass(frozen=True, init=False)
class PendingTx:
    """A signed transaction as it is journaled before broadcast; `built_on` is None for one journaled before
    journals recorded it."""

    nonce: int
    tx_hash: HexBytes
    raw_tx: HexBytes
    max_fee_per_gas: int
    max_priority_fee_per_gas: int
    gas_limit: int
    built_on: BuiltOn | None

    def __init__(self, nonce: int, tx_hash: bytes | str, raw_tx: bytes | str, max_fee_per_gas: int,
                 max_priority_fee_per_gas: int, gas_limit: int, built_on: BuiltOn | None) -> None:
        object.__setattr__(self, "nonce", nonce)
        object.__setattr__(self, "tx_hash", HexBytes(tx_hash))
        object.__setattr__(self, "raw_tx", HexBytes(raw_tx))
        object.__setattr__(self, "max_fee_per_gas", max_fee_per_gas)
        object.__setattr__(self, "max_priority_fee_per_gas", max_priority_fee_per_gas)
        object.__setattr__(self, "gas_limit", gas_limit)
        object.__setattr__(self, "built_on", built_on)

    @property
    def chain_id(self) -> int:
        """The chain id it is signed for, read from the signed bytes."""
        return _unsigned(self)["chainId"]

    @property
    def data(self) -> HexBytes:
        """The calldata it carries, read from the signed bytes."""
        return HexBytes(_unsigned(self)["data"])


OnSigned = Callable[[PendingTx], None]  # journals a signed transaction before it is broadcast


class TxError(RuntimeError):
    """A transaction cannot be sent as asked (fee cap below the base fee, nonce taken); the message says why."""


class NonceUsed(TxError):
    """The pending transaction's nonce was used by another transaction: it will never be mined."""


class Abandoned(TxError):
    """A pending transaction none of whose versions was mined must not be broadcast again: its chain was reset or
    reorganised, or the caller found it stale; the message says which."""


def calldata(call: ContractFunction) -> HexStr:
    """`call`'s calldata, from the ABI entry web3 matched to its (positional) arguments when the call was made:
    web3's own `call` and `build_transaction` search and match the contract's whole ABI again, 1.7 ms a call
    for the Vault's against 0.15 ms here, for the same bytes."""
    if call.kwargs:
        raise TypeError(f"{call.fn_name}: pass the arguments by position")
    return HexStr(HexBytes(function_abi_to_4byte_selector(call.abi)
                           + encode(get_abi_input_types(call.abi), call.args)).to_0x_hex())


def bumped(fee: int, percent: float) -> int:
    """`fee` raised by `percent` (rounded up), at least by MIN_BUMP_PERCENT."""
    return math.ceil(fee * (100 + max(percent, MIN_BUMP_PERCENT)) / 100)


class TxSender:
    """Signs with `account` for chain `chain_id` only and sends through `w3`; fees in gwei, `max_fee_gwei` is never
    exceeded."""

    def __init__(self, w3: Web3, account: LocalAccount, *, chain_id: int, max_fee_gwei: float = 100.0,
                 priority_fee_gwei: float = 1.5, receipt_timeout_s: float = 180.0, bump_percent: float = 15,
                 max_replacements: int = MAX_REPLACEMENTS, poll_s: float = 0.25) -> None:
        if priority_fee_gwei > max_fee_gwei:
            raise ValueError(f"priority fee {priority_fee_gwei} gwei is above the fee cap {max_fee_gwei} gwei")
        self.w3, self.account, self.chain_id = w3, account, chain_id
        self.fee_cap = int(max_fee_gwei * GWEI)
        self.priority_fee = int(priority_fee_gwei * GWEI)
        self.receipt_timeout_s, self.bump_percent = receipt_timeout_s, bump_percent
        self.max_replacements, self.poll_s = max_replacements, poll_s

    @property
    def address(self) -> ChecksumAddress:
        return self.account.address

    # -- simulate and send ------------------------------------------------------------------------------

    def simulate(self, call: ContractFunction) -> None:
        """eth_call of `call` from this account at the latest block: ContractRevert if it would revert."""
        try:
            self.w3.eth.call({"from": self.address, "to": call.address, "data": calldata(call)})
        except ContractLogicError as error:
            raise ContractRevert.of(error) from error

    def send(self, call: ContractFunction, on_signed: OnSigned | None = None) -> TxReceipt:
        """Sign, hand to `on_signed`, broadcast and wait for the receipt, replacing the transaction while it
        is stuck. Raises ContractRevert (at estimation or mined with status 0), TxError, TimeExhausted, WrongChain."""
        self._check_chain()
        nonce = self.w3.eth.get_transaction_count(self.address, "pending")
        latest = self.w3.eth.get_block("latest")
        base_fee = base_fee_to_meet(latest)
        if base_fee >= self.fee_cap:
            raise TxError(f"the base fee is {base_fee / GWEI:g} gwei, at or above the fee cap "
                          f"{self.fee_cap / GWEI:g} gwei: no transaction sent")
        max_fee, priority = self._fees(base_fee)
        tx: TxParams = {"from": self.address, "to": call.address, "data": calldata(call), "value": Wei(0),
                        "nonce": nonce, "maxFeePerGas": Wei(max_fee), "maxPriorityFeePerGas": Wei(priority),
                        "chainId": self.chain_id}
        try:
            tx["gas"] = gas_with_margin(self.w3.eth.estimate_gas(tx))
        except ContractLogicError as error:  # gas estimation ran the call: it would revert
            raise ContractRevert.of(error) from error
        return self._until_mined([self._sign_and_broadcast(tx, on_signed, latest)], on_signed)

    def resume(self, versions: Sequence[PendingTx], on_signed: OnSigned | None = None, *,
               stale: str | None = None) -> TxReceipt:
        """Every journaled version of one transaction (one nonce, oldest first) after a restart: the receipt of
        whichever was mined; else, unless it is abandoned, the newest broadcast again and, while it is stuck or
        cannot be mined, replaced as `send` does, each replacement handed to `on_signed` before broadcast.

        Abandoned (nothing broadcast) when no version was mined and the chain it was built on is gone, or with
        `stale` (why the caller no longer wants it). Raises NonceUsed when another transaction took the nonce,
        TimeExhausted while still pending, ContractRevert when mined with status 0, WrongChain."""
        versions = _one_nonce(versions)
        newest = versions[-1]
        signer = Account.recover_transaction(newest.raw_tx)
        if signer != self.address:  # our nonce checks and re-signing would be about the wrong account
            raise TxError(f"{_named(newest)} was signed by {signer}, not by this key {self.address}: "
                          "resume it with the key that signed it")
        if newest.chain_id != self.chain_id:  # its replacements would be signed for that chain
            raise TxError(f"{_named(newest)} was signed for chain {newest.chain_id}, this sender signs for chain "
                          f"{self.chain_id} only")
        self._check_chain()
        receipt = self._receipt_of_any(versions)
        if receipt is not None:
            return self._settled(receipt, versions, stale)
        gone = self._chain_gone(newest)
        if gone is not None:
            raise Abandoned(f"{_named(newest)} abandoned, never broadcast again: {gone}")
        if stale is not None:
            return self._cancel(versions, on_signed, stale)
        receipt = self._wait(versions, 0)  # another transaction may have taken the nonce: NonceUsed
        if receipt is not None:
            return self._checked(receipt)
        base_fee = base_fee_to_meet(self.w3.eth.get_block("latest"))
        stuck = None
        if newest.max_fee_per_gas < base_fee:  # no node would mine it: replace without waiting
            stuck = f"has a max fee of {newest.max_fee_per_gas / GWEI:g} gwei, below the base fee"
        elif (refusal := self._rebroadcast(newest)) is not None:
            receipt = self._wait(versions, 0)  # mined between our two looks, or NonceUsed
            if receipt is not None:
                return self._checked(receipt)
            stuck = f"was refused by the node ({refusal})"  # e.g. below the next block's base fee
        return self._until_mined(versions, on_signed, stuck=stuck)

    # -- helpers ----------------------------------------------------------------------------------------

    def _cancel(self, versions: list[PendingTx], on_signed: OnSigned | None, stale: str) -> TxReceipt:
        """Abandon the stale `versions`: when the node holds one of them, after taking their nonce with a cancel
        (the module docstring); the receipt of a version mined first."""
        receipt = self._wait(versions, 0)  # mined just now, or NonceUsed
        if receipt is not None:
            return self._checked(receipt)
        newest = versions[-1]
        if not any(self._held(version) for version in versions):
            raise Abandoned(f"{_named(newest)} abandoned, never broadcast again: {stale}")
        latest = self.w3.eth.get_block("latest")
        cancel = self._replacement(TxParams(type=2, chainId=self.chain_id, nonce=Nonce(newest.nonce), to=self.address,
                                            value=Wei(0), data=HexBytes(b""), gas=CANCEL_GAS,
                                            maxFeePerGas=Wei(newest.max_fee_per_gas),
                                            maxPriorityFeePerGas=Wei(newest.max_priority_fee_per_gas)),
                                   base_fee_to_meet(latest))
        if cancel is None:
            raise TimeExhausted(f"{_named(newest)} is stale ({stale}) and still held by the node, and the fee cap "
                                f"{self.fee_cap / GWEI:g} gwei leaves no room for a cancel: it stays pending")
        log.warning("%s is stale (%s) and still held by the node: cancelling its nonce", _named(newest), stale)
        versions.append(self._sign_and_broadcast(cancel, on_signed, latest))
        return self._settled(self._until_mined(versions, on_signed), versions, stale)

    def _settled(self, receipt: TxReceipt, versions: Sequence[PendingTx], stale: str | None) -> TxReceipt:
        """`receipt` checked, or Abandoned when it is the receipt of a cancel."""
        if receipt["to"] != self.address:
            return self._checked(receipt)
        raise Abandoned(f"{_named(versions[0])} abandoned: cancelled by {receipt['transactionHash'].to_0x_hex()} "
                        f"on its nonce{f' ({stale})' if stale else ''}")

    def _held(self, pending: PendingTx) -> bool:
        """Whether the node holds `pending` (in its pool: it was broadcast and could still be mined)."""
        try:
            self.w3.eth.get_transaction(pending.tx_hash)
        except TransactionNotFound:
            return False
        return True

    def _until_mined(self, versions: list[PendingTx], on_signed: OnSigned | None, *,
                     stuck: str | None = None) -> TxReceipt:
        """The checked receipt of any of `versions`, the newest replaced with bumped fees each time none is
        mined within receipt_timeout_s, at most max_replacements times; `stuck` (why the newest cannot be mined
        as it is) replaces it before any wait."""
        replacements = 0
        while True:
            if stuck is None:
                receipt = self._wait(versions, self.receipt_timeout_s)
                if receipt is not None:
                    return self._checked(receipt)
                stuck = f"not mined within {self.receipt_timeout_s:g}s"
            if replacements == self.max_replacements:
                raise TimeExhausted(f"{_named(versions[-1])} {stuck}; no replacement left "
                                    f"(max_replacements={self.max_replacements})")
            versions.append(self._replace(versions[-1], on_signed, stuck))
            replacements, stuck = replacements + 1, None

    def _replace(self, newest: PendingTx, on_signed: OnSigned | None, stuck: str) -> PendingTx:
        """`newest` re-signed (same nonce and call) with bumped fees, handed to `on_signed` and broadcast."""
        self._check_chain()  # the RPC may have changed its answer while we waited
        latest = self.w3.eth.get_block("latest")
        base_fee = base_fee_to_meet(latest)
        replacement = self._replacement(_unsigned(newest), base_fee)
        if replacement is None:
            raise TimeExhausted(f"{_named(newest)} {stuck}; the fee cap {self.fee_cap / GWEI:g} gwei leaves no room "
                                f"for a replacement at the base fee {base_fee / GWEI:g} gwei")
        log.warning("%s %s; replacing it with fees %d/%d wei", _named(newest), stuck,
                    replacement["maxFeePerGas"], replacement["maxPriorityFeePerGas"])
        return self._sign_and_broadcast(replacement, on_signed, latest)

    def _check_chain(self) -> None:
        """The RPC must serve the chain this sender signs for: an RPC that starts answering another chain id is
        lying or was switched, and gets nothing."""
        served = self.w3.eth.chain_id
        if served != self.chain_id:
            raise WrongChain(f"the RPC now serves chain {served}, but this sender signs for chain {self.chain_id} "
                             "only: nothing signed or sent")

    def _chain_gone(self, pending: PendingTx) -> str | None:
        """Why the chain `pending` was built on is not the RPC's chain any more; None when it still is."""
        if pending.built_on is None:
            return "journaled without the chain it was built on, so it cannot be checked against this one"
        built_on, genesis = pending.built_on, self.w3.eth.get_block(0)["hash"]
        if genesis != built_on.genesis_hash:
            return (f"chain reset: it was signed on the chain with genesis {built_on.genesis_hash.to_0x_hex()}, "
                    f"the RPC serves the chain with genesis {genesis.to_0x_hex()}")
        number = built_on.block_number
        try:
            block_hash = self.w3.eth.get_block(number)["hash"]
        except BlockNotFound:
            return f"reorg: block {number} it was built on is no longer on the chain"
        if block_hash != built_on.block_hash:
            return (f"reorg: block {number} it was built on was {built_on.block_hash.to_0x_hex()}, "
                    f"the chain's block {number} is {block_hash.to_0x_hex()}")
        return None

    def _fees(self, base_fee: int) -> tuple[int, int]:
        """(maxFeePerGas, maxPriorityFeePerGas) at a base fee below the cap: room for it to double, within the cap."""
        max_fee = min(self.fee_cap, 2 * base_fee + self.priority_fee)
        return max_fee, min(self.priority_fee, max_fee - base_fee)

    def _replacement(self, tx: TxParams, base_fee: int) -> TxParams | None:
        """`tx` with both fees bumped (and at least today's fees), within the cap; None if the cap forbids it
        (a replacement the base fee already priced out would be no better than `tx`)."""
        if base_fee >= self.fee_cap:
            return None
        fresh_max, fresh_priority = self._fees(base_fee)
        old_max, old_priority = _fee(tx, "maxFeePerGas"), _fee(tx, "maxPriorityFeePerGas")
        max_fee = min(self.fee_cap, max(bumped(old_max, self.bump_percent), fresh_max))
        priority = min(max_fee, max(bumped(old_priority, self.bump_percent), fresh_priority))
        if max_fee < bumped(old_max, 0) or priority < bumped(old_priority, 0):
            return None
        replacement = tx.copy()
        replacement["maxFeePerGas"], replacement["maxPriorityFeePerGas"] = Wei(max_fee), Wei(priority)
        return replacement

    def _rebroadcast(self, pending: PendingTx) -> Web3RPCError | None:
        """The stored bytes sent again; the node's refusal, None when it took them or holds them already."""
        try:
            self.w3.eth.send_raw_transaction(pending.raw_tx)
        except Web3RPCError as error:
            if not _already_known(error):
                return error
        return None

    def _sign_and_broadcast(self, tx: TxParams, on_signed: OnSigned | None, latest: BlockData) -> PendingTx:
        """`tx` (built on the `latest` block) signed, handed to `on_signed`, then broadcast."""
        built_on = BuiltOn(genesis_hash=self.w3.eth.get_block(0)["hash"], block_number=latest["number"],
                           block_hash=latest["hash"])
        # eth_account types its input as a plain dict of field values; TxParams is web3's TypedDict of the same
        signed = self.account.sign_transaction(tx)  # type: ignore[arg-type]
        pending = PendingTx(nonce=tx["nonce"], tx_hash=signed.hash, raw_tx=signed.raw_transaction,
                            max_fee_per_gas=_fee(tx, "maxFeePerGas"),
                            max_priority_fee_per_gas=_fee(tx, "maxPriorityFeePerGas"), gas_limit=tx["gas"],
                            built_on=built_on)
        if on_signed is not None:
            on_signed(pending)  # journaled before the network sees it
        self.w3.eth.send_raw_transaction(pending.raw_tx)
        log.info("sent %s (nonce %d)", pending.tx_hash.to_0x_hex(), pending.nonce)
        return pending

    def _wait(self, versions: list[PendingTx], timeout_s: float) -> TxReceipt | None:
        """The receipt of any version of the transaction, polling until `timeout_s`; None if none came."""
        deadline = time.monotonic() + timeout_s
        delay = min(0.05, self.poll_s)
        while True:
            receipt = self._receipt_of_any(versions)
            if receipt is not None:
                return receipt
            if self.w3.eth.get_transaction_count(self.address, "latest") > versions[0].nonce:
                # the nonce is used: one of ours may have been mined just now, else another transaction took it
                receipt = self._receipt_after_nonce(versions)
                if receipt is not None:
                    return receipt
                raise self._nonce_used(versions[-1])
            if time.monotonic() >= deadline:
                return None
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, self.poll_s)

    def _receipt_after_nonce(self, versions: Sequence[PendingTx]) -> TxReceipt | None:
        """The receipt of one of `versions` once the account's nonce has moved past theirs, waiting up to
        NONCE_RECEIPT_GRACE_S: a node may count a mined transaction in the nonce a moment before it serves the
        receipt (anvil did, 4 times in 300 sends); None when none comes, so another transaction took the nonce."""
        deadline = time.monotonic() + NONCE_RECEIPT_GRACE_S
        while True:
            receipt = self._receipt_of_any(versions)
            if receipt is not None or time.monotonic() >= deadline:
                return receipt
            time.sleep(min(0.05, self.poll_s))

    def _receipt_of_any(self, versions: Sequence[PendingTx]) -> TxReceipt | None:
        """The receipt of whichever version was mined (newest first), None while none was."""
        for version in reversed(versions):
            receipt = self._receipt(version.tx_hash)
            if receipt is not None:
                return receipt
        return None

    def _receipt(self, tx_hash: HexBytes) -> TxReceipt | None:
        try:
            return self.w3.eth.get_transaction_receipt(tx_hash)
        except TransactionNotFound:
            return None

    def _checked(self, receipt: TxReceipt) -> TxReceipt:
        if receipt["status"] == 1:
            return receipt
        tx_hash = receipt["transactionHash"].to_0x_hex()
        raise ContractRevert(self._replay(receipt), tx_hash=tx_hash, receipt=receipt)

    def _replay(self, receipt: Mapping[str, Any]) -> str | None:
        """The reason a mined transaction reverted: the call re-run with eth_call at its block.

        That state includes whatever else its block changed (e.g. a pause mined before it), the usual cause of a
        revert that the simulation before sending did not see."""
        tx = self.w3.eth.get_transaction(receipt["transactionHash"])
        try:
            self.w3.eth.call({"from": tx["from"], "to": tx["to"], "data": tx["input"], "gas": tx["gas"]},
                             block_identifier=receipt["blockNumber"])
        except ContractLogicError as error:
            return decode_revert(error)
        return "reverted when mined, succeeds when replayed (the chain changed within its block, or out of gas)"

    def _nonce_used(self, pending: PendingTx) -> NonceUsed:
        return NonceUsed(f"nonce {pending.nonce} of {self.address} was used by another transaction; "
                         f"{pending.tx_hash.to_0x_hex()} will never be mined")


BASE_FEE_MAX_CHANGE_DENOMINATOR = 8  # EIP-1559: the base fee moves by at most 1/8 a block
ELASTICITY_MULTIPLIER = 2  # EIP-1559: the gas target is half the gas limit


def base_fee_to_meet(latest: Mapping[str, Any]) -> int:
    """The base fee a transaction sent now must meet: the higher of the `latest` block's and the next one's,
    which EIP-1559 fixes from the latest block (up to +12.5 % after a full block)."""
    return max(latest["baseFeePerGas"], next_base_fee(latest))


def next_base_fee(block: Mapping[str, Any]) -> int:
    """The base fee of the block after `block` (baseFeePerGas, gasUsed, gasLimit), by EIP-1559's rule."""
    base_fee, used = block["baseFeePerGas"], block["gasUsed"]
    target = block["gasLimit"] // ELASTICITY_MULTIPLIER
    if target == 0 or used == target:
        return base_fee
    if used > target:
        return base_fee + max(base_fee * (used - target) // target // BASE_FEE_MAX_CHANGE_DENOMINATOR, 1)
    return base_fee - base_fee * (target - used) // target // BASE_FEE_MAX_CHANGE_DENOMINATOR


def _one_nonce(versions: Sequence[PendingTx]) -> list[PendingTx]:
    if not versions:
        raise ValueError("resume needs at least one journaled version of the transaction")
    nonces = sorted({version.nonce for version in versions})
    if len(nonces) > 1:
        raise ValueError(f"resume takes the versions of one nonce, got nonces {nonces}")
    return list(versions)


def _unsigned(pending: PendingTx) -> TxParams:
    """The fields `pending` was signed with, decoded from its stored bytes (to sign a replacement)."""
    fields = TypedTransaction.from_bytes(pending.raw_tx).as_dict()
    for signature_field in ("v", "r", "s"):
        del fields[signature_field]
    return cast(TxParams, fields)  # as_dict is typed dict[str, Any]: the fields of a signed EIP-1559 transaction


def _fee(tx: TxParams, field: Literal["maxFeePerGas", "maxPriorityFeePerGas"]) -> int:
    """A fee field of a transaction this module built or decoded: wei as an int (TxParams also allows hex)."""
    fee = tx[field]
    if not isinstance(fee, int):
        raise TypeError(f"{field} is {fee!r}, expected wei as an int")
    return fee


def _named(pending: PendingTx) -> str:
    return f"transaction {pending.tx_hash.to_0x_hex()} (nonce {pending.nonce})"


def _already_known(error: Web3RPCError) -> bool:
    # the node still holds the same signed transaction in its pool: nothing to rebroadcast
    return "already known" in str(error).lower() or "already imported" in str(error).lower()

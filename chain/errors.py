"""Chain errors the keeper and the depositor tools act on: a contract refusal with its reason, an RPC that is down
or that serves another chain than the configured one.

`decode_revert` turns whatever a revert arrives as (web3's ContractLogicError and its Panic/custom
subclasses, or the raw revert data a node or a wallet hands back) into the readable reason. Vyper's
`assert cond, "reason"` reverts with Error(string); Solidity's checked arithmetic with Panic(uint256).
"""

from collections.abc import Mapping, Sequence
from typing import Any

from eth_abi import decode
from eth_abi.exceptions import DecodingError
from hexbytes import HexBytes
from web3.exceptions import ContractLogicError

ERROR_SELECTOR = HexBytes("0x08c379a0")  # Error(string)
PANIC_SELECTOR = HexBytes("0x4e487b71")  # Panic(uint256)
_REVERTED_PREFIX = "execution reverted"

PANIC_CODES = {
    0x00: "generic compiler panic",
    0x01: "assert failed",
    0x11: "arithmetic overflow or underflow",
    0x12: "division or modulo by zero",
    0x21: "invalid enum value",
    0x22: "bad storage byte array encoding",
    0x31: "pop() on an empty array",
    0x32: "array index out of bounds",
    0x41: "out of memory",
    0x51: "call to an uninitialised function",
}


class ContractRevert(Exception):
    """A contract refused a call or a mined transaction; `reason` is the decoded revert reason (None: none given).

    `receipt` is set when a mined transaction reverted (its gas was paid), `tx_hash` when one was sent.
    """

    def __init__(self, reason: str | None, *, data: bytes | None = None, tx_hash: str | None = None,
                 receipt: Mapping[str, Any] | None = None) -> None:
        self.reason, self.data, self.tx_hash, self.receipt = reason, data, tx_hash, receipt
        text = reason if reason is not None else "reverted without a reason"
        super().__init__(f"transaction {tx_hash} reverted: {text}" if tx_hash else text)

    @classmethod
    def of(cls, error: ContractLogicError) -> "ContractRevert":
        """The revert web3 reported (eth_call or gas estimation), with its reason decoded."""
        data = _as_bytes(error.data) if isinstance(error.data, (bytes, str)) else None
        return cls(decode_revert(error), data=data)


class RpcUnavailable(ConnectionError):
    """No RPC endpoint answered (connection refused, timeout, HTTP error); the message names every URL tried. Also
    an RPC refusing what cannot be asked in smaller parts (eth_getLogs of one block, `chain.logs`)."""

    def __init__(self, message: str, urls: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.urls = list(urls)


class WrongChain(ConnectionError):
    """An RPC answered for another chain than the configured one (or not with a chain id): nothing is signed for it
    or sent through it. A ConnectionError, as a dead RPC is: the cycle fails as an RPC failure."""


class BadAnswer(ConnectionError):
    """An RPC answered a request whose result is hex (a call's return data, a number, code) with something that
    is not: it lies or is broken, so the next URL is asked, as when one is down."""


def decode_revert(error_or_data: ContractLogicError | bytes | str | None) -> str | None:
    """The readable reason of a revert; None when the revert carried no data (e.g. a bare Vyper `assert`)."""
    if isinstance(error_or_data, ContractLogicError):
        data = error_or_data.data
        raw = _as_bytes(data) if isinstance(data, (bytes, str)) else None
        if raw is not None:
            return decode_revert_data(raw)
        return _reason_from_message(str(error_or_data.message or ""))
    if error_or_data is None:
        return None
    raw = _as_bytes(error_or_data)
    if raw is None:
        raise ValueError(f"revert data must be bytes or 0x-hex, got {error_or_data!r}")
    return decode_revert_data(raw)


def decode_revert_data(data: bytes) -> str | None:
    """Error(string) -> its string, Panic(uint256) -> 'panic 0x11: ...', anything else -> the custom error's data."""
    if not data:
        return None
    selector, body = HexBytes(data[:4]), data[4:]
    try:
        if selector == ERROR_SELECTOR:
            return decode(["string"], body)[0]
        if selector == PANIC_SELECTOR:
            code = decode(["uint256"], body)[0]
            return f"panic 0x{code:02x}: {PANIC_CODES.get(code, 'unknown panic code')}"
    except DecodingError:
        pass  # malformed: fall through and show the bytes
    return f"custom error {HexBytes(data).to_0x_hex()}"


def _as_bytes(value: bytes | str) -> bytes | None:
    if isinstance(value, bytes):
        return value
    text = value.strip()
    if not text.startswith(("0x", "0X")):
        return None
    try:
        return bytes.fromhex(text[2:])
    except ValueError:
        return None


def _reason_from_message(message: str) -> str | None:
    # web3 leaves `data` empty for some node messages: "execution reverted: vault: paused" -> "vault: paused"
    text = message.strip()
    if text.startswith(_REVERTED_PREFIX):
        text = text[len(_REVERTED_PREFIX):].lstrip(": ").strip()
    return text or None

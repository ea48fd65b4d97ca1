"""Decision records and the bytes32 decision hash the keeper passes to `Vault.rebalance`.

A decision record is a JSON object with exactly these keys:

==============  ==============================================================================
key             value
==============  ==============================================================================
chain_id        integer
inputs_hash     "0x" + 64 lowercase hex digits: `inputs_hash` of the data the model saw
model_hash      "0x" + 64 lowercase hex digits: the content hash of the model artifact that decided, or
                `strategy.trailing_best.RULE_HASH` when the trailing-best rule decided instead
targets         object: market address (lowercase "0x" + 40 hex) -> target position in asset
                base units (integer); exactly the allocations named in the rebalance call
timestamp       integer: Unix seconds (UTC) when the keeper decided
vault           lowercase "0x" + 40 hex address of the vault
==============  ==============================================================================

Canonical encoding (`canonical_json`): UTF-8 JSON, object keys sorted at every level, no whitespace
(separators "," and ":"), non-ASCII characters escaped as \\uXXXX, integers as plain decimal digits of
any size; floats, NaN and infinities are refused so that no number has two spellings.

decision hash = keccak256(canonical JSON bytes), 32 bytes, written "0x" + 64 lowercase hex.
Anyone holding the record can check an on-chain `Rebalanced(keeper, decision_hash, ...)` with
`decision_hash_of(json.loads(record))` or `verify(record, hash)`.

The inputs hash is keccak256 over the canonical JSON of {"at": ISO time of the forecast, then one entry
per input table: pandas' `to_json(orient="split", date_format="iso", date_unit="us", double_precision=15)`
of the table with its rows sorted}; it names the data without putting it on chain.
"""

import json
import re
from collections.abc import Mapping
from typing import Any

import pandas as pd
from eth_utils import keccak

from strategy.units import UINT256_MAX

RECORD_KEYS = frozenset({"chain_id", "inputs_hash", "model_hash", "targets", "timestamp", "vault"})
_HASH = re.compile(r"0x[0-9a-f]{64}")
_ADDRESS = re.compile(r"0x[0-9a-f]{40}")


class DecisionError(ValueError):
    """A decision record is malformed or does not hash to what it claims."""


def canonical_json(value: Any) -> str:
    """The one spelling of `value` that is hashed (see the module docstring)."""
    _refuse_floats(value, "record")
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def keccak_hex(text: str) -> str:
    return "0x" + keccak(text.encode("utf-8")).hex()


def decision_record(
    *, chain_id: int, vault: str, inputs_hash: str, model_hash: str, targets: Mapping[str, int], timestamp: int
) -> dict[str, Any]:
    """A checked decision record, addresses and hashes normalised to lowercase."""
    record = {
        "chain_id": chain_id,
        "inputs_hash": inputs_hash.lower(),
        "model_hash": model_hash.lower(),
        "targets": {market.lower(): amount for market, amount in targets.items()},
        "timestamp": timestamp,
        "vault": vault.lower(),
    }
    check_record(record)
    return record


def check_record(record: Mapping[str, Any]) -> None:
    """Raise `DecisionError` naming the first key that breaks the record format."""
    keys = set(record)
    if keys != RECORD_KEYS:
        missing, extra = sorted(RECORD_KEYS - keys), sorted(keys - RECORD_KEYS)
        raise DecisionError(f"decision record keys: missing {missing}, unexpected {extra}")
    for key in ("chain_id", "timestamp"):
        if not _is_uint(record[key]):
            raise DecisionError(f"decision record key {key!r}: expected a non-negative integer, got {record[key]!r}")
    for key in ("inputs_hash", "model_hash"):
        if not isinstance(record[key], str) or not _HASH.fullmatch(record[key]):
            raise DecisionError(f"decision record key {key!r}: expected 0x + 64 lowercase hex, got {record[key]!r}")
    if not isinstance(record["vault"], str) or not _ADDRESS.fullmatch(record["vault"]):
        raise DecisionError(f"decision record key 'vault': expected a lowercase 0x address, got {record['vault']!r}")
    targets = record["targets"]
    if not isinstance(targets, Mapping):
        raise DecisionError(f"decision record key 'targets': expected an object, got {targets!r}")
    for market, amount in targets.items():
        if not _ADDRESS.fullmatch(market) or not _is_uint(amount) or amount > UINT256_MAX:
            raise DecisionError(f"decision record targets: {market!r} -> {amount!r} is not address -> uint256")


def decision_hash_of(record: Mapping[str, Any]) -> str:
    """keccak256 of the record's canonical JSON, as 0x + 64 hex."""
    check_record(record)
    return keccak_hex(canonical_json(record))


def verify(record_json: str, expected_hash: str) -> dict[str, Any]:
    """The parsed record if `record_json` is canonical and hashes to `expected_hash`; else `DecisionError`."""
    try:
        record = json.loads(record_json)
    except json.JSONDecodeError as error:
        raise DecisionError(f"stored decision record is not JSON: {error}") from error
    if not isinstance(record, dict):
        raise DecisionError("stored decision record is not a JSON object")
    actual = decision_hash_of(record)
    if canonical_json(record) != record_json:
        raise DecisionError("stored decision record is not in canonical form, so its bytes were changed")
    if actual != expected_hash.lower():
        raise DecisionError(f"decision record hashes to {actual}, not {expected_hash.lower()}")
    return record


def inputs_hash(at: pd.Timestamp, tables: Mapping[str, pd.DataFrame]) -> str:
    """keccak256 naming the model's inputs: the forecast time and each table, rows sorted."""
    document: dict[str, Any] = {"at": pd.Timestamp(at).isoformat()}
    for name, table in tables.items():
        ordered = table.sort_values(list(_sortable_columns(table))).reset_index(drop=True) if len(table) else table
        split = ordered.to_json(orient="split", date_format="iso", date_unit="us", double_precision=15, index=False)
        document[name] = json.loads(split)
    return keccak_hex(json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True))


def _sortable_columns(table: pd.DataFrame) -> list[str]:
    """Columns whose values sort (lists and dicts do not); enough to fix the row order of canonical tables."""
    return [c for c in table.columns if not table[c].map(lambda v: isinstance(v, (list, dict))).any()]


def _is_uint(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _refuse_floats(value: Any, where: str) -> None:
    if isinstance(value, float):
        raise DecisionError(f"{where}: floats have no canonical spelling, got {value!r}")
    if isinstance(value, Mapping):
        for key, item in value.items():
            _refuse_floats(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _refuse_floats(item, f"{where}[{index}]")

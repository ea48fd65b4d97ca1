"""Decision records, the bytes32 decision hash the keeper passes to `Vault.rebalance`, and the one canonical
encoding every decision hash is taken over (the byte-level spec: docs/decision-bundle.md).

A decision record is a JSON object with exactly these keys:

==============  ==============================================================================
key             value
==============  ==============================================================================
chain_id        integer
inputs_hash     "0x" + 64 lowercase hex digits: `inputs_hash` of the data the model saw
model_hash      "0x" + 64 lowercase hex digits: the content hash of the model artifact that decided, or
                `strategy.trailing_best.RULE_HASH` when the trailing-best rule decided instead
targets         object: market address (lowercase "0x" + 40 hex) -> target position in asset
                base units as a decimal string ("0" or digits without a leading zero); exactly the
                allocations named in the rebalance call
timestamp       integer: Unix seconds (UTC) when the keeper decided
vault           lowercase "0x" + 40 hex address of the vault
config_hash     (with a decision bundle, `decisions.bundle`) keccak256 of the bundle's config part
state_hash      (with a decision bundle) keccak256 of the bundle's chain-state part
==============  ==============================================================================

Canonical encoding (`canonical_json`): RFC 8785, the JSON Canonicalization Scheme: UTF-8, object keys sorted
by UTF-16 code units, no whitespace, strings with the minimal escapes, numbers as ECMAScript spells IEEE
doubles (the shortest text that reads back as the same double). RFC 8785 numbers are doubles, so an integer
beyond 2**53 - 1 is refused, and amounts (uint256) are written as decimal strings; NaN and infinities are
refused.

decision hash = keccak256(canonical JSON bytes), 32 bytes, written "0x" + 64 lowercase hex.
Anyone holding the record can check an on-chain `Rebalanced(keeper, decision_hash, ...)` with
`decision_hash_of(json.loads(record))` or `verify(record, hash)`.

The inputs hash is keccak256 over the canonical JSON of `inputs_document`: {"at": the forecast time, then one
entry per input table, encoded by `table_json` in the row order the model saw}; it names the data without
putting it on chain, and a decision bundle holds the document itself.
"""

import contextlib
import json
import math
import re
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import rfc8785
from eth_utils import keccak

from strategy.data.schema import TIMESTAMP
from strategy.safe_json import loads
from strategy.units import UINT256_MAX

RECORD_KEYS = frozenset({"chain_id", "inputs_hash", "model_hash", "targets", "timestamp", "vault"})
BUNDLE_KEYS = frozenset({"config_hash", "state_hash"})  # a record whose decision has a bundle also has these
_HASH = re.compile(r"0x[0-9a-f]{64}")
_ADDRESS = re.compile(r"0x[0-9a-f]{40}")
_UINT = re.compile(r"0|[1-9][0-9]*")
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # table timestamps: UTC, microseconds
_TIME_DTYPE = "datetime64[us, UTC]"  # the canonical tables' (`strategy.data.checks.TIMESTAMP_DTYPE`)
_WRITTEN_YEARS = (1000, 9999)  # numpy writes these years as strftime's %Y does, with four digits


def is_hash(text: str) -> bool:
    """Lowercase 0x + 64 hex: the one spelling of a keccak or content hash in a record, a path or a URL."""
    return _HASH.fullmatch(text) is not None


class DecisionError(ValueError):
    """A decision record is malformed or does not hash to what it claims."""


def canonical_json(value: Any) -> str:
    """The one spelling of `value` that is hashed: RFC 8785 (see the module docstring).

    rfc8785 is plain Python, and a keeper cycle spells its inputs (some 10^5 values) twice, once for their hash
    and once inside their bundle. Where `json.dumps` (C) spells a value as RFC 8785 does, it spells it:
    `_json_spelled` checks that and gives each double json would write otherwise (`5.0` for `5`) as its
    integer; anything else goes to rfc8785, which stays the reference (tests compare the two on arbitrary
    values). A `SpelledTable` is spelled once, and its text written as it is wherever it is held.
    """
    spelled = _json_spelled(value)
    if spelled is not _OTHER:
        text = _written(spelled)
        with contextlib.suppress(UnicodeEncodeError):  # rfc8785 refuses a lone surrogate, json writes it
            text.encode("utf-8")
            return text
    try:
        return rfc8785.dumps(value).decode("utf-8")
    except rfc8785.CanonicalizationError as error:
        raise DecisionError(f"no canonical JSON: {error}") from None


class SpelledTable(dict[str, Any]):
    """A `table_json` object that keeps its canonical JSON once taken: the same inputs are spelled for their
    hash and in their bundle, and a keeper decides on the very same inputs while its data do not move. Never
    modified once spelled (nothing would notice)."""

    _text: str | None = None
    _kind: str | None = None  # `table_json`'s columns spelled, when rows equal as tuples are spelled alike

    def text(self) -> str:
        if self._text is None:
            self._text = canonical_json(dict(self)) if self._kind is None else _table_text(self, self._kind)
        return self._text


# When a real source's data move, a keeper's tables are mostly the rows of the last ones again (a pool's history
# gains a day): the rows of the last table of the same columns are kept, for a few kinds of table, and their
# spellings once two tables running shared most rows. A table mostly of new rows (the first, or the devnet's,
# whose synthetic history is dated anew each market day) is spelled whole: one row at a time costs 1.5x.
ROW_MEMO_TABLES = 4
_ROWS: dict[str, tuple[set[tuple[Any, ...]], dict[tuple[Any, ...], str]]] = {}  # columns -> last rows, spellings
_ROWS_LOCK = threading.Lock()


def _table_text(table: SpelledTable, columns: str) -> str:
    """The canonical JSON of `table` ({"columns", "rows"}): RFC 8785 writes an array's items each as it writes
    them alone, so rows spelled for the last table of these columns are written as they were then."""
    rows = table["rows"]
    with _ROWS_LOCK:
        last, spellings = _ROWS.pop(columns, (set(), {}))
    keys = list(map(tuple, rows))
    spelled: dict[tuple[Any, ...], str] = {}
    if 2 * sum(key in last for key in keys) < len(keys):
        text = canonical_json(dict(table))
    else:
        for key, row in zip(keys, rows, strict=True):
            if key not in spelled:
                kept = spellings.get(key)
                spelled[key] = canonical_json(row) if kept is None else kept
        text = '{"columns":' + columns + ',"rows":[' + ",".join(map(spelled.__getitem__, keys)) + "]}"
    with _ROWS_LOCK:
        _ROWS[columns] = (set(keys), spelled)  # the newest last
        while len(_ROWS) > ROW_MEMO_TABLES:
            _ROWS.pop(next(iter(_ROWS)))
    return text


class _Spelling(str):
    """The canonical JSON of a `SpelledTable`, written as it is."""


class _Holder(dict[str, Any]):
    """A spelled object holding a `_Spelling`: written member by member, the keys sorted as json sorts them."""


class _Holders(list[Any]):
    """A spelled array holding a `_Spelling`."""


_SPLICED = frozenset({_Spelling, _Holder, _Holders})  # what `_written` writes itself


def _written(spelled: Any) -> str:
    """`json.dumps` of a `_json_spelled` value, the spellings it holds written as they are (RFC 8785 writes an
    object's members and an array's items each as it writes them alone)."""
    kind = type(spelled)
    if kind is _Spelling:
        return str(spelled)
    if kind is _Holder:
        return "{" + ",".join(f"{_dumped(key)}:{_written(item)}" for key, item in sorted(spelled.items())) + "}"
    if kind is _Holders:
        return "[" + ",".join(map(_written, spelled)) + "]"
    return _dumped(spelled)


# What `json.dumps(value, ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":"))` builds on
# each call, built once: a table's rows are spelled one by one (`_table_text`).
_dumped = json.JSONEncoder(ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":")).encode


_OTHER = object()  # a value `json.dumps` may spell otherwise than RFC 8785
_TEXTS = frozenset({str, bool, type(None)})
_SCALARS = _TEXTS | {float, int}
_SAFE_INT = 2**53 - 1  # RFC 8785 numbers are doubles
_KEY_LIMIT = "\ud7ff"  # up to here code points sort as UTF-16 code units do (json sorts by code points)


def _json_spelled(value: Any) -> Any:
    """`value` as `json.dumps` spells in RFC 8785's bytes, or `_OTHER`: containers exactly dict, list or tuple,
    keys strings below U+D800, integers within doubles', doubles finite and written by `repr` as ECMAScript
    writes them (an integral one, whose repr ends in ".0", as its integer; one repr writes with an exponent
    is `_OTHER`); a `SpelledTable` as its `_Spelling`, and a container holding one as a `_Holder` or
    `_Holders`."""
    kind = type(value)
    if kind in _SCALARS:
        return _scalar_spelled(value)
    if kind is SpelledTable:
        return _Spelling(value.text())
    if kind is list or kind is tuple:
        kinds = set(map(type, value))
        if kinds <= _TEXTS:
            return value
        items = list(map(_scalar_spelled if kinds <= _SCALARS else _json_spelled, value))  # rows: scalars
        if any(item is _OTHER for item in items):
            return _OTHER
        return _Holders(items) if any(type(item) in _SPLICED for item in items) else items
    if kind is dict:
        if not all(type(key) is str and (key.isascii() or max(key) <= _KEY_LIMIT) for key in value):
            return _OTHER
        spelled = {key: _json_spelled(item) for key, item in value.items()}
        if any(item is _OTHER for item in spelled.values()):
            return _OTHER
        return _Holder(spelled) if any(type(item) in _SPLICED for item in spelled.values()) else spelled
    return _OTHER


def _scalar_spelled(value: Any) -> Any:
    kind = type(value)
    if kind is float:
        if value == 0 or (value.is_integer() and abs(value) < 1e16):
            return int(value)  # ECMAScript writes an integral double below 1e16 as its integer, -0.0 as 0
        return value if 1e-4 <= abs(value) < 1e16 else _OTHER  # NaN and infinities fail this too
    if kind is int:
        return value if -_SAFE_INT <= value <= _SAFE_INT else _OTHER
    return value  # text, a boolean or None


def keccak_hex(text: str) -> str:
    return "0x" + keccak(text.encode("utf-8")).hex()


def hash_of(value: Any) -> str:
    """keccak256 of `value`'s canonical JSON, as 0x + 64 hex."""
    return keccak_hex(canonical_json(value))


def decision_record(
    *, chain_id: int, vault: str, inputs_hash: str, model_hash: str, targets: Mapping[str, int], timestamp: int,
    config_hash: str | None = None, state_hash: str | None = None,
) -> dict[str, Any]:
    """A checked decision record, addresses and hashes normalised to lowercase, amounts as decimal strings; the
    config and state hashes of its bundle when it has one."""
    record = {
        "chain_id": chain_id,
        "inputs_hash": inputs_hash.lower(),
        "model_hash": model_hash.lower(),
        "targets": {market.lower(): _amount_text(amount) for market, amount in targets.items()},
        "timestamp": timestamp,
        "vault": vault.lower(),
    }
    if config_hash is not None or state_hash is not None:
        record |= {"config_hash": str(config_hash).lower(), "state_hash": str(state_hash).lower()}
    check_record(record)
    return record


def check_record(record: Mapping[str, Any]) -> None:
    """Raise `DecisionError` naming the first key that breaks the record format."""
    keys = set(record)
    expected = RECORD_KEYS | (BUNDLE_KEYS if keys & BUNDLE_KEYS else set())
    if keys != expected:
        missing, extra = sorted(expected - keys), sorted(keys - expected)
        raise DecisionError(f"decision record keys: missing {missing}, unexpected {extra}")
    for key in ("chain_id", "timestamp"):
        if not _is_uint(record[key]):
            raise DecisionError(f"decision record key {key!r}: expected a non-negative integer, got {record[key]!r}")
    for key in sorted({"inputs_hash", "model_hash"} | (keys & BUNDLE_KEYS)):
        if not isinstance(record[key], str) or not is_hash(record[key]):
            raise DecisionError(f"decision record key {key!r}: expected 0x + 64 lowercase hex, got {record[key]!r}")
    if not isinstance(record["vault"], str) or not _ADDRESS.fullmatch(record["vault"]):
        raise DecisionError(f"decision record key 'vault': expected a lowercase 0x address, got {record['vault']!r}")
    targets = record["targets"]
    if not isinstance(targets, Mapping):
        raise DecisionError(f"decision record key 'targets': expected an object, got {targets!r}")
    for market, amount in targets.items():
        if (not _ADDRESS.fullmatch(market) or not isinstance(amount, str) or not _UINT.fullmatch(amount)
                or int(amount) > UINT256_MAX):
            raise DecisionError(f"decision record targets: {market!r} -> {amount!r} is not address -> uint256 "
                                "decimal string")


def targets_of(record: Mapping[str, Any]) -> dict[str, int]:
    """A checked record's targets as integers."""
    return {market: int(amount) for market, amount in record["targets"].items()}


def decision_hash_of(record: Mapping[str, Any]) -> str:
    """keccak256 of the record's canonical JSON, as 0x + 64 hex."""
    check_record(record)
    return hash_of(record)


def parse_canonical(text: str, what: str) -> Any:
    """The JSON value of `text`, which must be its own canonical form (so no byte of it can change unseen)."""
    try:
        value = loads(text)
    except json.JSONDecodeError as error:
        raise DecisionError(f"{what} is not JSON: {error}") from error
    if canonical_json(value) != text:
        raise DecisionError(f"{what} is not in canonical form, so its bytes were changed")
    return value


def verify(record_json: str, expected_hash: str) -> dict[str, Any]:
    """The parsed record, `targets` as integers, if `record_json` is canonical and hashes to `expected_hash`;
    else `DecisionError`."""
    try:
        record = loads(record_json)
    except json.JSONDecodeError as error:
        raise DecisionError(f"stored decision record is not JSON: {error}") from error
    if not isinstance(record, dict):
        raise DecisionError("stored decision record is not a JSON object")
    if _is_legacy(record):
        actual = _legacy_hash(record, record_json)
    else:
        actual = decision_hash_of(record)
        parse_canonical(record_json, "stored decision record")
    if actual != expected_hash.lower():
        raise DecisionError(f"decision record hashes to {actual}, not {expected_hash.lower()}")
    return record | {"targets": targets_of(record)}


def _is_legacy(record: Mapping[str, Any]) -> bool:
    """A record journaled before decision bundles and RFC 8785: integer targets, no bundle keys."""
    targets = record.get("targets")
    return (isinstance(targets, Mapping) and bool(targets) and all(_is_uint(a) for a in targets.values())
            and not set(record) & BUNDLE_KEYS)


def _legacy_hash(record: Mapping[str, Any], record_json: str) -> str:
    """The hash of a legacy record as it was taken: over its JSON with sorted keys and no whitespace. Such a
    record still proves what the keeper journaled; it has no bundle, so it cannot be re-executed."""
    check_record({**record, "targets": {market: str(amount) for market, amount in record["targets"].items()}})
    if json.dumps(record, sort_keys=True, separators=(",", ":")) != record_json:
        raise DecisionError("stored decision record is not in canonical form, so its bytes were changed")
    return keccak_hex(record_json)


# -- the model's inputs ------------------------------------------------------------------------------------


def input_tables(history: pd.DataFrame, news: pd.DataFrame | None, pools_meta: pd.DataFrame) -> dict[str,
                                                                                                     pd.DataFrame]:
    """The tables the model reads, by name; the /pools snapshot's timestamp is when it was fetched, not data:
    left out, so that it does not change the hash (the features never read it)."""
    tables = {"history": history, "pools": pools_meta.drop(columns=[TIMESTAMP], errors="ignore")}
    return tables | ({"news": news} if news is not None else {})


def inputs_document(at: pd.Timestamp, tables: Mapping[str, pd.DataFrame]) -> dict[str, Any]:
    """The forecast time and each table (`table_json`): what the inputs hash is taken over."""
    return {"at": _time_text(pd.Timestamp(at))} | {name: table_json(table) for name, table in tables.items()}


def inputs_hash(at: pd.Timestamp, tables: Mapping[str, pd.DataFrame]) -> str:
    """keccak256 naming the model's inputs: the forecast time and each table, exactly as the model saw them."""
    return hash_of(inputs_document(at, tables))


def table_json(table: pd.DataFrame) -> SpelledTable:
    """A table as {"columns": [{"name", "dtype"}], "rows": [[value per column]]}, rows in their order; values:
    floats as numbers (NaN as null), integers as decimal strings, timestamps as UTC ISO text with microseconds,
    missing text as null, lists as arrays."""
    columns = [{"name": str(name), "dtype": str(dtype)} for name, dtype in table.dtypes.items()]
    cells = [_column_cells(table.iloc[:, position]) for position in range(table.shape[1])]
    spelled = SpelledTable(columns=columns, rows=[list(row) for row in zip(*cells, strict=True)] if cells else [])
    if all(_one_kind(dtype) for dtype in table.dtypes):
        spelled._kind = canonical_json(columns)
    return spelled


def _one_kind(dtype: Any) -> bool:
    """Whether `_column_cells` gives a column of `dtype` cells that are equal only when they are spelled alike:
    floats or None, text or None, booleans, integers as text, times as text or None (never True beside 1.0, as
    an object column may hold; -0.0 and 0.0 are both written 0)."""
    return str(dtype) in ("float64", "str", "bool") or dtype.kind in "iuM"


def _column_cells(column: pd.Series) -> list[Any]:
    """`_cell` of each value, by the column's dtype where that is cheaper (the same values: tests compare)."""
    values = column.tolist()
    dtype = column.dtype
    if dtype == "float64":
        return [None if value != value else value for value in values]  # NaN is the only value unequal to itself
    if dtype == "str" or dtype == "bool":
        return [value if type(value) is str or type(value) is bool else _cell(value) for value in values]
    if dtype == _TIME_DTYPE and column.notna().all() and _WRITTEN_YEARS[0] <= column.min().year \
            and column.max().year <= _WRITTEN_YEARS[1]:
        texts = np.datetime_as_string(column.dt.tz_localize(None).to_numpy(), unit="us")
        return [text + "Z" for text in texts.tolist()]
    return [_cell(value) for value in values]


def table_from_json(document: Mapping[str, Any]) -> pd.DataFrame:
    """The table `table_json` encoded, with its column dtypes."""
    columns = document["columns"]
    by_column = list(zip(*document["rows"], strict=True)) if document["rows"] else [() for _ in columns]
    return pd.DataFrame({column["name"]: _column(column["dtype"], list(values))
                         for column, values in zip(columns, by_column, strict=True)})


def table_from_json_or_none(document: Mapping[str, Any] | None) -> pd.DataFrame | None:
    return None if document is None else table_from_json(document)


def _column(dtype: str, values: list[Any]) -> pd.Series:
    if dtype.startswith("datetime64"):
        return pd.Series(pd.to_datetime(values, utc=True, format="ISO8601")).astype(pd.api.types.pandas_dtype(dtype))
    if dtype.startswith(("int", "uint")):
        return pd.Series([int(v) for v in values], dtype=dtype)
    if dtype.startswith("float"):
        return pd.Series([math.nan if v is None else v for v in values], dtype=dtype)
    return pd.Series(values, dtype=dtype)


def _cell(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_cell(item) for item in value]
    if isinstance(value, pd.Timestamp):
        return _time_text(value)
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return str(value)
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return None
    if isinstance(value, float):
        return value  # an infinity is refused by `canonical_json`
    raise DecisionError(f"input table value {value!r} ({type(value).__name__}) has no canonical encoding")


def _time_text(at: pd.Timestamp) -> str:
    if at.tzinfo is None:
        raise DecisionError(f"input time {at} has no time zone")
    return at.tz_convert("UTC").strftime(_TIME_FORMAT)


def _amount_text(amount: int) -> str:
    return str(amount) if _is_uint(amount) else repr(amount)  # a wrong one stays visible to `check_record`


def _is_uint(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0

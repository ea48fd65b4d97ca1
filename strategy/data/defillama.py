"""Parsers for DeFiLlama JSON payloads (yields ``/pools``, yields ``/chart/{pool}``, coins ``/chart/{coins}``).

They take the decoded JSON (as fetched over HTTP or read from a file) and return canonical frames
(`strategy.data.schema`). A malformed payload (``status`` not ``success``, a missing key, a value of the
wrong JSON type) raises `DataError` naming the source, the record (``data[3]``) and the key; implausible or
missing values follow the repair policy of `strategy.data.market` (``strict=False`` drops and logs them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from strategy.data.checks import TIMESTAMP_DTYPE, RecordChecker, float_or_infinite
from strategy.data.errors import DataError, shown
from strategy.data.market import Validated, check_market_records
from strategy.data.schema import (
    APY_BOUNDS,
    MARKET_COLUMNS,
    POOL,
    PRICE_BOUNDS,
    TIMESTAMP,
)


@dataclass(frozen=True)
class _Key:
    """One JSON key of a record: its canonical column name, its JSON type, and whether it must be present."""

    column: str
    kind: str  # "number", "string", "bool", "strings" (list of str) or "time" (ISO string or Unix seconds)
    required: bool = False


_ACCEPTS = {
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "bool": lambda v: isinstance(v, bool),
    "strings": lambda v: isinstance(v, list) and all(isinstance(s, str) for s in v),
    "time": lambda v: isinstance(v, str) or (isinstance(v, (int, float)) and not isinstance(v, bool)),
}
# The exact types each kind accepts outright: what json decodes to, told apart by one look at a column's types.
_PLAIN_TYPES: dict[str, set[type]] = {"number": {int, float}, "string": {str}, "bool": {bool}, "strings": set(),
                                       "time": {str, int, float}}
_TYPE_NAMES = {"number": "a number", "string": "a string", "bool": "true or false",
               "strings": "a list of strings", "time": "an ISO 8601 string or Unix seconds"}

_POOL_KEYS = {
    "pool": _Key(POOL, "string", required=True),
    "chain": _Key("chain", "string", required=True),
    "project": _Key("project", "string", required=True),
    "symbol": _Key("symbol", "string", required=True),
    "tvlUsd": _Key("tvl_usd", "number", required=True),
    "apy": _Key("apy", "number", required=True),
    "apyBase": _Key("apy_base", "number"),
    "apyReward": _Key("apy_reward", "number"),
    "apyMean30d": _Key("apy_mean_30d", "number"),
    "stablecoin": _Key("stablecoin", "bool"),
    "ilRisk": _Key("il_risk", "string"),
    "exposure": _Key("exposure", "string"),
    "underlyingTokens": _Key("underlying_tokens", "strings"),
    "rewardTokens": _Key("reward_tokens", "strings"),
    "poolMeta": _Key("pool_meta", "string"),
}
POOL_COLUMNS = (TIMESTAMP,) + tuple(key.column for key in _POOL_KEYS.values())
# A pool's texts (chain, project, symbol, ...) are a few words; one longer is junk, and dropped: a symbol is cut
# into the words news items are searched for, and a symbol of megabytes would make millions of them.
MAX_POOL_TEXT_CHARS = 1_000

_CHART_KEYS = {
    "timestamp": _Key(TIMESTAMP, "time", required=True),
    "tvlUsd": _Key("tvl_usd", "number", required=True),
    "apy": _Key("apy", "number", required=True),
    "apyBase": _Key("apy_base", "number"),
    "apyReward": _Key("apy_reward", "number"),
}

_PRICE_KEYS = {
    "timestamp": _Key(TIMESTAMP, "time", required=True),
    "price": _Key("price", "number", required=True),
}
COIN_PRICE_COLUMNS = (TIMESTAMP, "coin", "symbol", "price")


def parse_pools(
    payload: object,
    timestamp: pd.Timestamp | str | None = None,
    *,
    where: str = "DeFiLlama /pools",
    strict: bool = False,
) -> pd.DataFrame:
    """One row per pool from a ``/pools`` payload, observed at ``timestamp`` (default: now, UTC).

    Columns: timestamp, pool, chain, project, symbol, tvl_usd, apy, apy_base, apy_reward, apy_mean_30d,
    stablecoin (null → False), il_risk, exposure, underlying_tokens and reward_tokens (lists, null → []),
    pool_meta. Unknown keys are ignored. The snapshot holds thousands of third-party pools, some with
    junk numbers or texts longer than `MAX_POOL_TEXT_CHARS`: with ``strict=False`` those pools are dropped and
    logged.
    """
    records = _records(_success_data(payload, where), where, "data")
    frame = _columns(records, _POOL_KEYS, where, [f"data[{i}]" for i in range(len(records))])
    frame.insert(0, TIMESTAMP, pd.Timestamp.now(tz="UTC") if timestamp is None else pd.Timestamp(timestamp))
    frame["stablecoin"] = frame["stablecoin"].fillna(False).astype(bool)
    for column in ("underlying_tokens", "reward_tokens"):
        frame[column] = [tokens if isinstance(tokens, list) else [] for tokens in frame[column]]
    checker = RecordChecker(frame, where=where, strict=strict, row_labels=[f"data[{i}]" for i in frame.index],
                            field_names=_json_names(_POOL_KEYS))
    for column in ("chain", "project", "symbol", "il_risk", "exposure", "pool_meta"):
        checker.clean_text(column)
        checker.drop_longer_than(column, MAX_POOL_TEXT_CHARS)
    checker.drop_missing(["chain", "project", "symbol"])
    checker.drop_out_of_bounds("apy_mean_30d", *APY_BOUNDS)
    check_market_records(checker, stamped_by_source=False)  # observed at `timestamp`, the reader's
    return checker.result(POOL_COLUMNS)


def parse_chart(pool: str, payload: object, *, where: str | None = None, strict: bool = False) -> pd.DataFrame:
    """Canonical market history rows (without price/utilization) for ``pool`` from a ``/chart/{pool}`` payload."""
    return chart_history(pool, payload, where=where, strict=strict).frame


def chart_history(pool: str, payload: object, *, where: str | None = None, strict: bool = False) -> Validated:
    """`parse_chart` with its `RepairReport`."""
    where = where or f"DeFiLlama /chart/{pool}"
    records = _records(_success_data(payload, where), where, "data")
    labels = [f"data[{i}]" for i in range(len(records))]
    frame = _columns(records, _CHART_KEYS, where, labels)
    frame.insert(1, POOL, pool)
    checker = RecordChecker(frame, where=where, strict=strict, row_labels=labels, field_names=_json_names(_CHART_KEYS))
    check_market_records(checker)
    return Validated(checker.result(MARKET_COLUMNS), checker.report)


def parse_coin_chart(payload: object, *, where: str = "DeFiLlama coins /chart", strict: bool = False) -> pd.DataFrame:
    """Rows (timestamp, coin, symbol, price) from a coins ``/chart`` payload, sorted by (coin, timestamp).

    ``coin`` is DeFiLlama's key, e.g. ``ethereum:0xa0b8…``; prices must be positive.
    """
    if not isinstance(payload, Mapping) or not isinstance(payload.get("coins"), Mapping):
        raise DataError("expected a JSON object with a 'coins' object", where=where, field="coins")
    # One frame for every coin's prices, picked in one pass: a frame per coin costs some 2 ms, and an answer
    # may name any number of coins (a million empty ones fit in the body limit).
    prices, labels, coins, symbols = [], [], [], []
    for coin, entry in payload["coins"].items():
        path = f"coins[{shown(coin)}]"  # the key may be megabytes, and names each of its prices
        if not isinstance(entry, Mapping):
            raise DataError("expected an object", where=where, row=path)
        if not isinstance(entry.get("symbol"), str):
            raise DataError("expected a string", where=where, row=path, field="symbol")
        points = _records(entry.get("prices"), where, f"{path}.prices")
        prices += points
        labels += [f"{path}.prices[{i}]" for i in range(len(points))]
        coins += [coin] * len(points)
        symbols += [entry["symbol"]] * len(points)
    if not prices:
        return pd.DataFrame({TIMESTAMP: pd.Series(dtype=TIMESTAMP_DTYPE), "coin": pd.Series(dtype="str"),
                             "symbol": pd.Series(dtype="str"), "price": pd.Series(dtype="float64")})
    frame = _columns(prices, _PRICE_KEYS, where, labels).assign(coin=coins, symbol=symbols)
    checker = RecordChecker(frame, where=where, strict=strict, row_labels=labels)
    checker.parse_timestamps(TIMESTAMP)
    checker.parse_numbers("price")
    checker.drop_missing([TIMESTAMP, "price"])
    checker.drop_out_of_bounds("price", *PRICE_BOUNDS, low_inclusive=False)
    checker.drop_duplicates(["coin", TIMESTAMP])
    checker.sort_within("coin", TIMESTAMP)
    return checker.result(COIN_PRICE_COLUMNS)


def _json_names(keys: Mapping[str, _Key]) -> dict[str, str]:
    return {key.column: name for name, key in keys.items()}


def _success_data(payload: object, where: str) -> object:
    if not isinstance(payload, Mapping):
        raise DataError(f"expected a JSON object, got {type(payload).__name__}", where=where)
    if payload.get("status") != "success":
        raise DataError(f"status is {shown(payload.get('status'))}, expected 'success'", where=where, field="status")
    if "data" not in payload:
        raise DataError("missing key", where=where, field="data")
    return payload["data"]


def _records(value: object, where: str, path: str) -> list[Mapping]:
    if not isinstance(value, list):
        raise DataError(f"expected a list, got {type(value).__name__}", where=where, field=path)
    for i, record in enumerate(value):
        if not isinstance(record, Mapping):
            raise DataError(f"expected an object, got {type(record).__name__}", where=where, row=f"{path}[{i}]")
    return value


def _columns(records: list[Mapping], keys: Mapping[str, _Key], where: str, labels: list[str]) -> pd.DataFrame:
    """Pick ``keys`` out of JSON records, checking presence and JSON types; columns renamed to canonical."""
    columns = {}
    for name, key in keys.items():
        values = [record.get(name) for record in records]
        if key.required:
            absent = next((i for i, record in enumerate(records) if name not in record), None)
            if absent is not None:
                raise DataError("missing key", where=where, row=labels[absent], field=name)
        accepts = _ACCEPTS[key.kind]
        plain = set(map(type, values)) - {type(None)} <= _PLAIN_TYPES[key.kind]
        wrong = None if plain else next((i for i, v in enumerate(values) if v is not None and not accepts(v)), None)
        if wrong is not None:
            raise DataError(f"expected {_TYPE_NAMES[key.kind]}, got {shown(values[wrong])}",
                            where=where, row=labels[wrong], field=name)
        if key.kind != "number":
            columns[key.column] = pd.Series(values, dtype=object)
            continue
        try:
            columns[key.column] = pd.Series(values, dtype="float64")
        except OverflowError:  # an integer past any float: infinite, so out of every range the checks apply
            columns[key.column] = pd.Series([float_or_infinite(v) for v in values], dtype="float64")
    return pd.DataFrame(columns, index=pd.RangeIndex(len(records)))

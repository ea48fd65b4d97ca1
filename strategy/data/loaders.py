"""Loading canonical tables from files: CSV or Parquet (by suffix), DeFiLlama JSON, RSS/Atom feeds.

Every loader returns `Validated(frame, report)`; the policy (what raises, what is repaired with
``strict=False``) is the one of `strategy.data.market` and `strategy.data.news`. Errors name the file, the
record (``line 7`` of a CSV counting the header as line 1, ``row 3`` of a Parquet file, ``data[3]`` of a
JSON payload, ``item 2`` of a feed) and the column.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pandas as pd

from strategy.data.defillama import chart_history, parse_pools
from strategy.data.errors import DataError, RepairReport
from strategy.data.market import Validated, validate_market_history
from strategy.data.news import feed_news, validate_news
from strategy.data.schema import MARKET_COLUMNS, NEWS_COLUMNS, POOL, TIMESTAMP
from strategy.safe_json import JSONTooDeep, loads

FEED_SUFFIXES = (".xml", ".rss", ".atom")
_T = TypeVar("_T")


def load_market_history(path: str | Path, *, strict: bool = False) -> Validated:
    """Market history from a CSV or Parquet file with canonical columns, a DeFiLlama ``/chart/{pool}`` JSON
    file (the pool id is the file name without ``.json``), or a directory of such JSON files."""
    path = Path(path)
    if path.is_dir():
        return _combine(
            [_load_chart(file, strict) for file in _files(path, (".json",))], [POOL, TIMESTAMP], MARKET_COLUMNS
        )
    if path.suffix.lower() == ".json":
        return _load_chart(path, strict)
    frame, labels = _read_table(path, {POOL: "str"}, ".csv, .parquet, .json or a directory")
    return validate_market_history(frame, where=str(path), strict=strict, row_labels=labels)


def load_news(path: str | Path, *, strict: bool = False) -> Validated:
    """News from a CSV or Parquet file with canonical columns, an RSS/Atom file (``.xml``, ``.rss``, ``.atom``;
    the source is the file name without suffix), or a directory of feed files."""
    path = Path(path)
    if path.is_dir():
        return _combine([_load_feed(file, strict) for file in _files(path, FEED_SUFFIXES)], [TIMESTAMP], NEWS_COLUMNS)
    if path.suffix.lower() in FEED_SUFFIXES:
        return _load_feed(path, strict)
    frame, labels = _read_table(path, {c: "str" for c in NEWS_COLUMNS if c != TIMESTAMP},
                                f".csv, .parquet, {', '.join(FEED_SUFFIXES)} or a directory")
    return validate_news(frame, where=str(path), strict=strict, row_labels=labels)


def load_pools(path: str | Path, timestamp: pd.Timestamp | str | None = None, *, strict: bool = False) -> pd.DataFrame:
    """Pool snapshot and metadata from a saved DeFiLlama ``/pools`` JSON file (see `parse_pools`)."""
    path = Path(path)
    return parse_pools(_read_json(path), timestamp, where=str(path), strict=strict)


def _load_chart(file: Path, strict: bool) -> Validated:
    return chart_history(file.stem, _read_json(file), where=str(file), strict=strict)


def _load_feed(file: Path, strict: bool) -> Validated:
    return feed_news(_read(file, Path.read_bytes), file.stem, where=str(file), strict=strict)


def _files(directory: Path, suffixes: tuple[str, ...]) -> list[Path]:
    files = sorted(f for f in directory.iterdir() if f.is_file() and f.suffix.lower() in suffixes)
    if not files:
        raise DataError(f"no {' / '.join(suffixes)} files in this directory", where=str(directory))
    return files


def _combine(parts: list[Validated], order: list[str], columns: tuple[str, ...]) -> Validated:
    report = RepairReport()
    for part in parts:
        report.extend(part.report)
    frame = pd.concat([part.frame for part in parts], ignore_index=True)
    return Validated(frame[[c for c in columns if c in frame]].sort_values(order, ignore_index=True), report)


def _read_json(path: Path) -> object:
    text = _read(path, Path.read_text)
    try:
        return loads(text)
    except JSONTooDeep as error:
        raise DataError(f"malformed JSON: {error}", where=str(path)) from None
    except json.JSONDecodeError as error:
        raise DataError(f"malformed JSON: {error.msg} (column {error.colno})", where=str(path),
                        row=f"line {error.lineno}") from error


def _read_table(path: Path, dtypes: dict[str, str], accepted: str) -> tuple[pd.DataFrame, list[str]]:
    """The table and a label per record as the user would find it in the file; `accepted` names what the
    caller reads, for the error on any other suffix."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        frame = _read(path, lambda p: pd.read_csv(p, dtype=dtypes))
        lines = _read(path, _csv_record_lines)
        labels = [f"line {n}" for n in lines] if len(lines) == len(frame) else [f"record {i + 1}" for i in frame.index]
        return frame, labels
    if suffix == ".parquet":
        frame = _read(path, pd.read_parquet)
        return frame, [f"row {i}" for i in range(len(frame))]
    raise DataError(f"unsupported file type {suffix!r} (expected {accepted})", where=str(path))


def _csv_record_lines(path: Path) -> list[int]:
    """First line number of every data record (pandas skips blank lines, and a quoted field may span lines)."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        starts, end = [], reader.line_num
        for record in reader:
            if record:
                starts.append(end + 1)
            end = reader.line_num
    return starts


def _read(path: Path, reader: Callable[[Path], _T]) -> _T:
    """Run ``reader`` on ``path``, turning I/O and format errors into a `DataError` naming the file."""
    if path.exists() and not path.is_file():  # opening a FIFO blocks until a writer comes, a device never ends
        kind = "a directory" if path.is_dir() else "a FIFO, socket or device"
        raise DataError(f"cannot read file: it is {kind}, not a regular file", where=str(path))
    try:
        return reader(path)
    except (OSError, ValueError) as error:  # includes pandas' parser errors and invalid UTF-8
        raise DataError(f"cannot read file: {error}", where=str(path)) from error

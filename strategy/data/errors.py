"""The one exception type for bad input data, and the record of repairs made instead of failing."""

from __future__ import annotations

import logging
import reprlib
from dataclasses import dataclass, field

logger = logging.getLogger("strategy.data")

# How much of a value from outside an error message or a record's label shows: a source's value (a key, a
# timestamp, a list) may be megabytes long, and a label is made for each of its records.
SHOWN_CHARS = 200
_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = SHOWN_CHARS
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict, _SHORT.maxtuple = 3, 10, 10, 10


def shown(value: object) -> str:
    """`repr(value)`, at most `SHOWN_CHARS` characters of it and "...": what a message names."""
    return _cut(_SHORT.repr(value))  # a long string or list is not spelled whole first


def _cut(text: str) -> str:
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "..."


class Shown:
    """A value as a message's `str.format` shows it: `{value}` and `{value!r}` at most `SHOWN_CHARS` long."""

    def __init__(self, value: object) -> None:
        self.value = value

    def __repr__(self) -> str:
        return shown(self.value)

    def __str__(self) -> str:
        return _cut(str(self.value))

    def __format__(self, spec: str) -> str:
        return format(self.value, spec) if spec else str(self)


class DataError(ValueError):
    """Malformed or implausible input data.

    ``where`` is the file path or URL, ``row`` a label for the offending record as the user would find it
    (``"line 7"`` of a CSV file, ``"data[3]"`` of a JSON payload, ``"row 3"`` of a Parquet file or frame),
    ``field`` the column or JSON key. ``reason`` is the message without the location.
    """

    def __init__(self, reason: str, *, where: str | None = None, row: str | None = None, field: str | None = None):
        self.reason, self.where, self.row, self.field = reason, where, row, field
        location = ", ".join(part for part in (where, row, f"field '{field}'" if field else None) if part)
        super().__init__(f"{location}: {reason}" if location else reason)


@dataclass(frozen=True)
class Repair:
    """One kind of repair applied to some records of one source."""

    where: str
    action: str  # what was done, e.g. "dropped exact duplicate row"
    field: str | None
    rows: tuple[str, ...]  # labels of the records concerned


@dataclass
class RepairReport:
    """Every repair a loader made instead of raising (``strict=False``); empty when the input was clean."""

    repairs: list[Repair] = field(default_factory=list)

    def record(self, where: str, action: str, field: str | None, rows: list[str]) -> None:
        repair = Repair(where, action, field, tuple(rows))
        self.repairs.append(repair)
        shown = ", ".join(repair.rows[:5]) + (", ..." if len(repair.rows) > 5 else "")
        logger.warning("%s: %s (%s, %d rows: %s)", where, action, field or "row", len(repair.rows), shown)

    def extend(self, other: RepairReport) -> None:
        self.repairs.extend(other.repairs)

    def counts(self) -> dict[str, int]:
        """Number of records per action."""
        totals: dict[str, int] = {}
        for repair in self.repairs:
            totals[repair.action] = totals.get(repair.action, 0) + len(repair.rows)
        return totals

    @property
    def total(self) -> int:
        return sum(len(repair.rows) for repair in self.repairs)

    def __bool__(self) -> bool:
        return bool(self.repairs)

"""Record-level checks shared by every loader: each problem either raises a located `DataError` or, when
``strict`` is off and the problem has a safe repair, is repaired and recorded in a `RepairReport`.

Problems without a safe repair (unparseable values, wrong types, two different records for the same key)
always raise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from strategy.data.errors import DataError, RepairReport, Shown

TIMESTAMP_DTYPE = "datetime64[us, UTC]"
# When a record of a market can be from: none predates Bitcoin's first block, and a row of the year 9999 (a
# glitch, a placeholder) would stretch a history's daily grid over 8,000 years (16 GB before it was refused).
PLAUSIBLE_TIMESTAMPS = (pd.Timestamp("2009-01-03", tz="UTC"), pd.Timestamp("2100-01-01", tz="UTC"))
_LABEL = "__source_row__"  # where each record came from, carried along until the result is taken


class RecordChecker:
    """Holds a frame of records under check, with each record's source label for error messages."""

    def __init__(
        self,
        frame: pd.DataFrame,
        *,
        where: str,
        strict: bool,
        row_labels: Sequence[str] | None = None,
        field_names: Mapping[str, str] | None = None,
        report: RepairReport | None = None,
    ):
        """``row_labels`` name the records and ``field_names`` the columns as the source does (JSON keys)."""
        labels = list(row_labels) if row_labels is not None else [f"row {i}" for i in range(len(frame))]
        if len(labels) != len(frame):
            raise ValueError("row_labels must have one label per record")
        self.frame = frame.reset_index(drop=True).assign(**{_LABEL: labels})
        self.where, self.strict = where, strict
        self.field_names = dict(field_names or {})
        self.report = report if report is not None else RepairReport()

    # -- outcomes -------------------------------------------------------------------------------------
    def reject(self, mask: pd.Series, field: str | None, reason: str) -> None:
        """Raise for the first flagged record; ``reason`` may use ``{value}`` (the record's value of field)."""
        if not mask.any():
            return
        first = mask.to_numpy().nonzero()[0][0]
        value = Shown(self.frame[field].iloc[first] if field in self.frame else None)  # a source's, of any length
        raise DataError(
            reason.format(value=value), where=self.where, row=self.frame[_LABEL].iloc[first], field=self._name(field)
        )

    def repair(self, mask: pd.Series, field: str | None, reason: str, action: str) -> bool:
        """In strict mode raise like `reject`; otherwise record the repair. True when records are flagged."""
        if not mask.any():
            return False
        if self.strict:
            self.reject(mask, field, reason)
        self.report.record(self.where, action, self._name(field), self.frame.loc[mask, _LABEL].tolist())
        return True

    def _name(self, field: str | None) -> str | None:
        return self.field_names.get(field, field) if field else field

    def drop(self, mask: pd.Series, field: str | None, reason: str, action: str | None = None) -> None:
        """Drop the flagged records (recorded as ``action``), or raise in strict mode."""
        if self.repair(mask, field, reason, action or f"dropped record: {field} {reason}"):
            self.frame = self.frame.loc[~mask].reset_index(drop=True)

    # -- structure --------------------------------------------------------------------------------------
    def require_columns(self, columns: Sequence[str]) -> None:
        for column in columns:
            if column not in self.frame:
                raise DataError(
                    f"missing column (required: {', '.join(columns)})", where=self.where, field=self._name(column)
                )

    def add_missing_columns(self, columns: Sequence[str]) -> None:
        for column in columns:
            if column not in self.frame:
                self.frame[column] = np.nan

    # -- value types ------------------------------------------------------------------------------------
    def parse_timestamps(self, column: str) -> None:
        """ISO 8601 strings (naive ones are read as UTC), datetimes, or Unix seconds → UTC timestamps."""
        raw = self.frame[column]
        if isinstance(raw.dtype, pd.DatetimeTZDtype):
            parsed = raw.dt.tz_convert("UTC")
        elif pd.api.types.is_datetime64_dtype(raw):
            parsed = raw.dt.tz_localize("UTC")
        elif (kind := _kind(raw)) == "string":  # what sources send: parsed in one pass
            parsed = pd.to_datetime(raw.astype("str").str.strip(), utc=True, format="ISO8601", errors="coerce")
        elif kind == "integer":  # Unix seconds, every one
            parsed = pd.to_datetime(_numeric(raw), unit="s", utc=True, errors="coerce")
        else:
            is_number = raw.map(lambda v: isinstance(v, (int, float, np.number)) and not isinstance(v, bool))
            seconds = _numeric(raw.where(is_number))
            text = raw.where(~is_number & raw.notna(), None).astype(object)
            text = text.where(text.isna(), text.astype(str).str.strip())
            parsed = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
            parsed = parsed.where(~is_number, pd.to_datetime(seconds, unit="s", utc=True, errors="coerce"))
        self.reject(parsed.isna() & raw.notna(), column, "unparseable timestamp {value!r}")
        self.frame[column] = parsed.astype(TIMESTAMP_DTYPE)

    def drop_implausible_times(self, column: str) -> None:
        """Records stamped outside PLAUSIBLE_TIMESTAMPS are dropped, as other glitches are."""
        earliest, latest = PLAUSIBLE_TIMESTAMPS
        stamps = self.frame[column]
        self.drop((stamps < earliest) | (stamps >= latest), column,
                  f"{{value}} is not between {earliest.date()} and {latest.date()}",
                  f"dropped record: {column} not between {earliest.date()} and {latest.date()}")

    def parse_numbers(self, column: str) -> None:
        raw = self.frame[column]
        if raw.dtype == "float64":
            return  # numbers already (a JSON reader's number columns): nothing to parse
        if pd.api.types.is_bool_dtype(raw):
            self.reject(raw.notna(), column, "expected a number, got {value!r}")
        parsed = _numeric(raw).astype("float64")
        self.reject(parsed.isna() & raw.notna(), column, "expected a number, got {value!r}")
        self.frame[column] = parsed

    def clean_text(self, column: str) -> None:
        """Strings stripped of surrounding space; empty strings become missing."""
        raw = self.frame[column]
        if _kind(raw) == "string":  # none missing: stripped in one pass
            text = raw.astype("str").str.strip()
            self.frame[column] = text.where(text != "")
            return
        text = raw.where(raw.isna(), raw.astype(str).str.strip())
        text = text.where(text != "")
        self.frame[column] = text.astype("str").where(text.notna())

    def drop_longer_than(self, column: str, limit: int) -> None:
        """Records whose text in ``column`` is longer than ``limit`` characters are dropped, as other glitches are."""
        self.drop(self._longer_than(column, limit), column, f"is longer than {limit:,} characters",
                  f"dropped record: {column} longer than {limit:,} characters")

    def cut_longer_than(self, column: str, limit: int) -> None:
        """Texts in ``column`` longer than ``limit`` characters are cut to their first ``limit`` (recorded)."""
        long = self._longer_than(column, limit)
        if self.repair(long, column, f"is longer than {limit:,} characters", f"cut {column} to {limit:,} characters"):
            self.frame.loc[long, column] = self.frame.loc[long, column].str.slice(0, limit)

    def _longer_than(self, column: str, limit: int) -> pd.Series:
        """Where the text (as `clean_text` leaves it: strings or missing) is longer than ``limit``."""
        lengths = self.frame[column].str.len().fillna(0)
        return pd.Series(lengths.to_numpy() > limit, index=self.frame.index)

    # -- values -----------------------------------------------------------------------------------------
    def drop_missing(self, columns: Sequence[str]) -> None:
        for column in columns:
            self.drop(self.frame[column].isna(), column, "missing value")

    def drop_out_of_bounds(self, column: str, low: float, high: float, *, low_inclusive: bool = True) -> None:
        """Records outside [low, high] are dropped; an infinite value is never in range, whatever the bounds
        (a TVL of inf would pass a bound of inf and then poison every sum and ratio it enters)."""
        values = self.frame[column]
        below = values < low if low_inclusive else values <= low
        opening = "[" if low_inclusive and math.isfinite(low) else "("
        closing = "]" if math.isfinite(high) else ")"
        bounds = f"{opening}{low:g}, {high:g}{closing}"
        self.drop(below | (values > high) | np.isinf(values), column, f"{{value}} is outside {bounds}",
                  f"dropped record: {column} outside {bounds}")

    def drop_duplicates(self, keys: Sequence[str], compare: Sequence[str] | None = None) -> None:
        """Exact repeats of a record (equal in ``compare``, default all columns) are dropped (recorded);
        different records for the same key always raise."""
        values = list(compare) if compare is not None else [c for c in self.frame.columns if c != _LABEL]
        if set(keys) <= set(values) and self._unique(keys):
            return  # no key repeats, so no record does: the common case, one look at the keys
        exact = self.frame.duplicated(values)
        self.repair(exact, keys[0], "exact duplicate of an earlier record", "dropped exact duplicate record")
        self.frame = self.frame.loc[~exact].reset_index(drop=True)
        clash = self.frame.duplicated(list(keys), keep=False)
        if clash.any():
            first_key = self.frame.loc[clash, list(keys)].iloc[0]
            same = (self.frame[list(keys)] == first_key).all(axis=1)
            also = self.frame.loc[same, _LABEL].iloc[1:]
            others = ", ".join(also.iloc[:5]) + (f" and {len(also) - 5:,} more" if len(also) > 5 else "")
            key_text = ", ".join(f"{k}={Shown(first_key[k])}" for k in keys)
            self.reject(same, keys[-1], f"duplicated key ({key_text}) with different values (also {others})")

    def sort_within(self, group: str, order: str) -> None:
        """Records of a group going backwards in ``order`` are an error in strict mode; the result is sorted."""
        if self._sorted_by(group, order):
            return
        backwards = self.frame.groupby(group, sort=False)[order].diff() < pd.Timedelta(0)
        self.repair(
            backwards, order, f"{order} {{value}} is earlier than the previous record of this {group}",
            f"sorted records by ({group}, {order})",
        )
        self.frame = self.frame.sort_values([group, order], kind="stable").reset_index(drop=True)

    def _unique(self, keys: Sequence[str]) -> bool:
        return not self.frame.duplicated(list(keys)).any()

    def _sorted_by(self, group: str, order: str) -> bool:
        """Whether the records are in (group, order) order already, none missing either: what a source's
        history of one pool, oldest first, always is, told by one pass over the group codes and times."""
        codes, _ = pd.factorize(self.frame[group], sort=True)
        stamps = self.frame[order]
        if (codes < 0).any() or not isinstance(stamps.dtype, pd.DatetimeTZDtype) or stamps.isna().any():
            return False
        times = stamps.array.asi8
        code_steps = np.diff(codes)
        return bool(((code_steps > 0) | ((code_steps == 0) & (np.diff(times) >= 0))).all())

    def result(self, columns: Sequence[str]) -> pd.DataFrame:
        return self.frame[[c for c in columns if c in self.frame]].reset_index(drop=True)


def float_or_infinite(value: object) -> object:
    """An integer as the float it rounds to, or an infinity of its sign past the largest; anything else as it is."""
    if type(value) is not int:
        return value
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _numeric(values: pd.Series) -> pd.Series:
    """`pd.to_numeric` (what is no number: missing), an integer past any float infinite, so out of every range
    (pandas raises OverflowError on one of 300-odd digits)."""
    try:
        return pd.to_numeric(values, errors="coerce")
    except OverflowError:
        return pd.to_numeric(values.map(float_or_infinite), errors="coerce")


def _kind(values: pd.Series) -> str:
    """pandas' name for what `values` hold, missing values counted ("string": text, every one)."""
    return pd.api.types.infer_dtype(values, skipna=False)

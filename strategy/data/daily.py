"""The daily grid that features and targets are computed on.

DeFiLlama records about one point a day per pool, at a different time of day for each pool. Features need
the pools on common timestamps, so a history is first aligned to UTC midnights with `align_to_daily`. An
observation is labelled with the first midnight at or after it, i.e. the row at midnight ``D`` holds what
was known at ``D`` — never data from later in the day (no look-ahead from the labelling).

`DailyPanel` turns an aligned history into wide frames (gap-free days × pools) so that windows count days,
and maps results back to the history's rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

import numpy as np
import pandas as pd

from strategy.data.errors import DataError
from strategy.data.schema import POOL, TIMESTAMP


def align_to_daily(history: pd.DataFrame) -> pd.DataFrame:
    """Canonical history with timestamps moved up to the next UTC midnight (kept when already midnight),
    keeping the last observation per pool and day. Idempotent."""
    aligned = history.sort_values([POOL, TIMESTAMP], kind="stable").assign(
        **{TIMESTAMP: history[TIMESTAMP].dt.ceil("D")}
    )
    return aligned.drop_duplicates([POOL, TIMESTAMP], keep="last").reset_index(drop=True)


class DailyPanel:
    """A daily-aligned canonical history viewed as wide frames indexed by every day from first to last."""

    def __init__(self, history: pd.DataFrame):
        for column in (TIMESTAMP, POOL):
            if column not in history:
                raise DataError("missing column", where="market history", field=column)
        timestamps = history[TIMESTAMP]
        off_grid = (timestamps != timestamps.dt.normalize()).to_numpy()
        if off_grid.any():
            raise DataError(
                f"{timestamps.iloc[off_grid.argmax()]} is not a UTC midnight; align the history with "
                "strategy.data.align_to_daily first",
                where="market history", row=f"row {off_grid.argmax()}", field=TIMESTAMP,
            )
        self.history = history
        self.days = pd.date_range(timestamps.min(), timestamps.max(), freq="D", name=TIMESTAMP)
        self._rows = self.days.get_indexer(pd.Index(timestamps))
        self._cols, pools = pd.factorize(history[POOL], sort=True)  # each row's pool number and the sorted pools
        if (self._cols < 0).any():
            raise DataError("missing pool", where="market history", row=f"row {self._cols.argmin()}", field=POOL)
        self.pools = pd.Index(pools, name=POOL)
        # (day, pool) cells: as the days and pools are distinct, a cell named twice is a repeated (pool, day)
        if len(history) and np.bincount(self._rows * len(self.pools) + self._cols).max() > 1:
            raise DataError("more than one row per pool and day", where="market history", field=TIMESTAMP)

    def wide(self, column: str) -> pd.DataFrame:
        """Days × pools; NaN where a pool has no row that day (or the history lacks the optional column)."""
        values = np.full((len(self.days), len(self.pools)), np.nan)
        if column in self.history:
            values[self._rows, self._cols] = self.history[column].to_numpy(dtype="float64")
        return pd.DataFrame(values, index=self.days, columns=self.pools)

    def per_pool(self, values: pd.Series | None) -> pd.DataFrame:
        """A per-pool series (indexed by pool) broadcast to days × pools; NaN for pools it lacks, or all NaN."""
        row = np.full(len(self.pools), np.nan) if values is None else values.reindex(self.pools).to_numpy("float64")
        return pd.DataFrame(np.broadcast_to(row, (len(self.days), len(self.pools))), index=self.days,
                            columns=self.pools)

    def long(self, wide_frames: Mapping[str, pd.DataFrame | np.ndarray]) -> pd.DataFrame:
        """One column per wide frame, one row per history row, indexed by (timestamp, pool) in that order.
        An array is taken as days × pools of the panel already; a frame is first put on the panel's grid.

        The rows are gathered in that order into one matrix, column by column, that becomes the frame as it
        is: one copy of the result beside the wide frames (a frame built from a dict of columns and then
        sorted held three)."""
        order = np.lexsort((self._cols, self._rows))  # by day, then pool: the days and pools are sorted
        rows, cols = self._rows[order], self._cols[order]
        matrix = np.empty((len(wide_frames), len(order)), dtype="float64")
        for i, frame in enumerate(wide_frames.values()):
            values = frame if isinstance(frame, np.ndarray) else \
                frame.reindex(index=self.days, columns=self.pools).to_numpy(dtype="float64")
            matrix[i] = values[rows, cols]
        return pd.DataFrame(matrix.T, index=self._long_index(order, rows, cols), columns=list(wide_frames),
                            copy=False)

    def _long_index(self, order: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> pd.MultiIndex:
        """`MultiIndex.from_arrays` of the rows' timestamps and pools in `order`, from the day and pool numbers
        known already: the levels are the days that have rows and the pools, as it would factorise them."""
        _, first, day_codes = np.unique(rows, return_index=True, return_inverse=True)
        days = pd.Index(self.history[TIMESTAMP].array.take(order[first]), name=TIMESTAMP)
        codes = cast("list[Sequence[int]]", [day_codes, cols])  # arrays: pandas' stubs ask for sequences
        return pd.MultiIndex(levels=[days, self.pools], codes=codes, names=[TIMESTAMP, POOL],
                             verify_integrity=False)

"""Trailing windows over days × pools arrays, every pool in one pandas rolling call.

`DataFrame.rolling` runs its kernel once per column, with its setup each time; on a panel of a few hundred
days that setup is most of the cost. Here the columns are laid end to end in one series and every window is
cut at its column's first day, so one call computes them all, by the same kernels on the same values in the
same order. The bits are the frame's rolling's: a kernel starts its running sums afresh where a window does not
overlap the one before, as at a column's first day (tests/strategy/test_windows.py compares them).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.api.indexers import BaseIndexer


class _ColumnWindows(BaseIndexer):
    """Trailing windows of `window_size` rows over columns of `days` rows laid end to end; none crosses into
    the column before."""

    window_size: int  # set by BaseIndexer's keyword arguments, as `days` is
    days: int

    def get_window_bounds(self, num_values: int = 0, min_periods: int | None = None, center: bool | None = None,
                          closed: str | None = None, step: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        end = np.arange(1, num_values + 1, dtype=np.int64)
        first = (end - 1) // self.days * self.days  # the first row of each row's column
        return np.maximum(end - self.window_size, first), end


def trailing(values: np.ndarray, window: int, min_periods: int, how: str,
             other: np.ndarray | None = None) -> np.ndarray:
    """`DataFrame(values).rolling(window, min_periods=min_periods).<how>()` (``how(other)`` for cov) as a
    days × pools array."""
    rolling = _flat(values).rolling(_ColumnWindows(window_size=window, days=len(values)), min_periods=min_periods)
    result = getattr(rolling, how)() if other is None else getattr(rolling, how)(_flat(other))
    return result.to_numpy().reshape(values.shape, order="F")


def _flat(values: np.ndarray) -> pd.Series:
    """The columns end to end."""
    return pd.Series(values.ravel(order="F"))

"""`strategy.data.daily.DailyPanel`: wide frames of a daily history and back to its rows."""

import numpy as np
import pandas as pd
import pytest

from strategy.data.daily import DailyPanel
from strategy.data.errors import DataError
from strategy.data.schema import POOL, TIMESTAMP


def test_long_gives_every_history_row_once_sorted_by_day_then_pool_whatever_the_input_order() -> None:
    days = pd.date_range("2024-01-01", periods=5, freq="D", tz="UTC")
    rng = np.random.default_rng(3)
    rows = [(day, pool, float(rng.normal())) for pool in ("b", "a", "c") for day in days
            if not (pool == "c" and day.day in (2, 3))]  # a pool with a gap, pools out of order
    history = pd.DataFrame(rows, columns=[TIMESTAMP, POOL, "apy"]).sample(frac=1.0, random_state=1)
    panel = DailyPanel(history.reset_index(drop=True))
    apy = panel.wide("apy")
    long = panel.long({"apy": apy, "doubled": apy * 2})

    expected = history.sort_values([TIMESTAMP, POOL]).set_index([TIMESTAMP, POOL])["apy"]
    assert long.index.equals(expected.index) and long.index.names == [TIMESTAMP, POOL]
    assert long["apy"].tolist() == expected.tolist() and (long["doubled"] == 2 * long["apy"]).all()
    assert list(long.columns) == ["apy", "doubled"] and long.dtypes.eq("float64").all()


@pytest.mark.parametrize(("pools", "message"), [
    (["a", "b", "a"], "more than one row per pool and day"),  # a's first day twice
    (["a", None, "b"], "row 1, field 'pool': missing pool"),
])
def test_a_repeated_pool_day_or_a_row_without_a_pool_is_a_data_error(pools, message) -> None:
    day = pd.Timestamp("2024-01-01", tz="UTC")
    history = pd.DataFrame({TIMESTAMP: [day, day, day], POOL: pools, "apy": [1.0, 2.0, 3.0]})
    with pytest.raises(DataError, match=message):
        DailyPanel(history)

"""The trailing-best rule: each pool's mean APY over the last `TRAILING_DAYS` days, as a forecast without risk.

It needs no training and chases what paid best lately. The backtest's `trailing-best` baseline is this rule,
and it decides instead of the model whenever `strategy.models.promotion` does not trust one, in the keeper
and in the ML backtest alike. `RULE_HASH` names it in a decision record's ``model_hash``, where a model's
content hash names the model (`strategy.decision_record`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import numpy as np
import pandas as pd

from strategy.allocator import MarketForecast
from strategy.data.schema import POOL, TIMESTAMP
from strategy.decision_record import keccak_hex

TRAILING_DAYS = 7
RULE_HASH = keccak_hex(f"vaultbot rule trailing-best: mean APY over the trailing {TRAILING_DAYS} days")


def decided_by(model_hash: str) -> str:
    """What a decision record's `model_hash` says decided, in words."""
    return "the trailing-best rule" if model_hash == RULE_HASH else f"the model {model_hash}"


def trailing_best(history: pd.DataFrame, day: pd.Timestamp) -> dict[str, MarketForecast]:
    """A forecast for every pool with a row on `day`: its mean APY over (day - `TRAILING_DAYS`, day]."""
    return trailing_best_days(history, [day])[day]


def trailing_best_days(history: pd.DataFrame, days: Sequence[pd.Timestamp]
                       ) -> dict[pd.Timestamp, dict[str, MarketForecast]]:
    """`trailing_best` on each of `days`, from one grouping of every day's window.

    Each window's rows are taken by position from the columns (copying whole rows was most of a replay's cost),
    then one pandas mean per (day, pool): the same rows in the same order as a mean per pool of that day alone,
    so the same forecast to the bit. A replay asks every day; one grouping for all of them costs about what
    one day's did.
    """
    stamps = pd.DatetimeIndex(history[TIMESTAMP]).as_unit("ns").asi8
    pools = np.asarray(history[POOL].array)
    apy = history["apy"].to_numpy()
    span = pd.Timedelta(days=TRAILING_DAYS).value
    ends = [pd.Timestamp(day).as_unit("ns").value for day in days]
    windows = [np.flatnonzero((stamps > end - span) & (stamps <= end)) for end in ends]
    rows = np.concatenate([np.empty(0, dtype=np.intp), *windows])
    of_day = np.repeat(np.arange(len(ends)), [len(window) for window in windows])
    means = pd.Series(apy[rows]).groupby([of_day, pools[rows]]).mean()
    forecasts: dict[pd.Timestamp, dict[str, MarketForecast]] = {day: {} for day in days}
    alive = [set(pools[window[stamps[window] == end]]) for window, end in zip(windows, ends, strict=True)]
    for key, mean in means.items():
        i, pool = cast(tuple[int, str], key)
        if pool in alive[i]:
            forecasts[days[i]][str(pool)] = MarketForecast(apy_pct=float(mean), p_event=0.0)
    return forecasts

"""The trailing-best rule: each pool's mean APY over the last `TRAILING_DAYS` days, as a forecast without risk.

It needs no training and chases what paid best lately. The backtest's `trailing-best` baseline is this rule,
and it decides instead of the model whenever `strategy.models.promotion` does not trust one, in the keeper
and in the ML backtest alike. `RULE_HASH` names it in a decision record's ``model_hash``, where a model's
content hash names the model (`strategy.decision_record`).
"""

from __future__ import annotations

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
    stamps = history[TIMESTAMP]
    # Columns cut by position, not a frame by rows: a replay asks every day, and copying whole rows was most of
    # its cost. The mean is pandas' per pool all the same, so the forecast is the same to the bit.
    recent = ((stamps > day - pd.Timedelta(days=TRAILING_DAYS)) & (stamps <= day)).to_numpy()
    pools = np.asarray(history[POOL].array[recent])
    alive = set(pools[(stamps == day).to_numpy()[recent]])
    means = pd.Series(history["apy"].to_numpy()[recent]).groupby(pools).mean()
    return {str(pool): MarketForecast(apy_pct=float(apy), p_event=0.0) for pool, apy in means.items()
            if pool in alive}

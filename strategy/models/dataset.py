"""The table the models learn from and predict on: point-in-time features, the persistence baseline and
the targets, one row per (timestamp, pool) of a daily-aligned canonical history.

The yield models forecast the forward mean APY as a correction to persistence: ``BASELINE`` (the trailing
7-day mean APY, the rows of days t-6 ... t that exist) plus a learnt residual, so that where they know
nothing better they fall back to the baseline they are measured against.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from strategy.data.daily import DailyPanel
from strategy.data.schema import TIMESTAMP
from strategy.features import wide_features
from strategy.features.windows import trailing
from strategy.targets import FWD_APY_MEAN, WORST_FALL, TargetParams, build_targets

BASELINE = "apy_mean_7d"
BASELINE_DAYS = 7
YIELD_TARGET = FWD_APY_MEAN
RISK_TARGET = "adverse_event"


def persistence_apy(history: pd.DataFrame, days: int = BASELINE_DAYS) -> pd.Series:
    """Mean APY of each pool over days t-days+1 ... t (the rows there are), indexed by (timestamp, pool)."""
    panel = DailyPanel(history)
    return panel.long({BASELINE: _trailing_apy(panel, days)})[BASELINE]


def _trailing_apy(panel: DailyPanel, days: int) -> np.ndarray:
    return trailing(panel.wide("apy").to_numpy(), days, 1, "mean")


def model_features(history: pd.DataFrame, news: pd.DataFrame | None, pools_meta: pd.DataFrame | None) -> pd.DataFrame:
    """`strategy.features.build_features` plus the persistence baseline; every value at t uses only data known
    at t. One panel, gathered into rows once, for both."""
    panel = DailyPanel(history)
    features = wide_features(panel, news, pools_meta)
    features[BASELINE] = _trailing_apy(panel, BASELINE_DAYS)
    return panel.long(features)


def labelled_targets(history: pd.DataFrame, news: pd.DataFrame | None, pools_meta: pd.DataFrame | None,
                     params: TargetParams) -> pd.DataFrame:
    """The two targets the models learn (NaN where the horizon is not complete in `history`), and the worst
    price fall that measures what an event costs (`strategy.targets.mean_event_loss`)."""
    return build_targets(history, pools_meta, params, news)[[YIELD_TARGET, RISK_TARGET, WORST_FALL]]


def known_at(history: pd.DataFrame, news: pd.DataFrame | None, at: pd.Timestamp
             ) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The market rows and news items with timestamp <= at."""
    history = history[history[TIMESTAMP] <= at]
    return history, None if news is None else news[news[TIMESTAMP] <= at]


def utc(at: pd.Timestamp | str) -> pd.Timestamp:
    """`at` as a UTC timestamp (a naive one is taken as UTC)."""
    at = pd.Timestamp(at)
    return at.tz_localize("UTC") if at.tzinfo is None else at.tz_convert("UTC")

"""Per-pool forecasts for the allocator from a model artifact, or from the rule the promotion policy trusts
(`policy_forecasts`), using only what is known at the decision time."""

from __future__ import annotations

import logging
import math
from typing import cast

import pandas as pd

from strategy.allocator import MarketForecast
from strategy.data.schema import TIMESTAMP
from strategy.models.artifact import ModelArtifact
from strategy.models.dataset import known_at, model_features, utc
from strategy.models.promotion import MODEL, TRAILING_BEST, Known, PolicyState
from strategy.trailing_best import RULE_HASH, trailing_best

log = logging.getLogger(__name__)


def forecast_at(artifact: ModelArtifact, history: pd.DataFrame, news: pd.DataFrame | None,
                pools_meta: pd.DataFrame | None, at: pd.Timestamp) -> dict[str, MarketForecast]:
    """A forecast for every pool with a row on the day of `at` (UTC), from market rows and news up to `at`.

    `history` is canonical and daily-aligned (`strategy.data.align_to_daily`); later rows and news are
    ignored, so the answer is the same whatever the tables hold after `at`.
    """
    at = utc(at)
    history, news = known_at(history, news, at)
    day = at.floor("D")
    if history.empty or not (history[TIMESTAMP] == day).any():
        return {}
    # one day's rows, indexed by pool: a frame, never the Series the stubs allow for
    features = cast(pd.DataFrame, model_features(history, news, pools_meta).xs(day, level=TIMESTAMP))
    return forecasts_from(artifact, features, day)


def forecasts_from(artifact: ModelArtifact, features: pd.DataFrame, day: pd.Timestamp) -> dict[str, MarketForecast]:
    """A forecast per pool from its `model_features` row of `day` (`features` indexed by pool); pools whose
    prediction is not finite are left out, with a warning."""
    if features.empty:
        return {}
    predictions = artifact.predict(features)
    loss_given_event = artifact.metadata.loss_given_event
    forecasts = {}
    for pool, row in predictions.iterrows():
        apy, p_event = float(row["apy_pred"]), float(row["p_event"])
        if not (math.isfinite(apy) and math.isfinite(p_event)):
            log.warning("no forecast for pool %s on %s: the model's prediction is not finite", pool, day.date())
            continue
        forecasts[str(pool)] = MarketForecast(apy_pct=apy, p_event=p_event, loss_given_event=loss_given_event)
    return forecasts



def policy_forecasts(state: PolicyState, known: Known, day: pd.Timestamp) -> tuple[dict[str, MarketForecast],
                                                                                 str | None]:
    """The forecasts of what `strategy.models.promotion` trusts on `day` and the hash naming it in a decision
    record: the champion and its content hash, or the trailing-best rule and `RULE_HASH`; ({}, None) while no
    challenger has trained yet."""
    if state.rule == MODEL:
        champion = state.champion
        assert champion is not None  # what the rule MODEL means (`PolicyState.rule`)
        return forecasts_from(champion, known.features_on(day), day), champion.content_hash
    if state.rule == TRAILING_BEST:
        return trailing_best(known.history, day), RULE_HASH
    return {}, None

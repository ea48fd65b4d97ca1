"""The model strategy as a forecaster: the keeper's retraining-and-promotion policy, replayed day by day.

Each decision steps `strategy.models.promotion.advance` on the market as known that day, exactly as each keeper
cycle does, so the backtest measures what the keeper does: a challenger is trained on everything known then
(`train_artifact(..., train_end=now)`, which purges rows whose horizon reaches past it) at the first decision
and every `retrain_every_days`, promoted only past the gate, and the trailing-best rule decides while the
champion's realised error is worse than persistence's (`strategy.forecast.policy_forecasts`). Every training
reads its features from the view's one build over the whole data (point-in-time, so the same bits as building
them on the cut), and a challenger's trial trains its yield booster alone (`train_yield_model`), all the gate
scores it by: the same decisions as the keeper's, at a fraction of the cost.

Warm-up: early in a history there is too little labelled data to train on (`train_artifact` raises
`ModelError`). Until a challenger has trained the forecaster gives no forecasts, so the vault stays where it
is (in cash at the start), and it tries again at the next decision. `first_trained` is the first day it could
trade; `untrained_reason` says why the last attempt failed, for a run in which no model ever trained.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import pandas as pd

from backtest.market import MarketData
from strategy.allocator import MarketForecast

if TYPE_CHECKING:
    from strategy.config import ModelSettings
    from strategy.models.promotion import PromotionVerdict, Rule

T = TypeVar("T")


class ModelForecaster:
    """Forecasts of what the promotion policy trusts on each decision day, from the view's features."""

    name = "ml"
    leaky = False

    def __init__(self, settings: ModelSettings):
        from strategy.models.promotion import PolicyState

        self.settings = settings
        self.state = PolicyState()
        self.verdicts: list[PromotionVerdict] = []  # one per challenger trained
        self.rules: dict[pd.Timestamp, Rule | None] = {}  # what decided on each decision day (None: warm-up)
        self.training_seconds = 0.0
        self.untrained_reason: str | None = None  # why the last training failed (None: it did not)

    @property
    def trainings(self) -> list[pd.Timestamp]:
        """The day of each challenger trained, promoted or not."""
        return [verdict.day for verdict in self.verdicts]

    def policy_counts(self) -> dict[str, int]:
        """What the replay's promotion policy did: decision days by the rule that decided (`model`,
        `trailing-best`, `warm-up`) and challengers `promoted` and `rejected`."""
        rules = list(self.rules.values())
        promoted = sum(verdict.promoted for verdict in self.verdicts)
        return {"model": rules.count("model"), "trailing-best": rules.count("trailing-best"),
                "warm-up": rules.count(None), "promoted": promoted, "rejected": len(self.verdicts) - promoted}

    @property
    def first_trained(self) -> pd.Timestamp | None:
        """The first decision day with a model (None: none trained): the end of the warm-up."""
        return self.trainings[0] if self.trainings else None

    def forecast(self, view: MarketData, now: pd.Timestamp) -> dict[str, MarketForecast]:
        from strategy.forecast import policy_forecasts
        from strategy.models.promotion import Known, advance
        from strategy.models.training import train_artifact, train_yield_model

        known = Known(view.model_features_until(now), view.history,
                      lambda train_end: self._timed(train_artifact, view, train_end),
                      lambda train_end: self._timed(train_yield_model, view, train_end))
        step = advance(self.state, now, known, self.settings)
        self.state = step.state
        if step.verdict is not None:
            self.verdicts.append(step.verdict)
            self.untrained_reason = None
        elif step.untrained is not None:
            self.untrained_reason = step.untrained
        self.rules[now] = self.state.rule
        return policy_forecasts(self.state, known, now)[0]

    def _timed(self, train: Callable[..., T], view: MarketData, train_end: pd.Timestamp) -> T:
        """`train` (`train_artifact`, or `train_yield_model` for a trial) on what is known at `train_end`, timed.
        The features are read from the view's one build over the whole data, as the forecasts are."""
        started = time.perf_counter()
        try:
            return train(view.history, view.news, view.pools, train_end=train_end, settings=self.settings,
                         features=view.model_features_until(train_end))
        finally:
            self.training_seconds += time.perf_counter() - started

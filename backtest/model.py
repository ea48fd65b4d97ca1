"""The model strategy as a forecaster: a LightGBM artifact trained only on data before the decision.

The first decision trains on everything known then (`train_artifact(..., train_end=now)`, which itself
purges rows whose target horizon reaches past `train_end`); the model is retrained every
`retrain_every_days` days on the data known at that moment, and in between predicts with the last one.

Warm-up: early in a history there is too little labelled data to train on (`train_artifact` raises
`ModelError`). Until a model exists the forecaster gives no forecasts, so the vault stays where it is (in
cash at the start), and it tries again at the next decision. `first_trained` is the first day it could
trade; `untrained_reason` says why the last attempt failed, for a run in which no model ever trained.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pandas as pd

from backtest.market import MarketData
from strategy.allocator import MarketForecast

if TYPE_CHECKING:
    from strategy.config import ModelSettings
    from strategy.models.artifact import ModelArtifact


class ModelForecaster:
    """Forecasts of `strategy.forecast.forecasts_from` on the view's features, with point-in-time retraining."""

    name = "ml"
    leaky = False

    def __init__(self, settings: ModelSettings):
        self.settings = settings
        self.trainings: list[pd.Timestamp] = []  # train_end of each model trained
        self.training_seconds = 0.0
        self.untrained_reason: str | None = None  # why the last training failed (None: it did not)
        self._artifact: ModelArtifact | None = None

    @property
    def first_trained(self) -> pd.Timestamp | None:
        """The first decision day with a model (None: none trained): the end of the warm-up."""
        return self.trainings[0] if self.trainings else None

    def forecast(self, view: MarketData, now: pd.Timestamp) -> dict[str, MarketForecast]:
        from strategy.forecast import forecasts_from

        if self._retrain_due(now):
            self._train(view, now)
        if self._artifact is None:
            return {}  # warming up
        return forecasts_from(self._artifact, view.model_features_on(now), now)

    def _retrain_due(self, now: pd.Timestamp) -> bool:
        """No model yet, or the last one is `retrain_every_days` old (a failed retraining is retried daily)."""
        if self._artifact is None:
            return True
        return now - self.trainings[-1] >= pd.Timedelta(days=self.settings.retrain_every_days)

    def _train(self, view: MarketData, now: pd.Timestamp) -> None:
        """Train on what is known at `now`; with too little history keep the last model (or none)."""
        from strategy.models import ModelError, train_artifact

        started = time.perf_counter()
        try:
            artifact = train_artifact(view.history, view.news, view.pools, train_end=now, settings=self.settings)
        except ModelError as error:  # training raises it only for too little history: warm up, retry next time
            self.untrained_reason = str(error)
            return
        finally:
            self.training_seconds += time.perf_counter() - started
        self.untrained_reason = None
        self._artifact = artifact
        self.trainings.append(now)

"""The model strategy as a forecaster: a LightGBM artifact trained only on data before the decision.

The first decision trains on everything known then (`train_artifact(..., train_end=now)`, which itself
purges rows whose target horizon reaches past `train_end`); the model is retrained every
`retrain_every_days` days on the data known at that moment, and in between predicts with the last one.
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
        self._artifact: ModelArtifact | None = None

    def forecast(self, view: MarketData, now: pd.Timestamp) -> dict[str, MarketForecast]:
        from strategy.forecast import forecasts_from

        if self._artifact is None or now - self.trainings[-1] >= pd.Timedelta(days=self.settings.retrain_every_days):
            self._artifact = self._train(view, now)
        return forecasts_from(self._artifact, view.model_features_on(now), now)

    def _train(self, view: MarketData, now: pd.Timestamp) -> ModelArtifact:
        from strategy.models import train_artifact

        started = time.perf_counter()
        artifact = train_artifact(view.history, view.news, view.pools, train_end=now, settings=self.settings)
        self.training_seconds += time.perf_counter() - started
        self.trainings.append(now)
        return artifact

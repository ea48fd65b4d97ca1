"""The keeper's models: the promotion policy (`strategy.models.promotion`) stepped once a cycle, as the ML
backtest steps it once a decision, its state kept in the model store (`keeper.modelstore`).

Each cycle advances the policy on the cycle's decision day (`ModelInputs.at`) with the cycle's inputs as what
is known: their features give the forecasts and score the champion's realised error and a challenger's trial.
Training, when due, reads the whole /chart history instead (`training_data`, fetched at most once a cycle:
the inputs join token prices over recent days only), cut at the day each model trains on; a fetch that fails
is a training that failed, and the champion keeps deciding.

What decided is said every cycle: the champion, whose content hash goes into the decision record, or the
trailing-best rule, whose `strategy.trailing_best.RULE_HASH` does, in log lines and metrics (`keeper.metrics`:
the fallback gauge, the champion's age, the challengers trained by verdict). Before any challenger trained
(an empty store with `model.train_if_missing`) a cycle that cannot train one fails with a `ModelError`, and
the next cycle tries again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import pandas as pd

from config import ModelPlacement
from keeper.metrics import KeeperMetrics
from keeper.modelstore import ModelStore
from sources import SourceError
from sources.inputs import ModelInputs
from strategy.allocator import MarketForecast
from strategy.config import ModelSettings
from strategy.data import align_to_daily
from strategy.forecast import policy_forecasts
from strategy.models import ModelArtifact, ModelError, train_artifact
from strategy.models.artifact import YieldModel
from strategy.models.dataset import known_at, model_features
from strategy.models.promotion import (
    Known,
    PolicyState,
    PolicyStep,
    Rule,
    advance,
    trained_day,
)
from strategy.models.training import train_yield_model
from strategy.trailing_best import decided_by

log = logging.getLogger(__name__)

TrainingData = tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame]  # history, news, pools metadata


@dataclass(frozen=True)
class CycleModel:
    """What decides a cycle and its forecasts."""

    forecasts: dict[str, MarketForecast]
    model_hash: str  # the decision record's: the champion's content hash, or the trailing-best rule's hash
    rule: Rule
    champion: ModelArtifact | None
    fallback: str | None  # why the trailing-best rule decided (None: the champion did)


class KeeperModels:
    """The policy's state for the keeper's lifetime, stored after every change."""

    def __init__(self, store: ModelStore, state: PolicyState, settings: ModelSettings,
                 training_data: Callable[[], TrainingData], *, metrics: KeeperMetrics | None = None) -> None:
        self.store, self.state, self.settings = store, state, settings
        self.training_data = training_data
        self.metrics = metrics
        self._known: tuple[ModelInputs, pd.DataFrame, pd.DataFrame] | None = None  # `_known_of`'s last

    @classmethod
    def open(cls, placement: ModelPlacement, settings: ModelSettings, training_data: Callable[[], TrainingData],
             *, metrics: KeeperMetrics | None = None) -> KeeperModels:
        """The models of `placement.artifact_dir`; an empty one is an error unless `train_if_missing`."""
        store = ModelStore(placement.artifact_dir)
        state = store.load_state()
        if state is None and not placement.train_if_missing:
            raise ModelError(f"no model artifact in {store.directory} (model.artifact_dir); train one with `vaultbot "
                             f"model train`, or set model.train_if_missing = true to train one in the first cycle")
        if state is None:
            log.info("no model in %s: the first cycle trains one", store.directory)
        return cls(store, state or PolicyState(), settings, training_data, metrics=metrics)

    def for_cycle(self, inputs: ModelInputs) -> CycleModel:
        """PolicyStep the policy on the inputs' decision day; the forecasts of what it trusts then."""
        day = inputs.at.floor("D")
        history, features = self._known_of(inputs)
        train, trial = self._trainers()
        known = Known(features, history, train, trial)
        step = advance(self.state, day, known, self.settings)
        self._settle(step)
        forecasts, model_hash = policy_forecasts(self.state, known, day)
        rule, champion, fallback = self.state.rule, self.state.champion, self.state.fallback
        age = (day - trained_day(champion)).days if champion is not None else None
        if self.metrics is not None:
            self.metrics.model_fallback.set(1 if fallback is not None else 0)
            self.metrics.model_age.set(age if age is not None else float("nan"))
        if rule is None or model_hash is None:
            raise ModelError(f"no model to decide with yet: {step.untrained}")
        if self.metrics is not None:
            self.metrics.decided_by = decided_by(model_hash)
        if fallback is not None:
            log.warning("the trailing-best rule decides: %s", fallback, extra={"model_rule": rule,
                                                                               "model_hash": model_hash})
        else:
            log.info("model %s decides (trained %d days before)", model_hash, age,
                     extra={"model_rule": rule, "model_hash": model_hash, "model_age_days": age})
        return CycleModel(forecasts, model_hash, rule, champion, fallback)

    def _known_of(self, inputs: ModelInputs) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The history known at the inputs' time and its `model_features`: those of the last cycle when its
        inputs were these very ones (`gather_inputs` hands them again when the answers did not move)."""
        if self._known is None or self._known[0] is not inputs:
            history, news = known_at(inputs.history, inputs.news, inputs.at)
            self._known = (inputs, history, model_features(history, news, inputs.pools_meta))
        return self._known[1], self._known[2]

    def _settle(self, step: PolicyStep) -> None:
        """Keep the step's state (stored when it changed); log and count what happened."""
        if step.verdict is not None:
            verdict = step.verdict
            self.store.save(verdict.challenger)
            log.log(logging.INFO if verdict.promoted else logging.WARNING, "challenger %s trained on %s %s: %s",
                    verdict.challenger.content_hash, verdict.day.date(),
                    "promoted" if verdict.promoted else "not promoted", verdict.reason,
                    extra={"model_hash": verdict.challenger.content_hash, "promoted": verdict.promoted})
            if self.metrics is not None:
                self.metrics.model_trainings.labels(verdict="promoted" if verdict.promoted else "rejected").inc()
        if step.untrained is not None:
            log.warning("retraining is due, but no model could be trained: %s", step.untrained)
        if step.switched is not None:
            log.warning("the trailing-best rule decides until a retrained model passes the gate: %s", step.switched)
        if step.state is not self.state:
            self.store.write(step.state)
            self.state = step.state

    def _trainers(self) -> tuple[Callable[[pd.Timestamp], ModelArtifact], Callable[[pd.Timestamp], YieldModel]]:
        """Training on the whole history (fetched on the first call of either only): a challenger, and the gate's
        trial, which is its yield booster trained alone (the same bits, a third of the work), as the backtest's."""
        data = cache(self._aligned_training_data)

        def train(train_end: pd.Timestamp) -> ModelArtifact:
            history, news, pools_meta = data()
            log.info("training on %d rows of %d pools up to %s", len(history), history["pool"].nunique(),
                     train_end.date())
            return train_artifact(history, news, pools_meta, train_end=train_end, settings=self.settings)

        def trial(train_end: pd.Timestamp) -> YieldModel:
            history, news, pools_meta = data()
            return train_yield_model(history, news, pools_meta, train_end=train_end, settings=self.settings)

        return train, trial

    def _aligned_training_data(self) -> TrainingData:
        try:
            history, news, pools_meta = self.training_data()
        except SourceError as error:
            raise ModelError(f"the history to train on cannot be fetched: {error}") from error
        return align_to_daily(history), news, pools_meta

"""When the models are retrained and what decides: one policy, shared by the keeper and the ML backtest.

Pure: `advance` reads the data known on a day (`Known`) and returns the next `PolicyState`; the caller keeps
it (the backtest's forecaster) or stores it (the keeper's model store), so both make the same decisions from
the same data. H is `horizon_days`; a day d is labelled on `day` once its horizon (d, d+H] has ended: d <= day - H.

Retraining: until a first challenger has trained, and then whenever the last one trained `retrain_every_days`
before, a challenger is trained on everything known that day (`train_artifact(..., train_end=day)`, which
purges the rows whose horizon reaches past it). One that cannot train (too little history: `ModelError`)
changes nothing and is tried again at the next step; a rejected one waits for the next period like a promoted one.

The gate (`judge`) promotes a challenger only if it beats both the champion and persistence out of sample:
- the window: the last `gate_window_days` labelled days, [day - H - G + 1, day - H], cut to the days from the
  champion's training day on, which the champion forecast out of sample (a cut that only happens when
  `retrain_every_days` < G + H - 1);
- the challenger has trained on those labels, so its training is judged by its trial: the same training on
  the data known at the window's first day, which has seen no label of the window (`walk_forward`'s fold
  model). What is promoted is that training on everything known, as `strategy.models.training` refits on
  every row after early stopping measured the validation split. The trial is a measurement, not kept, and
  only its yield booster is read (`Known.trial` may train that alone);
- promoted when the trial's yield MAE on the window's rows is below persistence's (the trailing 7-day mean
  APY, `strategy.models.dataset.BASELINE`, the baseline of `walk_forward`) and below the champion's;
- the first model has no champion to beat, and a trial would delay it by the window and a horizon of
  history: it is judged on its own validation split (`metadata.validation`, the early-stopping model's
  forecasts of the last `validation_fraction` of its labelled days, which that model did not fit) and accepted
  when not worse than persistence there.

The fallback: once the champion has forecast a whole window of `fallback_window_days` labelled days out of
sample (from its training day on), its realised yield MAE over the last such window is compared with
persistence's at every step; when worse, the trailing-best rule (`strategy.trailing_best`) decides instead,
until a challenger is promoted. A whole window, so that one bad day does not hand the decisions over; a latch,
so that the rule deciding does not flap with the window. A rejected first model leaves the trailing-best rule
deciding as well: no model is trusted yet. Before any challenger trained (warm-up) nothing decides.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Literal, Protocol

import numpy as np
import pandas as pd

from strategy.config import ModelSettings
from strategy.data.schema import TIMESTAMP
from strategy.models import metrics
from strategy.models.artifact import ModelArtifact
from strategy.models.dataset import BASELINE, YIELD_TARGET, utc
from strategy.models.errors import ModelError
from strategy.targets import TargetParams, forward_apy_mean

Rule = Literal["model", "trailing-best"]
MODEL: Rule = "model"
TRAILING_BEST: Rule = "trailing-best"


class YieldForecaster(Protocol):
    """What the gate scores: a model's ``apy_pred`` for `model_features` rows (a `ModelArtifact`, or a trial's
    `strategy.models.artifact.YieldModel`)."""

    def apy_pred(self, features: pd.DataFrame) -> np.ndarray: ...


@dataclass(frozen=True)
class Known:
    """What the policy reads on a day: the data known then, and training on it."""

    features: pd.DataFrame  # `model_features` rows indexed by (timestamp, pool), sorted, none after the day
    history: pd.DataFrame  # the daily-aligned canonical history, no row after the day
    train: Callable[[pd.Timestamp], ModelArtifact]  # `train_artifact` on the data known at the given day
    # The yield booster `train` would give on that day, trained alone (`strategy.models.training.
    # train_yield_model`): all a challenger's trial is scored by, without the risk and quantile boosters.
    # None: `train`'s.
    trial: Callable[[pd.Timestamp], YieldForecaster] | None = None

    def features_on(self, day: pd.Timestamp) -> pd.DataFrame:
        """The feature rows of `day`, indexed by pool (empty when no pool has one)."""
        return self._rows(day, day).droplevel(TIMESTAMP)

    def labelled(self, first: pd.Timestamp, last: pd.Timestamp, params: TargetParams) -> pd.DataFrame:
        """The feature rows of days first..last whose forward mean APY (`YIELD_TARGET`) is known."""
        rows = self._rows(first, last)
        # A day's forward mean reads only the days after it, so the rows from `first` on give the same values.
        outcome = forward_apy_mean(self.history[self.history[TIMESTAMP] >= first], params)
        return rows.join(outcome).dropna(subset=[YIELD_TARGET, BASELINE])

    def trained_trial(self, day: pd.Timestamp) -> YieldForecaster:
        """The yield model trained on the data known at `day`, as the gate's trial."""
        return (self.trial or self.train)(day)

    def _rows(self, first: pd.Timestamp, last: pd.Timestamp) -> pd.DataFrame:
        """The feature rows of days first..last: a slice found by binary search, not a scan of every row."""
        days = self._days
        return self.features.iloc[days.searchsorted(first, side="left"):days.searchsorted(last, side="right")]

    @cached_property
    def _days(self) -> pd.Index:
        days = self.features.index.get_level_values(TIMESTAMP)
        if not days.is_monotonic_increasing:
            raise ValueError("the features known must be sorted by (timestamp, pool), as model_features makes them")
        return days


@dataclass(frozen=True)
class PolicyState:
    """The champion, when the last challenger trained, and why the trailing-best rule decides (None: it does
    not)."""

    champion: ModelArtifact | None = None
    last_trained: pd.Timestamp | None = None  # the day of the last challenger trained, promoted or not
    fallback: str | None = None

    @classmethod
    def with_champion(cls, champion: ModelArtifact) -> PolicyState:
        """A model put in place by hand: trusted, and retrained `retrain_every_days` after its training day."""
        return cls(champion, trained_day(champion))

    @property
    def rule(self) -> Rule | None:
        """What decides: the champion, the trailing-best rule, or nothing yet (warm-up)."""
        if self.fallback is not None:
            return TRAILING_BEST
        return MODEL if self.champion is not None else None


@dataclass(frozen=True)
class Scores:
    """Yield MAE (percentage points) of three forecasts of the same rows' forward mean APY."""

    rows: int
    model: float  # the challenger's trial, or the champion for its realised error
    persistence: float
    champion: float | None = None
    first: pd.Timestamp | None = None  # the window's days (None: a model's validation split)
    last: pd.Timestamp | None = None

    @property
    def span(self) -> str:
        if self.first is None:
            return "its validation split"
        assert self.last is not None  # a window's scores have both ends (judge, realised_scores)
        return f"{self.first.date()}..{self.last.date()}"


@dataclass(frozen=True)
class PromotionVerdict:
    """The gate's answer on a challenger trained on `day`."""

    day: pd.Timestamp
    challenger: ModelArtifact
    promoted: bool
    reason: str
    scores: Scores | None = None  # None: there was nothing to judge it on


@dataclass(frozen=True)
class PolicyStep:
    """The state after one step, and what happened in it."""

    state: PolicyState
    verdict: PromotionVerdict | None = None  # a challenger trained at this step
    untrained: str | None = None  # a retraining was due and could not train: why
    switched: str | None = None  # the trailing-best rule took over at this step: why


def advance(state: PolicyState, day: pd.Timestamp, known: Known, settings: ModelSettings) -> PolicyStep:
    """Retrain when due and judge the challenger, then check the champion's realised error (module docstring)."""
    day = utc(day).floor("D")
    verdict = untrained = None
    if retrain_due(state, day, settings):
        try:
            challenger = known.train(day)
        except ModelError as error:
            untrained = str(error)
        else:
            verdict = judge(state.champion, challenger, day, known, settings)
            state = _after(state, verdict)
    switched = None
    realised = realised_scores(state, day, known, settings) if state.rule == MODEL else None
    if realised is not None and realised.model > realised.persistence:
        switched = (f"the model's realised yield MAE on {realised.span} is {realised.model:.3f}, persistence's "
                    f"{realised.persistence:.3f}")
        state = replace(state, fallback=switched)
    return PolicyStep(state, verdict, untrained, switched)


def retrain_due(state: PolicyState, day: pd.Timestamp, settings: ModelSettings) -> bool:
    """No challenger trained yet, or the last one `retrain_every_days` ago."""
    return state.last_trained is None or day - state.last_trained >= pd.Timedelta(days=settings.retrain_every_days)


def judge(champion: ModelArtifact | None, challenger: ModelArtifact, day: pd.Timestamp, known: Known,
          settings: ModelSettings) -> PromotionVerdict:
    """The gate on a challenger trained on `day` (module docstring)."""
    if champion is None:
        return first_verdict(challenger, day)
    first, last = gate_window(champion, day, settings)
    if first > last:
        return PromotionVerdict(day, challenger, False, f"no labelled day since the champion trained on "
                                               f"{trained_day(champion).date()} to judge it on")
    try:
        trial = known.trained_trial(first)
    except ModelError as error:
        return PromotionVerdict(day, challenger, False,
                                f"its trial on the data known at {first.date()} cannot train: {error}")
    rows = known.labelled(first, last, settings.target_params())
    if rows.empty:
        return PromotionVerdict(day, challenger, False,
                                f"no labelled rows on {first.date()}..{last.date()} to judge it on")
    trial_mae, persistence_mae, champion_mae = _mae(trial, rows), _persistence_mae(rows), _mae(champion, rows)
    scores = Scores(len(rows), trial_mae, persistence_mae, champion_mae, first, last)
    promoted = scores.model < scores.persistence and scores.model < champion_mae
    return PromotionVerdict(day, challenger, promoted,
                   f"{'beat' if promoted else 'did not beat'} both: its trial's yield MAE on {scores.span} is "
                   f"{scores.model:.3f}, persistence's {scores.persistence:.3f}, the champion's "
                   f"{champion_mae:.3f}", scores)


def gate_window(champion: ModelArtifact, day: pd.Timestamp, settings: ModelSettings) -> tuple[pd.Timestamp,
                                                                                                pd.Timestamp]:
    """The first and last day of the gate's window on `day` (first > last: no day to judge on)."""
    last = day - pd.Timedelta(days=settings.horizon_days)
    return max(last - pd.Timedelta(days=settings.gate_window_days - 1), trained_day(champion)), last


def realised_scores(state: PolicyState, day: pd.Timestamp, known: Known, settings: ModelSettings) -> Scores | None:
    """The champion's and persistence's yield MAE over the last `fallback_window_days` labelled days; None
    until the champion has forecast that many out of sample."""
    last = day - pd.Timedelta(days=settings.horizon_days)
    first = last - pd.Timedelta(days=settings.fallback_window_days - 1)
    if state.champion is None or first < trained_day(state.champion):
        return None
    rows = known.labelled(first, last, settings.target_params())
    if rows.empty:
        return None
    return Scores(len(rows), _mae(state.champion, rows), _persistence_mae(rows), first=first, last=last)


def trained_day(artifact: ModelArtifact) -> pd.Timestamp:
    """The day an artifact was trained on (its `train_end`, UTC midnight)."""
    return utc(pd.Timestamp(artifact.metadata.train_end)).floor("D")


def first_verdict(challenger: ModelArtifact, day: pd.Timestamp) -> PromotionVerdict:
    """The gate on a first model, with no champion to beat: its own validation split (module docstring)."""
    rows, model, persistence = (_validation_metric(challenger, name) for name in ("rows", "mae_model", "mae_baseline"))
    scores = Scores(int(rows), model, persistence)
    promoted = scores.model <= scores.persistence
    return PromotionVerdict(day, challenger, promoted,
                   f"first model, {'not worse' if promoted else 'worse'} than persistence: its yield MAE on "
                   f"{scores.span} is {scores.model:.3f}, persistence's {scores.persistence:.3f}", scores)


def _validation_metric(artifact: ModelArtifact, name: str) -> float:
    """A score training records of every model (`training._validation_metrics`), which an artifact made
    another way may lack."""
    value = artifact.metadata.validation.get(name)
    if value is None:
        raise ModelError(f"the model's metadata has no validation {name} to judge it on")
    return value


def _after(state: PolicyState, verdict: PromotionVerdict) -> PolicyState:
    if verdict.promoted:
        return PolicyState(verdict.challenger, verdict.day)
    if state.champion is None:  # nothing trusted yet: the rule decides until a model passes
        return PolicyState(None, verdict.day, f"no model has passed the gate: {verdict.reason}")
    return replace(state, last_trained=verdict.day)


def _mae(model: YieldForecaster, rows: pd.DataFrame) -> float:
    return metrics.mae(model.apy_pred(rows), rows[YIELD_TARGET].to_numpy())


def _persistence_mae(rows: pd.DataFrame) -> float:
    return metrics.mae(rows[BASELINE].to_numpy(), rows[YIELD_TARGET].to_numpy())

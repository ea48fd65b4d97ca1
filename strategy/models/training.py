"""Training a `ModelArtifact` on the data known at `train_end`, reproducibly.

Rows: a row at day t is labelled by the market over (t, t+H]; it is used only when that window and an
embargo of `embargo_days` after it end by `train_end`, i.e. t <= train_end - H - embargo (the purge gap
is the horizon). `train_window_days`, when set, keeps only the last that many labelled days.

Early stopping: the last `validation_fraction` of the labelled days are a validation split; the rows fitted
against it end the same purge + embargo before its first day, so no fitted target overlaps it. Each booster
is fitted there with early stopping, then refitted on every labelled row with the number of rounds found
(the most recent days matter most in a market that shifts regime). The risk model's probabilities are
calibrated on the early-stopping model's predictions of the validation split
(`strategy.models.calibration`); the validation metrics in the metadata are those raw predictions'.

Reproducible: fixed seeds, `deterministic`, row-wise histograms and a fixed thread count
(`ModelSettings.num_threads`), so the same data and settings give the same `content_hash`. Measured on a
shared 2-core machine (benchmarks/README.md): two threads give other bits, and took four times as long while
the other core was busy; the boosters in two processes give the same bits, 1.7× faster on idle cores but no
faster, or slower, on busy ones, so they train in one.

Cost: the labelled rows are copied once, into one float64 matrix whose fit and validation splits are
slices; each of those matrices is binned once for the three boosters (`_fit`). A trial of the promotion gate
needs the yield booster alone (`train_yield_model`), and a caller that has built the features for many
trainings (the backtest, `walk_forward`) passes them instead of having each training rebuild them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from strategy.config import ModelSettings
from strategy.data.schema import POOL, TIMESTAMP
from strategy.models import metrics
from strategy.models.artifact import (
    MODELS,
    PREDICT_THREADS,
    QUANTILE,
    RISK,
    YIELD,
    YIELD_Q10,
    ArtifactMetadata,
    ModelArtifact,
    YieldModel,
)
from strategy.models.calibration import fit_calibration
from strategy.models.dataset import (
    BASELINE,
    RISK_TARGET,
    YIELD_TARGET,
    known_at,
    labelled_targets,
    model_features,
    utc,
)
from strategy.models.errors import ModelError
from strategy.targets import mean_event_loss

TARGETS = (YIELD_TARGET, RISK_TARGET)
MIN_SPLIT_ROWS = 10  # fewer rows on either side of the validation split cannot stop early meaningfully


def train_artifact(history: pd.DataFrame, news: pd.DataFrame | None, pools_meta: pd.DataFrame | None,
                   train_end: pd.Timestamp, settings: ModelSettings, *,
                   features: pd.DataFrame | None = None) -> ModelArtifact:
    """Train on a daily-aligned canonical history (and news, pool metadata) as known at `train_end`.

    `features`: the `model_features` of that data when the caller has built them (rows after `train_end` are
    ignored); every feature is point-in-time, so they are the rows building them on the cut would give, and the
    same model comes out (the backtest and `walk_forward` build them once for every training)."""
    rows = _training_rows(history, news, pools_meta, utc(train_end), settings, features)
    boosters = _fit(rows, settings, MODELS)
    metadata = ArtifactMetadata(
        features=rows.features,
        train_start=rows.days[0],
        last_label_day=rows.days[-1],
        train_end=rows.train_end,
        rows=rows.count,
        event_rate=float(rows.targets[RISK_TARGET].mean()),
        loss_given_event=mean_event_loss(rows.targets),
        pools=rows.index.get_level_values(POOL).nunique(),
        data_hash=rows.data_hash(),
        settings=settings,
        best_iterations=boosters.best,
        validation=_validation_metrics(rows, boosters.predicted),
        lightgbm_version=lgb.__version__,
        risk_calibration=fit_calibration(settings.risk_calibration, boosters.predicted[RISK],
                                         rows.targets[RISK_TARGET].to_numpy("float64")[rows.validation]),
    )
    return ModelArtifact(boosters.texts, metadata)


def train_yield_model(history: pd.DataFrame, news: pd.DataFrame | None, pools_meta: pd.DataFrame | None,
                      train_end: pd.Timestamp, settings: ModelSettings, *,
                      features: pd.DataFrame | None = None) -> YieldModel:
    """The yield booster of `train_artifact` on the same arguments, bit for bit, without training the other two:
    all the promotion gate reads of a challenger's trial."""
    rows = _training_rows(history, news, pools_meta, utc(train_end), settings, features)
    return YieldModel(_fit(rows, settings, (YIELD,)).texts[YIELD], rows.features)


@dataclass(frozen=True)
class _Rows:
    """The labelled rows trained on: their features as one C-ordered float64 matrix (the only copy; the fit
    and validation splits are slices of it, since the rows are sorted by day), their targets and index."""

    index: pd.MultiIndex  # (timestamp, pool), sorted
    features: list[str]
    matrix: np.ndarray  # rows × features
    targets: pd.DataFrame  # YIELD_TARGET, RISK_TARGET, on `index`
    train_end: pd.Timestamp
    fit: slice  # the rows fitted against the validation split: ending purge + embargo before it
    validation: slice  # the last `validation_fraction` of the labelled days

    @property
    def count(self) -> int:
        return len(self.index)

    @cached_property
    def days(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(self.index.get_level_values(TIMESTAMP))

    def label(self, name: str) -> np.ndarray:
        """The booster's target; yield models learn the residual over the persistence baseline."""
        if name == RISK:
            return self.targets[RISK_TARGET].to_numpy("float64")
        return self.targets[YIELD_TARGET].to_numpy("float64") - self.baseline

    @property
    def baseline(self) -> np.ndarray:
        return self.matrix[:, self.features.index(BASELINE)]

    def data_hash(self) -> str:
        """sha256 of the rows as one table, features then targets (columns viewed in place, not copied)."""
        table = pd.DataFrame(self.matrix, index=self.index, columns=self.features, copy=False)
        for name in TARGETS:
            table[name] = self.targets[name].to_numpy()
        return hashlib.sha256(pd.util.hash_pandas_object(table, index=True).to_numpy().tobytes()).hexdigest()


def _training_rows(history: pd.DataFrame, news: pd.DataFrame | None, pools_meta: pd.DataFrame | None,
                   train_end: pd.Timestamp, settings: ModelSettings, features: pd.DataFrame | None) -> _Rows:
    history, news = known_at(history, news, train_end)
    if history.empty:
        raise ModelError(f"no market history up to train_end {train_end.date()} to train on")
    # Targets come from the history cut at train_end, never from more: a forward mean computed by rolling sums
    # differs in the last bits with later data, and the content hash would too.
    targets = labelled_targets(history, news, pools_meta, settings.target_params())
    if features is None:
        features = model_features(history, news, pools_meta)
    else:
        features = features.iloc[:_rows_until(features, train_end)]
    targets = targets.reindex(features.index)
    keep = _labelled(features, targets, train_end, settings)
    names = list(features.columns)
    # One column at a time into the matrix: no second whole copy of the table on the way.
    matrix = np.empty((int(keep.sum()), len(names)), dtype="float64")
    for column, name in enumerate(names):
        matrix[:, column] = features[name].to_numpy("float64")[keep]
    index = features.index[keep]
    # model_features' (timestamp, pool): on a flat index no target matches, and _labelled refused the table
    assert isinstance(index, pd.MultiIndex)
    return _split(_Rows(index, names, matrix, targets[keep], train_end, slice(0), slice(0)), settings)


def _rows_until(features: pd.DataFrame, at: pd.Timestamp) -> int:
    """How many rows of a `model_features` table (sorted by day) are known at `at`."""
    days = features.index.get_level_values(TIMESTAMP)
    if not days.is_monotonic_increasing:
        raise ModelError("the features to train on must be sorted by (timestamp, pool), as model_features makes them")
    return int(days.searchsorted(at, side="right"))


def _labelled(features: pd.DataFrame, targets: pd.DataFrame, train_end: pd.Timestamp,
              settings: ModelSettings) -> np.ndarray:
    """The rows whose targets end the horizon + embargo before `train_end` (within `train_window_days`)."""
    days = features.index.get_level_values(TIMESTAMP)
    last_day = train_end.floor("D") - pd.Timedelta(days=settings.horizon_days + settings.embargo_days)
    keep = (days <= last_day) & targets[YIELD_TARGET].notna().to_numpy() & targets[RISK_TARGET].notna().to_numpy()
    if settings.train_window_days is not None:
        keep &= days > last_day - pd.Timedelta(days=settings.train_window_days)
    if keep.sum() < settings.min_train_rows:
        raise ModelError(
            f"too little history to train: {keep.sum()} labelled rows end by {last_day.date()} (train_end "
            f"{train_end.date()} - {settings.horizon_days} days horizon - {settings.embargo_days} embargo), "
            f"need model.min_train_rows = {settings.min_train_rows}")
    return np.asarray(keep)


def _split(rows: _Rows, settings: ModelSettings) -> _Rows:
    days = rows.days
    unique_days = days.unique()
    validation_start = unique_days[-max(1, round(settings.validation_fraction * len(unique_days)))]
    gap = pd.Timedelta(days=settings.horizon_days + settings.embargo_days)
    fit = slice(0, int(days.searchsorted(validation_start - gap, side="left")))  # days + gap < validation_start
    validation = slice(int(days.searchsorted(validation_start, side="left")), rows.count)
    fitted, validated = fit.stop, rows.count - validation.start
    if min(fitted, validated) < MIN_SPLIT_ROWS:
        raise ModelError(f"too little history to train: {fitted} rows before and {validated} rows in the "
                         f"validation split of {len(unique_days)} labelled days up to {days[-1].date()}")
    return replace(rows, fit=fit, validation=validation)


@dataclass(frozen=True)
class _Boosters:
    texts: dict[str, str]  # the final models, refitted on every row
    best: dict[str, int]  # rounds found by early stopping
    predicted: dict[str, np.ndarray]  # the early-stopping models' forecasts of the validation split


def _fit(rows: _Rows, settings: ModelSettings, models: tuple[str, ...]) -> _Boosters:
    """Each booster fitted with early stopping on the split, then refitted on every row with the rounds found.

    The three boosters share one binning of each matrix: the datasets are built once and only their labels
    change (`set_label`), which gives the models one dataset per booster gives, byte for byte (LightGBM bins
    the features, never the label). Raw data is freed once binned: a dataset parameter that changed between
    boosters would then be an error, never a silent rebinning."""
    params = {name: _params(name, settings) for name in models}

    def dataset(part: slice, reference: lgb.Dataset | None = None) -> lgb.Dataset:
        return lgb.Dataset(rows.matrix[part], reference=reference, feature_name=rows.features, free_raw_data=True,
                           params=params[models[0]])

    fit = dataset(rows.fit)
    validation = dataset(rows.validation, reference=fit)
    every = dataset(slice(None))
    texts, best, predicted = {}, {}, {}
    for name in models:
        label = rows.label(name)
        for part, data in ((rows.fit, fit), (rows.validation, validation), (slice(None), every)):
            data.set_label(label[part])
        early = lgb.train(params[name], fit, settings.num_boost_round, valid_sets=[validation],
                          callbacks=[lgb.early_stopping(settings.early_stopping_rounds, verbose=False)])
        best[name] = max(1, early.best_iteration)
        # dense in, an array out (sparse results come only of sparse input); asarray returns it as is
        predicted[name] = np.asarray(early.predict(rows.matrix[rows.validation], num_iteration=best[name],
                                                   num_threads=PREDICT_THREADS))
        texts[name] = lgb.train(params[name], every, best[name]).model_to_string()
    return _Boosters(texts, best, predicted)


def _params(name: str, settings: ModelSettings) -> dict[str, Any]:
    objectives: dict[str, dict[str, Any]] = {
        YIELD: {"objective": settings.yield_objective, "metric": "l1"},
        RISK: {"objective": "binary", "metric": "binary_logloss"},
        YIELD_Q10: {"objective": "quantile", "alpha": QUANTILE, "metric": "quantile"},
    }
    objective = objectives[name]
    return {
        **objective,
        "learning_rate": settings.learning_rate,
        "num_leaves": settings.num_leaves,
        "min_data_in_leaf": settings.min_data_in_leaf,
        "feature_fraction": settings.feature_fraction,
        "bagging_fraction": settings.bagging_fraction,
        "bagging_freq": 1 if settings.bagging_fraction < 1 else 0,
        "lambda_l2": settings.lambda_l2,
        "seed": settings.seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": settings.num_threads,
        "verbosity": -1,
    }


def _validation_metrics(rows: _Rows, predicted: dict[str, np.ndarray]) -> dict[str, float | None]:
    split = rows.validation
    actual, baseline = rows.targets[YIELD_TARGET].to_numpy()[split], rows.baseline[split]
    events = rows.targets[RISK_TARGET].to_numpy()[split]
    return {
        "rows": float(len(actual)),
        "mae_model": metrics.mae(baseline + predicted[YIELD], actual),
        "mae_baseline": metrics.mae(baseline, actual),
        "auc": metrics.auc(predicted[RISK], events),
        "brier": metrics.brier(predicted[RISK], events),
        "event_rate": float(events.mean()),
        "q10_below_share": metrics.below_share(baseline + predicted[YIELD_Q10], actual),
    }

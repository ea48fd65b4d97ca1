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
(`ModelSettings.num_threads`), so the same data and settings give the same `content_hash`.
"""

from __future__ import annotations

import hashlib
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from strategy.config import ModelSettings
from strategy.data.schema import POOL, TIMESTAMP
from strategy.models import metrics
from strategy.models.artifact import (
    MODELS,
    QUANTILE,
    RISK,
    YIELD,
    YIELD_Q10,
    ArtifactMetadata,
    ModelArtifact,
)
from strategy.models.calibration import fit_calibration
from strategy.models.dataset import (
    BASELINE,
    RISK_TARGET,
    YIELD_TARGET,
    known_at,
    labelled_dataset,
    utc,
)
from strategy.models.errors import ModelError

TARGETS = (YIELD_TARGET, RISK_TARGET)
MIN_SPLIT_ROWS = 10  # fewer rows on either side of the validation split cannot stop early meaningfully


def train_artifact(history: pd.DataFrame, news: pd.DataFrame | None, pools_meta: pd.DataFrame | None,
                   train_end: pd.Timestamp, settings: ModelSettings) -> ModelArtifact:
    """Train on a daily-aligned canonical history (and news, pool metadata) as known at `train_end`."""
    train_end = utc(train_end)
    history, news = known_at(history, news, train_end)
    if history.empty:
        raise ModelError(f"no market history up to train_end {train_end.date()} to train on")
    return _fit(labelled_dataset(history, news, pools_meta, settings.target_params()), train_end, settings)


def _fit(dataset: pd.DataFrame, train_end: pd.Timestamp, settings: ModelSettings) -> ModelArtifact:
    # The dataset is built from the history cut at train_end, never from more: a forward mean computed by
    # rolling sums differs in the last bits with later data, and the content hash would too.
    rows = _labelled_rows(dataset, train_end, settings)
    days = rows.index.get_level_values(TIMESTAMP)
    features = [c for c in rows.columns if c not in TARGETS]
    unique_days = days.unique().sort_values()
    validation_start = unique_days[-max(1, round(settings.validation_fraction * len(unique_days)))]
    gap = pd.Timedelta(days=settings.horizon_days + settings.embargo_days)
    fit, validation = rows[days + gap < validation_start], rows[days >= validation_start]
    if min(len(fit), len(validation)) < MIN_SPLIT_ROWS:
        raise ModelError(f"too little history to train: {len(fit)} rows before and {len(validation)} rows in the "
                         f"validation split of {len(unique_days)} labelled days up to {days.max().date()}")

    texts, best, predicted = {}, {}, {}
    for name in MODELS:
        params = _params(name, settings)
        early = lgb.train(params, _dataset(fit, features, name), settings.num_boost_round,
                          valid_sets=[_dataset(validation, features, name)],
                          callbacks=[lgb.early_stopping(settings.early_stopping_rounds, verbose=False)])
        best[name] = max(1, early.best_iteration)
        predicted[name] = early.predict(validation[features].to_numpy("float64"), num_iteration=best[name])
        final = lgb.train(params, _dataset(rows, features, name), best[name])
        texts[name] = final.model_to_string()
    metadata = ArtifactMetadata(
        features=features,
        train_start=days.min(),
        last_label_day=days.max(),
        train_end=train_end,
        rows=len(rows),
        event_rate=float(rows[RISK_TARGET].mean()),
        pools=rows.index.get_level_values(POOL).nunique(),
        data_hash=_data_hash(rows),
        settings=settings,
        best_iterations=best,
        validation=_validation_metrics(validation, predicted),
        lightgbm_version=lgb.__version__,
        risk_calibration=fit_calibration(settings.risk_calibration, predicted[RISK], validation[RISK_TARGET]),
    )
    return ModelArtifact(texts, metadata)


def _labelled_rows(dataset: pd.DataFrame, train_end: pd.Timestamp, settings: ModelSettings) -> pd.DataFrame:
    days = dataset.index.get_level_values(TIMESTAMP)
    last_day = train_end.floor("D") - pd.Timedelta(days=settings.horizon_days + settings.embargo_days)
    keep = (days <= last_day) & dataset[YIELD_TARGET].notna().to_numpy() & dataset[RISK_TARGET].notna().to_numpy()
    if settings.train_window_days is not None:
        keep &= days > last_day - pd.Timedelta(days=settings.train_window_days)
    rows = dataset[keep]
    if len(rows) < settings.min_train_rows:
        raise ModelError(
            f"too little history to train: {len(rows)} labelled rows end by {last_day.date()} (train_end "
            f"{train_end.date()} - {settings.horizon_days} days horizon - {settings.embargo_days} embargo), "
            f"need model.min_train_rows = {settings.min_train_rows}")
    return rows


def _params(name: str, settings: ModelSettings) -> dict[str, Any]:
    objective = {
        YIELD: {"objective": settings.yield_objective, "metric": "l1"},
        RISK: {"objective": "binary", "metric": "binary_logloss"},
        YIELD_Q10: {"objective": "quantile", "alpha": QUANTILE, "metric": "quantile"},
    }[name]
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


def _dataset(rows: pd.DataFrame, features: list[str], name: str) -> lgb.Dataset:
    """The booster's training matrix; yield models learn the residual over the persistence baseline."""
    label = rows[RISK_TARGET] if name == RISK else rows[YIELD_TARGET] - rows[BASELINE]
    return lgb.Dataset(rows[features].to_numpy("float64"), label.to_numpy("float64"), feature_name=features,
                       free_raw_data=True, params={"verbosity": -1})


def _validation_metrics(validation: pd.DataFrame, predicted: dict[str, np.ndarray]) -> dict[str, float | None]:
    actual, baseline = validation[YIELD_TARGET].to_numpy(), validation[BASELINE].to_numpy()
    events = validation[RISK_TARGET].to_numpy()
    return {
        "rows": float(len(validation)),
        "mae_model": metrics.mae(baseline + predicted[YIELD], actual),
        "mae_baseline": metrics.mae(baseline, actual),
        "auc": metrics.auc(predicted[RISK], events),
        "brier": metrics.brier(predicted[RISK], events),
        "event_rate": float(events.mean()),
        "q10_below_share": metrics.below_share(baseline + predicted[YIELD_Q10], actual),
    }


def _data_hash(rows: pd.DataFrame) -> str:
    return hashlib.sha256(pd.util.hash_pandas_object(rows, index=True).to_numpy().tobytes()).hexdigest()

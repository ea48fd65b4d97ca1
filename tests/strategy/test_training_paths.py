"""Training's shortcuts give the models the plain path gives, byte for byte: the three boosters sharing one binning
of each matrix, the features built once by the caller, a trial's yield booster trained alone; and the rolling
training window (`train_window_days`).

Tests taking `synthetic_or_real` run on the real dataset in ../shared/data when it is there.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import lightgbm as lgb
import pandas as pd
import pytest

from strategy.config import ModelSettings
from strategy.models import ModelArtifact, ModelError, train_artifact
from strategy.models.artifact import MODELS, RISK, YIELD
from strategy.models.dataset import (
    BASELINE,
    RISK_TARGET,
    YIELD_TARGET,
    known_at,
    labelled_targets,
    model_features,
)
from strategy.models.training import _params, train_yield_model
from tests.strategy.conftest import MarketData
from tests.strategy.models_world import FAST, train_end_of, trained

DAY = pd.Timedelta(days=1)
WINDOW = FAST.model_copy(update={"train_window_days": 60})


def one_dataset_per_booster(data: MarketData, train_end: pd.Timestamp, settings: ModelSettings
                            ) -> tuple[dict[str, str], str]:
    """The training before bins were shared, as it was written: every booster bins its own copy of the fit,
    validation and full matrices. Its model texts and the hash of the rows it trained on."""
    history, news = known_at(data.history, data.news, train_end)
    dataset = model_features(history, news, data.pools).join(
        labelled_targets(history, news, data.pools, settings.target_params())[[YIELD_TARGET, RISK_TARGET]])
    days = dataset.index.get_level_values("timestamp")
    last_day = train_end.floor("D") - pd.Timedelta(days=settings.horizon_days + settings.embargo_days)
    keep = (days <= last_day) & dataset[YIELD_TARGET].notna().to_numpy() & dataset[RISK_TARGET].notna().to_numpy()
    if settings.train_window_days is not None:
        keep &= days > last_day - pd.Timedelta(days=settings.train_window_days)
    rows = dataset[keep]
    days = rows.index.get_level_values("timestamp")
    features = [c for c in rows.columns if c not in (YIELD_TARGET, RISK_TARGET)]
    unique_days = days.unique().sort_values()
    validation_start = unique_days[-max(1, round(settings.validation_fraction * len(unique_days)))]
    gap = pd.Timedelta(days=settings.horizon_days + settings.embargo_days)
    fit, validation = rows[days + gap < validation_start], rows[days >= validation_start]

    def matrix(part: pd.DataFrame, name: str) -> lgb.Dataset:
        label = part[RISK_TARGET] if name == RISK else part[YIELD_TARGET] - part[BASELINE]
        return lgb.Dataset(part[features].to_numpy("float64"), label.to_numpy("float64"), feature_name=features,
                           free_raw_data=True, params={"verbosity": -1})

    texts = {}
    for name in MODELS:
        params = _params(name, settings)
        early = lgb.train(params, matrix(fit, name), settings.num_boost_round, valid_sets=[matrix(validation, name)],
                          callbacks=[lgb.early_stopping(settings.early_stopping_rounds, verbose=False)])
        texts[name] = lgb.train(params, matrix(rows, name), max(1, early.best_iteration)).model_to_string()
    data_hash = hashlib.sha256(pd.util.hash_pandas_object(rows, index=True).to_numpy().tobytes()).hexdigest()
    return texts, data_hash


@pytest.mark.parametrize("settings", [FAST, WINDOW], ids=["expanding", "60-day window"])
def test_boosters_sharing_one_binning_are_the_models_of_one_dataset_per_booster(
        synthetic_or_real: MarketData, settings: ModelSettings) -> None:
    """Uses `synthetic_or_real`."""
    data, end = synthetic_or_real, train_end_of(synthetic_or_real)
    artifact = train_artifact(data.history, data.news, data.pools, end, settings)
    texts, data_hash = one_dataset_per_booster(data, end, settings)
    assert set(texts) == set(MODELS)
    for name in MODELS:
        assert artifact.model_texts[name] == texts[name], name
    assert artifact.metadata.data_hash == data_hash


def test_features_built_once_over_all_the_data_train_the_same_model(trained: ModelArtifact,
                                                                    synthetic_or_real: MarketData) -> None:
    """Uses `synthetic_or_real`: features of the whole data, 30 days past train_end, as the backtest has them."""
    data = synthetic_or_real
    features = model_features(data.history, data.news, data.pools)
    assert features.index.get_level_values("timestamp").max() > train_end_of(data)
    again = train_artifact(data.history, data.news, data.pools, train_end_of(data), FAST, features=features)
    assert again.content_hash == trained.content_hash


def test_features_out_of_order_are_refused(synthetic_or_real: MarketData) -> None:
    """Uses `synthetic_or_real`."""
    data = synthetic_or_real
    features = model_features(data.history, data.news, data.pools).iloc[::-1]
    with pytest.raises(ModelError, match=r"^the features to train on must be sorted by \(timestamp, pool\)"):
        train_artifact(data.history, data.news, data.pools, train_end_of(data), FAST, features=features)


def test_a_trial_is_the_yield_booster_of_the_whole_training(trained: ModelArtifact,
                                                             synthetic_or_real: MarketData) -> None:
    """Uses `synthetic_or_real`."""
    data = synthetic_or_real
    features = model_features(data.history, data.news, data.pools)
    trial = train_yield_model(data.history, data.news, data.pools, train_end_of(data), FAST, features=features)
    assert trial.model_text == trained.model_texts[YIELD]
    assert (trial.apy_pred(features) == trained.predict(features)["apy_pred"].to_numpy()).all()
    assert (trained.apy_pred(features) == trained.predict(features)["apy_pred"].to_numpy()).all()


def test_a_training_window_keeps_only_its_last_labelled_days(trained: ModelArtifact,
                                                             synthetic_or_real: MarketData) -> None:
    """Uses `synthetic_or_real`."""
    data = synthetic_or_real
    windowed = train_artifact(data.history, data.news, data.pools, train_end_of(data), WINDOW)
    meta = windowed.metadata
    assert meta.last_label_day == trained.metadata.last_label_day
    assert meta.train_start == meta.last_label_day - (WINDOW.train_window_days - 1) * DAY
    assert meta.train_start > trained.metadata.train_start and meta.rows < trained.metadata.rows
    assert meta.settings.train_window_days == 60 and windowed.content_hash != trained.content_hash


THREADS_SCRIPT = """
from pathlib import Path
from strategy.config import ModelSettings
from strategy.models import train_artifact
from strategy.models.dataset import model_features
from strategy.synthetic import generate_market

def threads():
    return len(list(Path("/proc/self/task").iterdir()))

market = generate_market(n_pools=4, days=150, seed=1)
features = model_features(market.history, market.news, market.pools)
before = threads()
artifact = train_artifact(market.history, market.news, market.pools, market.history["timestamp"].max(),
                          ModelSettings(num_boost_round=20, early_stopping_rounds=5, min_train_rows=50))
artifact.predict(features)
print(before, threads())
"""


@pytest.mark.skipif((os.cpu_count() or 1) < 2 or not Path("/proc/self/task").is_dir(),
                    reason="needs Linux and two cores: on one, OpenMP starts no team of threads to see")
def test_training_and_predicting_start_no_team_of_threads() -> None:
    """LightGBM trains on `ModelSettings.num_threads` (1) and predicts on `PREDICT_THREADS` (1), the validation
    split's forecasts included: a team of a thread per core, spinning while the machine is busy, stalls each call.
    In a fresh process, so that no earlier test's thread counts."""
    out = subprocess.run([sys.executable, "-c", THREADS_SCRIPT], check=True, capture_output=True, text=True,
                         env={**os.environ, "OMP_NUM_THREADS": ""}).stdout.split()
    before, after = map(int, out)
    assert after == before

"""Calibration of the risk model's probabilities: the fitted maps, and an artifact applying its own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from strategy.models import ModelArtifact, train_artifact
from strategy.models.artifact import RISK
from strategy.models.calibration import RiskCalibration, fit_calibration
from strategy.models.dataset import model_features
from strategy.models.metrics import brier
from tests.strategy.conftest import MarketData
from tests.strategy.models_world import FAST, train_end_of


@pytest.fixture(scope="module")
def calibrated(synthetic_or_real: MarketData) -> ModelArtifact:
    data = synthetic_or_real
    settings = FAST.model_copy(update={"risk_calibration": "platt"})
    return train_artifact(data.history, data.news, data.pools, train_end=train_end_of(data), settings=settings)


def overconfident(seed: int, rows: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    """Raw probabilities four times the true ones, and outcomes drawn from the true ones."""
    rng = np.random.default_rng(seed)
    true = rng.beta(0.5, 12, rows)
    return np.clip(4 * true, 0, 1), (rng.random(rows) < true).astype(float)


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_calibration_repairs_overconfident_probabilities_and_keeps_their_order(method: str) -> None:
    raw, events = overconfident(seed=1)
    calibration = fit_calibration(method, raw, events)
    assert calibration is not None and calibration.method == method
    fresh_raw, fresh_events = overconfident(seed=2)  # out of sample
    calibrated = calibration.apply(fresh_raw)
    assert brier(calibrated, fresh_events) < 0.9 * brier(fresh_raw, fresh_events)
    assert abs(calibrated.mean() - fresh_events.mean()) < 0.01
    order = np.argsort(fresh_raw, kind="stable")
    assert np.all(np.diff(calibrated[order]) >= -1e-12)


@given(raw=st.lists(st.floats(0, 1), min_size=2, max_size=50), seed=st.integers(0, 1000),
       method=st.sampled_from(["platt", "isotonic"]))
def test_calibrated_probabilities_are_probabilities(raw: list[float], seed: int, method: str) -> None:
    raw_array = np.array(raw)
    events = (np.random.default_rng(seed).random(len(raw)) < 0.5).astype(float)
    events[:2] = [0.0, 1.0]  # both classes
    calibrated = fit_calibration(method, raw_array, events).apply(np.concatenate([raw_array, [0.0, 1.0]]))
    assert np.all(np.isfinite(calibrated)) and np.all((calibrated >= 0) & (calibrated <= 1))


def test_platt_never_reverses_the_order_it_falls_back_to_the_event_rate() -> None:
    raw, events = overconfident(seed=4)
    calibration = fit_calibration("platt", 1 - raw, events)  # anti-correlated with the outcomes
    assert calibration.slope == 0.0
    np.testing.assert_allclose(calibration.apply(np.array([0.0, 0.5, 1.0])), events.mean())


def test_nothing_to_calibrate_with_one_class_or_when_switched_off() -> None:
    raw, events = overconfident(seed=3)
    assert fit_calibration("none", raw, events) is None
    assert fit_calibration("platt", raw, np.zeros_like(events)) is None


def test_an_artifact_applies_its_calibration_to_the_risk_booster(calibrated: ModelArtifact,
                                                                 synthetic_or_real: MarketData) -> None:
    data = synthetic_or_real
    assert calibrated.metadata.risk_calibration is not None
    features = model_features(data.history, data.news, data.pools).tail(200)
    raw = calibrated._boosters[RISK].predict(features[calibrated.features].to_numpy("float64"))
    expected = np.clip(calibrated.metadata.risk_calibration.apply(raw), 0, 1)
    np.testing.assert_array_equal(calibrated.predict(features)["p_event"].to_numpy(), expected)


def test_the_calibration_is_part_of_the_content_hash_and_survives_save_load(calibrated: ModelArtifact,
                                                                           tmp_path: Path) -> None:
    loaded = ModelArtifact.load(calibrated.save(tmp_path / "model"))
    assert loaded.metadata.risk_calibration == calibrated.metadata.risk_calibration
    shifted = RiskCalibration(method="platt", slope=1.0, intercept=0.5)
    other = ModelArtifact(calibrated.model_texts, calibrated.metadata.model_copy(update={"risk_calibration": shifted}))
    assert other.content_hash != calibrated.content_hash


def test_by_default_the_raw_probabilities_are_kept(synthetic_or_real: MarketData) -> None:
    data = synthetic_or_real
    plain = train_artifact(data.history, data.news, data.pools, train_end_of(data), FAST)
    assert FAST.risk_calibration == "none" and plain.metadata.risk_calibration is None
    features = model_features(data.history, data.news, data.pools).tail(100)
    np.testing.assert_array_equal(plain.predict(features)["p_event"].to_numpy(),
                                  np.clip(plain._boosters[RISK].predict(features[plain.features].to_numpy()), 0, 1))

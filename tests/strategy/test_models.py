"""Training and the saved model artifact: purging, determinism, save/load, corrupt artifacts.

Tests taking `synthetic_or_real` run on the synthetic market until real data is in ../shared/data.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from strategy.models import ModelArtifact, ModelError, train_artifact
from strategy.models.artifact import ARTIFACT_FILE, MODELS, PREDICTIONS, model_file
from strategy.models.dataset import known_at, model_features
from strategy.targets import build_targets, mean_event_loss
from tests.strategy.conftest import MarketData
from tests.strategy.models_world import FAST, train_end_of, trained

DAY = pd.Timedelta(days=1)


def test_training_uses_only_rows_whose_target_ends_before_train_end(trained: ModelArtifact,
                                                                    synthetic_or_real: MarketData) -> None:
    meta = trained.metadata
    end = train_end_of(synthetic_or_real)
    assert meta.train_end == end
    assert meta.last_label_day == end - (FAST.horizon_days + FAST.embargo_days) * DAY
    assert meta.train_start == synthetic_or_real.history["timestamp"].min()
    assert set(meta.best_iterations) == set(MODELS) and all(1 <= n <= FAST.num_boost_round
                                                            for n in meta.best_iterations.values())
    assert meta.settings == FAST and "apy_mean_7d" in meta.features and meta.data_hash


def test_data_after_train_end_changes_nothing(trained: ModelArtifact, synthetic_or_real: MarketData) -> None:
    data, end = synthetic_or_real, train_end_of(synthetic_or_real)
    later = data.history["timestamp"] > end
    history = data.history.copy()
    history.loc[later, ["apy", "apy_base", "tvl_usd"]] *= 7.0
    news = pd.concat([data.news, data.news.assign(timestamp=end + DAY, title="Protocol hacked in exploit")])
    again = train_artifact(history, news.sort_values("timestamp"), data.pools, train_end=end, settings=FAST)
    assert again.content_hash == trained.content_hash


def test_training_is_deterministic_and_the_seed_matters(trained: ModelArtifact, synthetic_or_real: MarketData) -> None:
    data, end = synthetic_or_real, train_end_of(synthetic_or_real)
    assert train_artifact(data.history, data.news, data.pools, end, FAST).content_hash == trained.content_hash
    other = train_artifact(data.history, data.news, data.pools, end, FAST.model_copy(update={"seed": 8}))
    assert other.content_hash != trained.content_hash
    assert trained.content_hash.startswith("0x") and len(trained.content_hash) == 66


def test_save_load_round_trip_keeps_hash_and_predictions(trained: ModelArtifact, synthetic_or_real: MarketData,
                                                         tmp_path: Path) -> None:
    data = synthetic_or_real
    trained.save(tmp_path / "model")
    loaded = ModelArtifact.load(tmp_path / "model")
    assert loaded.content_hash == trained.content_hash
    assert loaded.metadata == trained.metadata
    features = model_features(data.history, data.news, data.pools)
    before, after = trained.predict(features), loaded.predict(features)
    pd.testing.assert_frame_equal(before, after)
    assert list(before.columns) == list(PREDICTIONS) and before.index.equals(features.index)
    assert before["p_event"].between(0, 1).all() and np.isfinite(before.to_numpy()).all()


def test_a_model_records_what_an_event_cost_on_the_rows_it_trained_on(trained: ModelArtifact,
                                                                       synthetic_or_real: MarketData) -> None:
    """The LGD its forecasts carry: the mean worst price fall (in the asset) of the event rows among exactly the
    labelled rows it trained on, none after its cut."""
    data, settings = synthetic_or_real, trained.settings
    end = train_end_of(data)
    history, news = known_at(data.history, data.news, end)
    targets = build_targets(history, data.pools, settings.target_params(), news)
    days = targets.index.get_level_values("timestamp")
    last_day = end.floor("D") - pd.Timedelta(days=settings.horizon_days + settings.embargo_days)
    rows = targets[(days <= last_day) & targets["fwd_apy_mean"].notna() & targets["adverse_event"].notna()]
    assert len(rows) == trained.metadata.rows
    assert trained.metadata.loss_given_event == mean_event_loss(rows)
    later = targets[days > last_day]  # the horizon it has not seen: events there are not in the measure
    assert mean_event_loss(rows) != mean_event_loss(pd.concat([rows, later.assign(adverse_event=1.0,
                                                                                     worst_fall=0.5)]))


def test_an_unmeasured_loss_is_saved_as_every_artifact_was_before_it_was_kept(trained: ModelArtifact,
                                                                              tmp_path: Path) -> None:
    """An artifact that measured no event cost leaves the field out, so artifacts saved before it existed load
    with their hash; a measured one is hashed and loads as saved."""
    unmeasured = ModelArtifact(trained.model_texts, trained.metadata.model_copy(update={"loss_given_event": None}))
    unmeasured.save(tmp_path / "none")
    assert "loss_given_event" not in json.loads((tmp_path / "none" / ARTIFACT_FILE).read_text())["metadata"]
    assert ModelArtifact.load(tmp_path / "none").content_hash == unmeasured.content_hash
    measured = ModelArtifact(trained.model_texts, trained.metadata.model_copy(update={"loss_given_event": 0.0123}))
    measured.save(tmp_path / "some")
    loaded = ModelArtifact.load(tmp_path / "some")
    assert loaded.metadata.loss_given_event == 0.0123 and loaded.content_hash == measured.content_hash
    assert measured.content_hash != unmeasured.content_hash


def test_the_asset_losses_count_in_is_recorded_and_hashed(trained: ModelArtifact, tmp_path: Path) -> None:
    """A model trained in USD (no asset) is saved as every artifact was before the setting existed, so those
    load with their hash; one trained for a USDC vault says so, and its hash differs."""
    trained.save(tmp_path / "usd")
    saved = json.loads((tmp_path / "usd" / ARTIFACT_FILE).read_text())
    assert "asset_symbol" not in saved["metadata"]["settings"]
    assert ModelArtifact.load(tmp_path / "usd").settings.asset_symbol is None
    settings = trained.settings.for_asset("USDC")
    for_usdc = ModelArtifact(trained.model_texts, trained.metadata.model_copy(update={"settings": settings}))
    for_usdc.save(tmp_path / "usdc")
    loaded = ModelArtifact.load(tmp_path / "usdc")
    assert loaded.settings.asset_symbol == "USDC" and loaded.content_hash == for_usdc.content_hash
    assert for_usdc.content_hash != trained.content_hash
    with pytest.raises(ValueError, match="strategy.model.asset_symbol is USDC, but the vault's asset is DAI"):
        settings.for_asset("DAI")


def corrupt_model_text(directory: Path) -> None:
    path = directory / model_file("risk")
    path.write_text(path.read_text().replace("leaf_value=", "leaf_value=1", 1))


def drop_a_model(directory: Path) -> None:
    (directory / model_file("yield")).unlink()


def truncate_json(directory: Path) -> None:
    path = directory / ARTIFACT_FILE
    path.write_text(path.read_text()[:100])


def unknown_metadata_key(directory: Path) -> None:
    path = directory / ARTIFACT_FILE
    document = json.loads(path.read_text())
    document["metadata"]["settings"]["learning_rat"] = 0.1
    path.write_text(json.dumps(document))


@pytest.mark.parametrize(("damage", "message"), [
    (corrupt_model_text, r"corrupt: its files hash to 0x[0-9a-f]{64}, not the saved content hash"),
    (drop_a_model, r"unreadable or corrupt: .*yield.txt"),
    (truncate_json, r"unreadable or corrupt: (Unterminated|Expecting)"),
    (unknown_metadata_key, r"unreadable or corrupt: Extra inputs are not permitted"),
])
def test_a_damaged_artifact_is_a_clear_model_error(trained: ModelArtifact, tmp_path: Path, damage, message) -> None:
    directory = trained.save(tmp_path / "model")
    damage(directory)
    with pytest.raises(ModelError, match=rf"model artifact {directory}: {message}"):
        ModelArtifact.load(directory)


def test_a_missing_artifact_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"model artifact .*nowhere: no artifact.json .*vaultbot model train"):
        ModelArtifact.load(tmp_path / "nowhere")


def test_predicting_without_the_trained_features_is_refused(trained: ModelArtifact) -> None:
    with pytest.raises(ModelError, match="features missing for the model: apy, apy_base"):
        trained.predict(pd.DataFrame({"tvl_log": [1.0]}))


def test_too_little_history_is_a_clear_error(synthetic_or_real: MarketData) -> None:
    data = synthetic_or_real
    start = data.history["timestamp"].min()
    with pytest.raises(ModelError, match=r"too little history to train: \d+ labelled rows end by .*min_train_rows"):
        train_artifact(data.history, data.news, data.pools, start + 12 * DAY, FAST)
    with pytest.raises(ModelError, match="no market history up to train_end"):
        train_artifact(data.history, data.news, data.pools, start - DAY, FAST)


def test_importances_cover_every_feature_of_every_model(trained: ModelArtifact) -> None:
    gains = trained.importances()
    assert list(gains.columns) == list(MODELS) and sorted(gains.index) == sorted(trained.features)
    assert (gains.sum() > 0).all()

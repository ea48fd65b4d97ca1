"""The keeper's models (`keeper.models`, `keeper.modelstore`) on a synthetic market, cycle by cycle: the same
retraining days and the same rule deciding as the ML backtest under the same config, and the trailing-best
fallback switching on when the model errs worse than persistence and off after a passing retraining; what
the store refuses and how the keeper warms up."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pandas as pd
import pytest

from backtest.market import MarketData
from backtest.model import ModelForecaster
from config import ModelPlacement
from keeper.metrics import KeeperMetrics
from keeper.models import CycleModel, KeeperModels, TrainingData
from keeper.modelstore import STATE_FILE, ModelStore
from sources.inputs import ModelInputs
from strategy.models import ModelError, train_artifact
from strategy.models.promotion import MODEL, TRAILING_BEST, PolicyState, trained_day
from strategy.synthetic import SyntheticMarket
from strategy.trailing_best import RULE_HASH, trailing_best
from tests.strategy.promotion_world import (
    SETTINGS,
    day,
    promotion_market,
    shuffled,
)


class Feed:
    """What `keeper.startup._training_data` would fetch on `today`: the market up to that day."""

    def __init__(self, market: SyntheticMarket) -> None:
        self.market, self.today = market, None

    def known(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        market = self.market
        return (market.history[market.history["timestamp"] <= self.today],
                market.news[market.news["timestamp"] <= self.today])

    def __call__(self) -> TrainingData:
        history, news = self.known()
        return history, news, self.market.pools

    def inputs(self, on: pd.Timestamp) -> ModelInputs:
        """A cycle's inputs on day `on` (what `sources.inputs.gather_inputs` hands the keeper)."""
        self.today = on
        history, news = self.known()
        return ModelInputs(history, news, self.market.pools, on)


def open_models(directory: Path, feed: Feed, metrics: KeeperMetrics | None = None) -> KeeperModels:
    return KeeperModels.open(ModelPlacement(artifact_dir=directory, train_if_missing=True), SETTINGS, feed,
                             metrics=metrics)


@pytest.mark.slow  # about ten seconds: seven models trained on each side
def test_the_keeper_and_the_backtest_retrain_on_the_same_days_and_trust_the_same_models(
        promotion_market: SyntheticMarket, tmp_path: Path) -> None:
    market = promotion_market
    feed, metrics = Feed(market), KeeperMetrics(max_age_s=60)
    keeper = open_models(tmp_path / "model", feed, metrics)
    backtest = ModelForecaster(SETTINGS)
    view = MarketData(market.history, market.news, market.pools, "synthetic", synthetic=True)
    trusted = {}
    for on in [day(k) for k in range(150, 236, 5)]:  # a decision every five days, in both
        cycle = keeper.for_cycle(feed.inputs(on))
        backtest.forecast(view.until(on), on)
        trusted[on] = (cycle.rule, cycle.champion.content_hash, backtest.state.champion.content_hash)

    store = ModelStore(tmp_path / "model")
    keeper_trainings = sorted(trained_day(store.load(content_hash)) for content_hash in store.hashes())
    assert keeper_trainings == backtest.trainings == [day(150), day(175), day(200), day(225)]
    assert {on: rule for on, (rule, _, _) in trusted.items()} == backtest.rules
    assert all(keeper_hash == backtest_hash for _, keeper_hash, backtest_hash in trusted.values())
    promoted = [verdict.promoted for verdict in backtest.verdicts]
    count = metrics.registry.get_sample_value
    assert count("vaultbot_keeper_model_trainings_total", {"verdict": "promoted"}) == promoted.count(True)
    assert (count("vaultbot_keeper_model_trainings_total", {"verdict": "rejected"}) or 0) == promoted.count(False)

@pytest.mark.slow  # about eight seconds: a cycle a day for 25 days
def test_the_fallback_switches_on_when_the_model_errs_worse_than_persistence_and_off_after_a_passing_retrain(
        promotion_market: SyntheticMarket, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    market = promotion_market
    # A champion put in place by hand (`vaultbot model train --out`), trained on a history of shuffled APYs.
    bad = train_artifact(shuffled(market.history), market.news, market.pools, train_end=day(210), settings=SETTINGS)
    bad.save(tmp_path / "model")
    feed, metrics = Feed(market), KeeperMetrics(max_age_s=60)
    models = open_models(tmp_path / "model", feed, metrics)
    assert models.state.champion.content_hash == bad.content_hash  # adopted as the champion

    def cycle(on: pd.Timestamp) -> CycleModel:
        with caplog.at_level(logging.INFO, logger="keeper.models"):
            return models.for_cycle(feed.inputs(on))

    before = cycle(day(222))  # its first 6 labelled days out of sample: less than the 7-day window
    assert (before.rule, before.model_hash, before.fallback) == (MODEL, bad.content_hash, None)
    assert metrics.registry.get_sample_value("vaultbot_keeper_model_fallback") == 0
    assert metrics.registry.get_sample_value("vaultbot_keeper_model_age_days") == 12

    switched = cycle(day(223))  # a full window, and its realised error is worse than persistence's
    assert (switched.rule, switched.model_hash) == (TRAILING_BEST, RULE_HASH)
    assert switched.champion.content_hash == bad.content_hash  # still the champion, not trusted
    assert switched.fallback.startswith("the model's realised yield MAE on 2024-07-29..2024-08-04 is")
    assert switched.forecasts == trailing_best(feed.known()[0], day(223))
    assert metrics.registry.get_sample_value("vaultbot_keeper_model_fallback") == 1
    assert "the trailing-best rule decides until a retrained model passes the gate" in caplog.text
    assert json.loads((tmp_path / "model" / STATE_FILE).read_text())["fallback"] == switched.fallback

    held = [cycle(day(k)) for k in range(224, 235)]  # a latch: it stays until a retraining passes the gate
    assert {(c.rule, c.model_hash) for c in held} == {(TRAILING_BEST, RULE_HASH)}
    restarted = open_models(tmp_path / "model", feed)  # the store keeps the state across a restart
    assert (restarted.state.champion.content_hash, restarted.state.fallback) == (bad.content_hash, switched.fallback)

    retrained = cycle(day(235))  # 25 days after the champion's training: a challenger on the real history
    assert retrained.rule == MODEL and retrained.fallback is None
    assert retrained.model_hash == retrained.champion.content_hash != bad.content_hash
    assert trained_day(retrained.champion) == day(235)
    assert metrics.registry.get_sample_value("vaultbot_keeper_model_fallback") == 0
    assert metrics.registry.get_sample_value("vaultbot_keeper_model_trainings_total", {"verdict": "promoted"}) == 1
    assert "promoted: beat both" in caplog.text
    store = ModelStore(tmp_path / "model")
    assert set(store.hashes()) == {bad.content_hash, retrained.model_hash}
    assert store.load_state().champion.content_hash == retrained.model_hash


def test_an_empty_store_is_an_error_unless_training_is_allowed_and_then_cycles_warm_up(
        promotion_market: SyntheticMarket, tmp_path: Path) -> None:
    feed, metrics = Feed(promotion_market), KeeperMetrics(max_age_s=60)
    with pytest.raises(ModelError, match=r"no model artifact in .*model \(model.artifact_dir\); train one with"):
        KeeperModels.open(ModelPlacement(artifact_dir=tmp_path / "model"), SETTINGS, feed)
    models = open_models(tmp_path / "model", feed, metrics)
    with pytest.raises(ModelError, match="no model to decide with yet: too little history to train"):
        models.for_cycle(feed.inputs(day(10)))  # ten days of history: nothing to train on yet
    assert models.state == PolicyState() and not (tmp_path / "model" / STATE_FILE).exists()
    assert math.isnan(metrics.registry.get_sample_value("vaultbot_keeper_model_age_days"))


def test_a_directory_of_other_files_is_refused_and_never_written(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(ModelError, match="holds files but neither a model store"):
        ModelStore(tmp_path).load_state()
    assert [path.name for path in tmp_path.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize(("state", "says"), [
    ({"champion": 5, "last_trained": None, "fallback": None}, "champion 5 is not a content hash"),
    ({"champion": "../../elsewhere", "last_trained": None, "fallback": None}, "is not a content hash"),
    ({"champion": None, "last_trained": "garbage", "fallback": None}, "garbage"),
])
def test_a_corrupt_store_state_is_named_and_nothing_outside_the_store_is_loaded(tmp_path: Path, state: dict,
                                                                                 says: str) -> None:
    (tmp_path / STATE_FILE).write_text(json.dumps(state))
    with pytest.raises(ModelError, match="unreadable or corrupt") as caught:
        ModelStore(tmp_path).load_state()
    assert says in str(caught.value)


def test_the_keepers_gate_trial_is_its_challengers_yield_booster_trained_alone(
        promotion_market: SyntheticMarket, tmp_path: Path) -> None:
    """The keeper scores a challenger's trial as the backtest does: the yield booster alone, the same bits."""
    feed = Feed(promotion_market)
    feed.today = day(200)
    train, trial = open_models(tmp_path / "model", feed)._trainers()
    challenger, alone = train(day(180)), trial(day(180))
    assert alone.model_text == challenger.model_texts["yield"] and alone.features == challenger.features


def test_the_inputs_of_the_cycle_before_are_read_with_the_features_built_for_them(
        promotion_market: SyntheticMarket, tmp_path: Path) -> None:
    """`gather_inputs` hands a cycle the very inputs of the cycle before while the answers did not move: their
    features are built once; other inputs of the same data are built again, to the same values."""
    feed = Feed(promotion_market)
    models = open_models(tmp_path / "model", feed)
    inputs = feed.inputs(day(150))
    first = models.for_cycle(inputs)
    features = models._known_of(inputs)[1]
    again = models.for_cycle(inputs)
    assert models._known_of(inputs)[1] is features
    assert (again.forecasts, again.model_hash) == (first.forecasts, first.model_hash)
    rebuilt = models._known_of(feed.inputs(day(150)))[1]
    assert rebuilt is not features
    pd.testing.assert_frame_equal(rebuilt, features)

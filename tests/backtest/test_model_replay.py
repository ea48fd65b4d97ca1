"""The ML strategy's replay trains and judges what the plain path would, model for model: its features read
from one build over the whole data and its trials' yield boosters trained alone change no bit; and the
configured rolling training window reaches its retraining."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from backtest.engine import replay
from backtest.market import MarketData
from backtest.model import ModelForecaster
from backtest.run import RunConfig, build_setup, make_forecaster
from strategy.config import ModelSettings
from strategy.models import ModelArtifact, train_artifact
from strategy.models.dataset import model_features
from strategy.models.promotion import Known, judge
from tests.backtest.conftest import END, START, make_setup

# Few rounds, retrained every 20 days and judged on 14: five challengers and four trials in the 90-day window.
FAST = ModelSettings(num_boost_round=40, early_stopping_rounds=10, min_train_rows=50, retrain_every_days=20,
                     gate_window_days=14, fallback_window_days=7)


def test_the_replay_trains_and_judges_each_challenger_as_the_plain_path(market: MarketData) -> None:
    model = ModelForecaster(FAST)
    replay(make_setup(market, rebalance_every=2), model)
    assert len(model.verdicts) == 5 and sum(verdict.scores.first is not None for verdict in model.verdicts) == 4
    champion: ModelArtifact | None = None
    for verdict in model.verdicts:
        view = market.until(verdict.day)
        plain = train_artifact(view.history, view.news, view.pools, train_end=verdict.day, settings=FAST)
        assert verdict.challenger.content_hash == plain.content_hash
        known = Known(model_features(view.history, view.news, view.pools), view.history,
                      lambda end, view=view: train_artifact(view.history, view.news, view.pools, end, FAST))
        assert judge(champion, plain, verdict.day, known, FAST) == verdict  # the trial trained whole
        champion = verdict.challenger if verdict.promoted else champion


def test_a_training_window_in_the_config_reaches_the_replays_retraining(market: MarketData, tmp_path: Path) -> None:
    path = tmp_path / "vaultbot.toml"
    path.write_text("[strategy.model]\ntrain_window_days = 30\nnum_boost_round = 40\nearly_stopping_rounds = 10\n")
    config = RunConfig.load(path)
    setup = build_setup(market, START, END, config, 1_000_000, 10)
    forecaster = make_forecaster("ml", setup, config)
    assert isinstance(forecaster, ModelForecaster) and forecaster.settings.train_window_days == 30
    replay(setup, forecaster)
    assert len(forecaster.verdicts) == 3
    for verdict in forecaster.verdicts:
        meta = verdict.challenger.metadata
        assert meta.train_start == meta.last_label_day - pd.Timedelta(days=29)
        assert meta.settings.train_window_days == 30

"""Shared by the promotion tests (strategy, keeper): a small synthetic market, fast settings, a history in which
nothing predicts anything, and what the policy knows on a day.

Test modules import the fixtures they use from here (`from tests.strategy.promotion_world import ...`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from strategy.config import ModelSettings
from strategy.models import train_artifact
from strategy.models.dataset import model_features
from strategy.models.promotion import Known
from strategy.synthetic import SyntheticMarket, generate_market

START = pd.Timestamp("2024-01-01", tz="UTC")
# Few rounds: a model trains in about half a second. Retrained every 25 days, judged on the last 14 labelled
# days, handed over to the trailing-best rule after 7 bad ones: the windows fit in a short test.
SETTINGS = ModelSettings(num_boost_round=40, early_stopping_rounds=10, min_train_rows=50, retrain_every_days=25,
                         gate_window_days=14, fallback_window_days=7)


def day(offset: int) -> pd.Timestamp:
    return START + pd.Timedelta(days=offset)


@pytest.fixture(scope="session")
def promotion_market() -> SyntheticMarket:
    """Six pools over 260 days (seed 3)."""
    return generate_market(n_pools=6, days=260, seed=3, start=START)


@pytest.fixture(scope="session")
def promotion_features(promotion_market: SyntheticMarket) -> pd.DataFrame:
    """The market's `model_features`, built once: every value at t uses only data up to t."""
    market = promotion_market
    return model_features(market.history, market.news, market.pools)


def shuffled(history: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """`history` with each pool's APYs in random order: a model trained on it learns relations that the real
    market does not have, and forecasts it worse than persistence."""
    rng = np.random.default_rng(seed)
    return history.assign(apy=history.groupby("pool")["apy"].transform(lambda apy: rng.permutation(apy.to_numpy())))


def known_on(market: SyntheticMarket, features: pd.DataFrame, on: pd.Timestamp,
             train_history: pd.DataFrame | None = None) -> Known:
    """What is known `on` a day of `market`; training on `train_history` (default: the market's own)."""
    history = market.history[market.history["timestamp"] <= on]
    trained_on = market.history if train_history is None else train_history
    return Known(features[features.index.get_level_values("timestamp") <= on], history,
                 lambda train_end: train_artifact(trained_on, market.news, market.pools, train_end=train_end,
                                                  settings=SETTINGS))

"""Shared by the model tests: fast training settings and one model trained per session.

Test modules import the fixtures they use from here (`from tests.strategy.models_world import ...`).
"""

from __future__ import annotations

import pandas as pd
import pytest

from strategy.config import ModelSettings
from strategy.models import ModelArtifact, train_artifact
from tests.strategy.conftest import MarketData

# Few rounds and one thread: a model trains in well under a second on the test market.
FAST = ModelSettings(num_boost_round=40, early_stopping_rounds=10, min_train_rows=50, num_threads=1)


def train_end_of(data: MarketData) -> pd.Timestamp:
    """A training cut 30 days before the end of the data, so there are days after it to perturb."""
    return data.history["timestamp"].max() - pd.Timedelta(days=30)


@pytest.fixture(scope="session")
def trained(synthetic_or_real: MarketData) -> ModelArtifact:
    data = synthetic_or_real
    return train_artifact(data.history, data.news, data.pools, train_end=train_end_of(data), settings=FAST)

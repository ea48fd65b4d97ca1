"""Forecasts for the allocator: one per pool with a row on the decision day, from data up to then only.

Tests taking `synthetic_or_real` run on the synthetic market until real data is in ../shared/data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from strategy.allocator import MarketForecast
from strategy.forecast import forecast_at
from strategy.models import ModelArtifact
from tests.strategy.conftest import MarketData
from tests.strategy.models_world import trained

DAY = pd.Timedelta(days=1)


def perturbed_after(data: MarketData, at: pd.Timestamp, seed: int) -> MarketData:
    """Every market value after `at` scrambled, later rows dropped or added, alarming news after `at`."""
    rng = np.random.default_rng(seed)
    history = data.history.copy()
    later = history["timestamp"] > at
    for column in ("apy", "apy_base", "apy_reward", "tvl_usd", "price", "utilization"):
        history.loc[later, column] = history.loc[later, column] * rng.uniform(0.1, 5.0, later.sum())
    history = history.drop(history.index[later & (rng.random(len(history)) < 0.3)])
    extra = history[history["timestamp"] == at].assign(timestamp=at + 40 * DAY)  # a day beyond the end
    alarms = pd.DataFrame({"timestamp": [at + pd.Timedelta(seconds=1), at + 2 * DAY],
                           "title": ["Protocol hacked: exploit drains funds, depeg"] * 2, "source": "x",
                           "url": ["https://x/1", "https://x/2"], "summary": "insolvency"})
    news = pd.concat([data.news, alarms.astype(data.news.dtypes.to_dict())]).sort_values("timestamp")
    return MarketData(pd.concat([history, extra], ignore_index=True), data.pools, news, data.source)


@pytest.mark.parametrize(("days_before_end", "seed"), [(25, 1), (10, 2), (1, 3)])
def test_a_forecast_ignores_everything_after_its_time(trained: ModelArtifact, synthetic_or_real: MarketData,
                                                      days_before_end: int, seed: int) -> None:
    data = synthetic_or_real
    at = data.history["timestamp"].max() - days_before_end * DAY
    expected = forecast_at(trained, data.history, data.news, data.pools, at)
    changed = perturbed_after(data, at, seed)
    assert forecast_at(trained, changed.history, changed.news, changed.pools, at) == expected
    # ... and the same time of day later changes nothing either: rows at the next midnight are not known yet.
    assert forecast_at(trained, changed.history, changed.news, changed.pools, at + pd.Timedelta(hours=23)) == expected


def test_one_forecast_per_pool_on_the_day(trained: ModelArtifact, synthetic_or_real: MarketData) -> None:
    data = synthetic_or_real
    at = data.history["timestamp"].max() - 3 * DAY
    absent = data.history["pool"].iloc[0]
    history = data.history[~((data.history["pool"] == absent) & (data.history["timestamp"] == at))]
    forecasts = forecast_at(trained, history, data.news, data.pools, at)
    assert set(forecasts) == set(history.loc[history["timestamp"] == at, "pool"]) and absent not in forecasts
    assert all(isinstance(f, MarketForecast) and 0 <= f.p_event <= 1 for f in forecasts.values())
    # each weighed by what the model measured an event to cost
    assert {f.loss_given_event for f in forecasts.values()} == {trained.metadata.loss_given_event}
    # The yield forecast is a correction to the trailing week, so it stays in the range APYs take.
    apy = history.loc[history["timestamp"] == at].set_index("pool")["apy"]
    assert all(abs(forecasts[pool].apy_pct - apy[pool]) < 5 + apy[pool] for pool in forecasts)


def test_no_rows_on_the_day_means_no_forecasts(trained: ModelArtifact, synthetic_or_real: MarketData) -> None:
    data = synthetic_or_real
    start = data.history["timestamp"].min()
    assert forecast_at(trained, data.history, data.news, data.pools, start - DAY) == {}
    assert forecast_at(trained, data.history, data.news, data.pools, data.history["timestamp"].max() + DAY) == {}


def test_a_naive_time_is_taken_as_utc(trained: ModelArtifact, synthetic_or_real: MarketData) -> None:
    data = synthetic_or_real
    at = data.history["timestamp"].max() - 2 * DAY
    assert forecast_at(trained, data.history, data.news, data.pools, at.tz_localize(None)) == \
        forecast_at(trained, data.history, data.news, data.pools, at)

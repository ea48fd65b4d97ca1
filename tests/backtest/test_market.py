"""`MarketData`: point-in-time cuts, and model features read by day from one build over the whole data."""

from __future__ import annotations

import pandas as pd
import pytest

from backtest.market import MarketData
from strategy.data.schema import TIMESTAMP
from strategy.models.dataset import known_at, model_features
from tests.backtest.conftest import END, START

DAY = pd.Timedelta(days=1)


@pytest.mark.parametrize("offset", [0, 17, 89])
def test_features_of_a_cut_are_those_built_on_the_cut_to_the_last_bit(market: MarketData, offset: int) -> None:
    day = START + offset * DAY
    history, news = known_at(market.history, market.news, day)
    expected = model_features(history, news, market.pools).xs(day, level=TIMESTAMP)
    pd.testing.assert_frame_equal(market.until(day).model_features_on(day), expected, check_exact=True)


def test_a_cut_refuses_features_of_a_later_day(market: MarketData) -> None:
    with pytest.raises(ValueError, match="features on 2024-03-02 asked of data known at 2024-03-01"):
        market.until(START).model_features_on(START + DAY)


def test_a_day_without_rows_has_no_features(market: MarketData) -> None:
    later = market.history[TIMESTAMP] > START
    gap = MarketData(market.history[later | (market.history[TIMESTAMP] < START)], market.news, market.pools, "gap")
    features = gap.until(END).model_features_on(START)
    assert features.empty and list(features.columns) == list(gap.model_features_on(END).columns)

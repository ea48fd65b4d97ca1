"""`forward_apy_mean` is `build_targets`' forward mean APY alone: the gate scores yield forecasts by it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backtest.market import load_market
from strategy.synthetic import generate_market
from strategy.targets import FWD_APY_MEAN, TargetParams, build_targets, forward_apy_mean
from tests.shared_data import real_dataset


def assert_same_bits(history: pd.DataFrame, params: TargetParams) -> None:
    expected = build_targets(history, params=params)[FWD_APY_MEAN]
    alone = forward_apy_mean(history, params)
    assert alone.name == FWD_APY_MEAN and alone.index.equals(expected.index)
    assert np.array_equal(alone.to_numpy(), expected.to_numpy(), equal_nan=True)
    assert alone.notna().any() and alone.isna().any()  # complete horizons and cut ones both compared


@pytest.mark.parametrize("horizon", [1, 7, 30])
def test_the_forward_mean_alone_is_build_targets_to_the_bit_with_gaps_in_the_days(horizon: int) -> None:
    history = generate_market(n_pools=6, days=200, seed=3).history
    rng = np.random.default_rng(5)
    gappy = history[rng.random(len(history)) > 0.05].reset_index(drop=True)  # days missing here and there
    assert_same_bits(gappy, TargetParams(horizon_days=horizon))


def test_the_forward_mean_alone_is_build_targets_to_the_bit_on_the_real_markets() -> None:
    dataset = real_dataset()
    if dataset is None:
        pytest.skip("no real market history in ../shared/data (tests/shared_data.py)")
    assert_same_bits(load_market(dataset.history).history, TargetParams())

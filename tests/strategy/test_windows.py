"""`strategy.features.windows.trailing`: every pool's windows in one rolling call give the bits of
`DataFrame.rolling`, column by column (the features are compared bit for bit across code changes)."""

import numpy as np
import pandas as pd
import pytest

from strategy.features.windows import trailing

HOWS = ("mean", "std", "var", "max", "min", "sum", "cov")


def awkward_panel(rng: np.random.Generator, days: int, pools: int) -> np.ndarray:
    """Values over several magnitudes with gaps, runs of one value (var's exact-zero path), infinities, -0.0."""
    values = rng.normal(size=(days, pools)) * 10.0 ** rng.integers(-3, 6)
    kind = rng.random((days, pools))
    values[kind < 0.15] = np.nan
    values[(kind >= 0.15) & (kind < 0.3)] = 1.5
    values[(kind >= 0.3) & (kind < 0.33)] = np.inf
    values[(kind >= 0.33) & (kind < 0.35)] = -0.0
    return values


@pytest.mark.parametrize("seed", range(40))
def test_trailing_windows_are_the_frames_rolling_bit_for_bit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    days, pools = int(rng.integers(1, 120)), int(rng.integers(1, 7))
    values, other = awkward_panel(rng, days, pools), awkward_panel(rng, days, pools)
    window = int(rng.integers(1, 100))
    min_periods = int(rng.integers(0, window + 1))
    for how in HOWS:
        rolling = pd.DataFrame(values).rolling(window, min_periods=min_periods)
        expected = (rolling.cov(pd.DataFrame(other)) if how == "cov" else getattr(rolling, how)()).to_numpy()
        got = trailing(values, window, min_periods, how, other if how == "cov" else None)
        assert got.shape == expected.shape
        assert np.array_equal(got.view(np.int64), expected.view(np.int64)), how

"""Walk-forward evaluation: the baselines computed by hand on tiny frames, and an honest out-of-sample run.

Tests taking `synthetic_or_real` run on the synthetic market until real data is in ../shared/data.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from strategy.forecast import forecast_at
from strategy.models import ModelError, train_artifact, walk_forward
from strategy.models.dataset import persistence_apy
from strategy.models.evaluation import score
from strategy.models.metrics import reliability
from tests.strategy.conftest import MarketData
from tests.strategy.models_world import FAST

DAY = pd.Timedelta(days=1)
T0 = pd.Timestamp("2024-01-01", tz="UTC")


def history(apys: dict[str, list[float | None]]) -> pd.DataFrame:
    """A canonical daily history from {pool: [apy per day, None = no row]}."""
    rows = [{"timestamp": T0 + i * DAY, "pool": pool, "apy": apy, "apy_base": apy, "apy_reward": 0.0, "tvl_usd": 1e6}
            for pool, values in apys.items() for i, apy in enumerate(values) if apy is not None]
    frame = pd.DataFrame(rows)
    frame["timestamp"] = frame["timestamp"].astype("datetime64[us, UTC]")
    return frame


def test_persistence_is_the_trailing_seven_day_mean_of_the_rows_there() -> None:
    baseline = persistence_apy(history({"a": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], "b": [4, None, 8, None, None, None,
                                                                                     None, None, 2, 6]}))
    a, b = baseline.xs("a", level="pool"), baseline.xs("b", level="pool")
    assert a.iloc[0] == 1 and a.iloc[2] == 2 and a.iloc[6] == 4  # mean(1..7)
    assert a.iloc[9] == 7  # mean(4..10): days 3 ... 9
    assert b.iloc[0] == 4 and b.iloc[1] == 6  # mean(4, 8): the missing day does not count
    assert b.iloc[2] == 5  # day 8: days 2 ... 8 hold 8 and 2; day 0 is out of the window
    assert b.iloc[3] == 4  # day 9: days 3 ... 9 hold 2 and 6


def test_scores_are_the_textbook_ones_on_a_hand_checkable_table() -> None:
    index = pd.MultiIndex.from_tuples([(T0, "a"), (T0, "b"), (T0 + DAY, "a"), (T0 + DAY, "b")],
                                      names=["timestamp", "pool"])
    table = pd.DataFrame({
        "actual": [5.0, 3.0, 4.0, 1.0],
        "baseline": [4.0, 4.0, 4.0, 4.0],  # errors 1, 1, 0, 3: MAE 1.25
        "apy_pred": [5.5, 3.0, 3.0, 1.5],  # errors 0.5, 0, 1, 0.5: MAE 0.5
        "apy_q10": [4.0, 3.5, 3.0, 0.0],  # outcomes below: b on day 0 only
        "event": [0.0, 1.0, 0.0, 1.0],
        "p_event": [0.1, 0.8, 0.3, 0.2],  # ranks: the 0.2 event is below the 0.3 non-event: AUC 3/4
        "p_base_rate": [0.5] * 4,
        "fold": [0, 0, 1, 1],
    }, index=index)
    result = score(table, T0, T0 + DAY)
    assert (result.mae_model, result.mae_baseline, result.beats_baseline) == (0.5, 1.25, True)
    assert result.auc == 0.75 and result.event_rate == 0.5 and result.q10_below_share == 0.25
    assert math.isclose(result.brier, (0.01 + 0.04 + 0.09 + 0.64) / 4)
    assert result.brier_base_rate == 0.25
    assert (result.folds, result.rows, result.pools) == (2, 4, 2)
    worse = score(table.assign(apy_pred=table["actual"] + 2), T0, T0 + DAY)
    assert worse.mae_model == 2.0 and not worse.beats_baseline


def test_reliability_bins_count_forecasts_and_outcomes() -> None:
    bins = reliability(np.array([0.05, 0.15, 0.12, 1.0, 0.95]), np.array([0, 1, 0, 1, 1]), bins=10)
    assert [b.count for b in bins] == [1, 2, 0, 0, 0, 0, 0, 0, 0, 2]
    assert bins[1].mean_predicted == pytest.approx(0.135) and bins[1].observed_rate == 0.5
    assert bins[2].mean_predicted is None and bins[9].observed_rate == 1.0


@pytest.fixture(scope="module")
def evaluated(synthetic_or_real: MarketData):
    data = synthetic_or_real
    return walk_forward(data.history, data.news, data.pools, FAST, test_days=60, fold_days=30)


def test_walk_forward_forecasts_each_fold_with_a_model_trained_before_it(evaluated,
                                                                        synthetic_or_real: MarketData) -> None:
    data = synthetic_or_real
    result, table = evaluated
    days = table.index.get_level_values("timestamp")
    assert result.folds == 2 and result.rows == len(table) and (days.min(), days.max()) == (
        result.test_start, result.test_end)
    assert (result.test_end - result.test_start).days == 59
    # The last fold's forecasts are those a model trained at its first day makes live, day by day.
    fold_start = days[table["fold"].to_numpy() == 1].min()
    live = train_artifact(data.history, data.news, data.pools, fold_start, FAST)
    for day in (fold_start, fold_start + 10 * DAY):
        forecasts = forecast_at(live, data.history, data.news, data.pools, day)
        rows = table.xs(day, level="timestamp")
        assert {pool: (f.apy_pct, f.p_event) for pool, f in forecasts.items()} == {
            pool: (row.apy_pred, row.p_event) for pool, row in rows.iterrows()}
    # The baseline is persistence and its MAE is over the same rows.
    persistence = persistence_apy(data.history).reindex(table.index)
    np.testing.assert_array_equal(table["baseline"], persistence)
    assert result.mae_baseline == pytest.approx(np.mean(np.abs(persistence - table["actual"])))


def test_on_the_synthetic_market_the_yield_model_beats_persistence(evaluated, synthetic_or_real: MarketData) -> None:
    result, _ = evaluated
    if synthetic_or_real.source != "synthetic":
        pytest.skip("real data: the comparison is reported by `vaultbot model evaluate`, not asserted")
    assert result.beats_baseline, f"model MAE {result.mae_model:.3f} vs persistence {result.mae_baseline:.3f}"
    assert 0.0 < result.q10_below_share < 0.3


def test_a_test_period_without_training_days_before_it_is_refused(synthetic_or_real: MarketData) -> None:
    data = synthetic_or_real
    with pytest.raises(ModelError, match="too few for a test period of 1000 days"):
        walk_forward(data.history, data.news, data.pools, FAST, test_days=1000)
    with pytest.raises(ModelError, match="at least one day"):
        walk_forward(data.history, data.news, data.pools, FAST, test_days=0)

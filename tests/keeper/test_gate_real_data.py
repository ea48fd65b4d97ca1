"""The data gate on the team's real lending-market history (../shared/data): every real day passes, and the
same days broken the way feeds break are refused. Skipped, saying why, when no real history is there."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from sources.gate import (
    GateLimits,
    ImplausibleDataError,
    MissingDataError,
    StaleDataError,
    check_market,
)
from strategy.data import load_market_history
from tests.shared_data import real_dataset

AFTER_PUBLICATION = timedelta(hours=1)  # the keeper runs some time after a point is published
GATE_READS = GateLimits().max_frozen_points + 1  # the most points of a series the gate looks at


@pytest.fixture(scope="module")
def real_history() -> pd.DataFrame:
    dataset = real_dataset()
    if dataset is None:
        pytest.skip("no real market history in ../shared/data (tests/shared_data.py)")
    # As the keeper sees it: raw timestamps, not aligned to midnights.
    return load_market_history(dataset.history).frame.sort_values(["pool", "timestamp"], ignore_index=True)


def test_every_real_day_of_every_pool_passes(real_history: pd.DataFrame) -> None:
    refused = []
    for pool, series in real_history.groupby("pool"):
        check_market(series, series["timestamp"].iloc[-1] + AFTER_PUBLICATION, required_pools=[pool])
        for end in range(1, len(series) + 1):
            # The gate judges the last points only (its docstring), so the days before them can be left out.
            known = series.iloc[max(0, end - GATE_READS):end]
            try:
                check_market(known, known["timestamp"].iloc[-1] + AFTER_PUBLICATION, required_pools=[pool])
            except (ImplausibleDataError, StaleDataError, MissingDataError) as error:
                refused.append(f"{known['timestamp'].iloc[-1].date()} {error}")
    assert refused == [], f"{len(refused)} real days refused, first: {refused[:3]}"
    assert real_history["pool"].nunique() >= 2  # the loop ran over the real data, not an empty frame


def test_the_real_swings_are_there(real_history: pd.DataFrame) -> None:
    """What the old step limits refused: available liquidity moving more than 50 % and APY more than 50 points."""
    by_pool = real_history.groupby("pool")
    tvl_step = (by_pool["tvl_usd"].pct_change()).abs()
    apy_step = by_pool["apy"].diff().abs()
    assert (tvl_step > 0.5).sum() > 50
    assert (apy_step > 50).sum() >= 1


def _last_days(real_history: pd.DataFrame) -> tuple[pd.DataFrame, pd.Timestamp]:
    """The longest real series and the moment just after its last point."""
    pool = real_history["pool"].value_counts().index[0]
    series = real_history[real_history["pool"] == pool].reset_index(drop=True)
    return series, series["timestamp"].iloc[-1] + AFTER_PUBLICATION


@pytest.mark.parametrize(
    ("column", "value", "error", "reason"),
    [
        ("apy", 1e6, ImplausibleDataError, "APY 1000000.0 % is outside"),
        ("apy", float("nan"), ImplausibleDataError, "APY nan % is outside"),
        ("apy", -0.5, ImplausibleDataError, "APY -0.5 % is outside"),
        ("tvl_usd", 0.0, ImplausibleDataError, "TVL 0.0 USD is outside"),
        ("tvl_usd", 1e18, ImplausibleDataError, "TVL 1e+18 USD is outside"),
        ("utilization", 1.7, ImplausibleDataError, "utilization 1.7 is outside"),
    ],
)
def test_a_real_last_day_broken_like_a_feed_is_refused(real_history, column, value, error, reason) -> None:
    series, now = _last_days(real_history)
    check_market(series, now)
    broken = series.copy()
    broken.loc[broken.index[-1], column] = value
    with pytest.raises(error, match=reason.replace("+", "\\+")):
        check_market(broken, now)


def test_a_real_feed_that_stopped_or_runs_ahead_is_refused(real_history) -> None:
    series, now = _last_days(real_history)
    with pytest.raises(StaleDataError, match="h old"):
        check_market(series, now + timedelta(days=2))
    with pytest.raises(ImplausibleDataError, match="in the future"):
        check_market(series, now - timedelta(hours=3))


def test_a_real_feed_that_repeats_its_last_answer_is_refused(real_history) -> None:
    series, now = _last_days(real_history)
    last = series.iloc[[-1]]
    repeated = pd.concat([series, last.assign(timestamp=last["timestamp"] + timedelta(days=1)),
                          last.assign(timestamp=last["timestamp"] + timedelta(days=2))], ignore_index=True)
    with pytest.raises(StaleDataError, match="frozen feed"):
        check_market(repeated, now + timedelta(days=2))


def test_a_real_feed_that_changed_its_schema_is_refused(real_history) -> None:
    series, now = _last_days(real_history)
    with pytest.raises(MissingDataError, match="lacks column"):
        check_market(series.rename(columns={"tvl_usd": "tvlUsd"}), now)
    with pytest.raises(MissingDataError, match="no data for pool"):
        check_market(series, now, required_pools=[series["pool"].iloc[0], "a-pool-the-feed-dropped"])

"""The synthetic market: deterministic by seed, canonical, and with events that show in the data and are
sometimes announced by news."""

import pandas as pd
import pytest

from strategy.data import validate_market_history, validate_news
from strategy.data.schema import POOL_META_COLUMNS
from strategy.features.news import RISK_PATTERN
from strategy.synthetic import generate_market, generate_market_history
from strategy.targets import TargetParams, build_targets


@pytest.fixture(scope="module")
def market():
    return generate_market(n_pools=30, days=400, seed=11)


def test_same_seed_same_market_other_seed_other_market():
    first, again, other = (generate_market(n_pools=6, days=60, seed=s) for s in (3, 3, 4))
    for name in ("history", "pools", "news", "events"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(again, name))
    assert not first.history[["apy", "tvl_usd"]].equals(other.history[["apy", "tvl_usd"]])
    assert set(first.pools["pool"]).isdisjoint(other.pools["pool"])
    pd.testing.assert_frame_equal(generate_market_history(n_pools=6, days=60, seed=3), first.history)


def test_tables_are_canonical(market):
    history, report = validate_market_history(market.history, strict=True)
    assert not report
    pd.testing.assert_frame_equal(history, market.history)
    news, news_report = validate_news(market.news, strict=True)
    assert not news_report
    pd.testing.assert_frame_equal(news, market.news)
    assert list(market.pools.columns) == list(POOL_META_COLUMNS)
    assert set(market.history["pool"]) == set(market.pools["pool"]) and len(market.pools) == 30


def test_daily_grid_from_start(market):
    timestamps = market.history["timestamp"]
    assert (timestamps == timestamps.dt.normalize()).all()
    assert timestamps.min() == pd.Timestamp("2023-01-01", tz="UTC")
    assert timestamps.max() == pd.Timestamp("2023-01-01", tz="UTC") + pd.Timedelta(days=399)
    rows = market.history.groupby("pool").size()
    assert rows.max() == 400 and rows.min() < 400  # some pools start later


def test_apy_is_its_parts_and_utilization_only_for_lending(market):
    history = market.history
    assert (history["apy"] - history["apy_base"] - history["apy_reward"]).abs().max() < 1e-9
    lending = market.pools.loc[market.pools["project"].isin(["helix-lend", "lumen-lending-v2", "orbit-finance",
                                                            "zephyr-money"]), "pool"]
    has_utilization = history.groupby("pool")["utilization"].apply(lambda u: u.notna().all())
    assert set(has_utilization[has_utilization].index) == set(lending)


def test_events_show_in_the_market(market):
    history = market.history.set_index(["pool", "timestamp"])
    stable = market.pools.set_index("pool")["stablecoin"]
    assert set(market.events["kind"]) >= {"tvl_run", "pause", "depeg"}
    for event in market.events.itertuples():
        before = history.loc[(event.pool, event.timestamp - pd.Timedelta(days=1))]
        after = history.loc[event.pool].loc[event.timestamp : event.timestamp + pd.Timedelta(days=3)]
        if event.kind in ("tvl_run", "exploit", "depeg", "pause"):
            assert after["tvl_usd"].min() < 0.9 * before["tvl_usd"], event
        if event.kind in ("apy_collapse", "pause"):
            assert after["apy"].min() < 0.5 * before["apy"], event
        if event.kind == "depeg" and stable[event.pool]:  # a pair's price is the mean of its tokens' prices
            assert after["price"].min() < 0.99, event


def test_some_events_are_announced_by_risk_news(market):
    """Some, not all: a warning naming the protocol or token, with a risk word, in the 4 days before."""
    news = market.news[market.news["title"].str.contains(RISK_PATTERN, case=False, regex=True)]
    meta = market.pools.set_index("pool")
    announced = 0
    distinct = market.events.drop_duplicates(["timestamp", "kind", "subject"])
    for event in distinct.itertuples():
        name = event.subject if event.kind == "depeg" else meta.loc[event.pool, "project"].split("-")[0]
        window = news[(news["timestamp"] < event.timestamp - pd.Timedelta(days=1))
                      & (news["timestamp"] >= event.timestamp - pd.Timedelta(days=5))]
        announced += window["title"].str.contains(name, case=False).any()
    assert 0 < announced < len(distinct)


def test_adverse_targets_come_mostly_from_scheduled_events(market):
    """The generator's loss events make the adverse-event target: rows in the week before an exploit, a pause,
    a depeg or a run on a lending pool (which lends it out) are flagged, rows far from any event hardly ever.
    An APY collapse costs no principal: it is the yield model's to foresee, not an adverse event."""
    targets = build_targets(market.history, market.pools, TargetParams(horizon_days=7), market.news)
    targets = targets.dropna(subset=["fwd_apy_mean"]).reset_index()
    lending = set(market.pools.loc[market.history.groupby("pool")["utilization"].count().reindex(
        market.pools["pool"]).to_numpy() > 0, "pool"])
    losses = market.events[market.events["kind"].isin(["exploit", "pause", "depeg"])
                           | ((market.events["kind"] == "tvl_run") & market.events["pool"].isin(lending))]
    soon, near = pd.Series(False, index=targets.index), pd.Series(False, index=targets.index)
    for event in market.events.itertuples():
        days_to_event = (event.timestamp - targets["timestamp"]).dt.days.where(targets["pool"] == event.pool)
        near |= days_to_event.between(-30, 7)
    for event in losses.itertuples():
        days_to_event = (event.timestamp - targets["timestamp"]).dt.days.where(targets["pool"] == event.pool)
        soon |= days_to_event.between(1, 7)
    assert len(losses) > 0
    assert targets.loc[soon, "adverse_event"].mean() > 0.5
    assert targets.loc[~near, "adverse_event"].mean() < 0.03  # a depeg can last a while


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="at least one pool and two days"):
        generate_market(n_pools=0)

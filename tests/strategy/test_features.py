"""Features: values on hand-built series (expected values computed here from the definitions), news
matching, the daily alignment, and the no-look-ahead property on a full market."""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from strategy.data import DataError, align_to_daily
from strategy.features import build_features
from strategy.features.news import (
    _FOUND,
    HEDGE_PATTERN,
    INCIDENT_PATTERN,
    RISK_PATTERN,
    compound,
    contains,
    pool_keywords,
    sentiment_scores,
)
from strategy.synthetic import generate_market

DAY = pd.Timedelta(days=1)
START = pd.Timestamp("2024-01-01", tz="UTC")


def history_of(pool: str, apy, tvl, *, days=None, price=None, reward=1.0) -> pd.DataFrame:
    days = list(range(len(apy))) if days is None else days
    frame = pd.DataFrame({
        "timestamp": [START + d * DAY for d in days],
        "pool": pool,
        "apy": np.asarray(apy, float),
        "apy_base": np.asarray(apy, float) - reward,
        "apy_reward": reward,
        "tvl_usd": np.asarray(tvl, float),
    })
    if price is not None:
        frame["price"] = np.asarray(price, float)
    frame["timestamp"] = frame["timestamp"].astype("datetime64[us, UTC]")
    return frame


def meta(*rows) -> pd.DataFrame:
    return pd.DataFrame([{"pool": p, "chain": "Ethereum", "project": proj, "symbol": sym, "stablecoin": stable,
                          "underlying_tokens": []} for p, proj, sym, stable in rows])


APY = [2, 3, 5, 4, 6, 8, 7, 9, 10, 12]
TVL = [100, 120, 90, 150, 150, 140, 200, 100, 110, 120]


def test_time_series_features_follow_their_definitions():
    features = build_features(history_of("a", APY, TVL)).xs("a", level="pool")
    for i in range(len(APY)):
        row = features.iloc[i]
        window3 = APY[max(0, i - 2): i + 1]
        assert row["apy_chg_1d"] == pytest.approx(APY[i] - APY[i - 1]) if i >= 1 else math.isnan(row["apy_chg_1d"])
        assert row["apy_chg_3d"] == pytest.approx(APY[i] - APY[i - 3]) if i >= 3 else math.isnan(row["apy_chg_3d"])
        assert row["apy_vol_3d"] == pytest.approx(np.std(window3, ddof=1)) if i >= 1 else math.isnan(row["apy_vol_3d"])
        weights = [0.5**k for k in range(i + 1)]  # span 3 → alpha 1/2, weights over all past days
        assert row["apy_ewm_3d"] == pytest.approx(sum(w * APY[i - k] for k, w in enumerate(weights)) / sum(weights))
        assert row["tvl_drawdown_3d"] == pytest.approx(TVL[i] / max(TVL[max(0, i - 2): i + 1]) - 1)
        if i:
            assert row["tvl_growth_1d"] == pytest.approx(math.log1p(TVL[i]) - math.log1p(TVL[i - 1]))
        assert row["reward_share"] == pytest.approx(1.0 / APY[i])
        assert row["pool_age_days"] == i
    assert features["apy_z_30d"].isna().all()  # fewer than 15 days: not enough for a 30-day deviation


def test_windows_count_days_across_gaps():
    days = [0, 1, 2, 3, 4, 6, 7, 8]  # day 5 missing
    apy = [APY[d] for d in days]
    features = build_features(history_of("a", apy, [TVL[d] for d in days], days=days)).xs("a", level="pool")
    assert START + 5 * DAY not in features.index  # one row per history row
    assert math.isnan(features.loc[START + 6 * DAY, "apy_chg_1d"])  # yesterday unobserved
    assert math.isnan(features.loc[START + 8 * DAY, "apy_chg_3d"])  # day 5 unobserved
    assert features.loc[START + 7 * DAY, "apy_chg_3d"] == APY[7] - APY[4]
    assert features.loc[START + 6 * DAY, "tvl_drawdown_3d"] == pytest.approx(TVL[6] / max(TVL[4], TVL[6]) - 1)
    assert features.loc[START + 8 * DAY, "pool_age_days"] == 8


def test_cross_sectional_features_compare_pools_on_the_same_day():
    history = pd.concat([history_of("a", [4, 9], [10, 10]), history_of("b", [6, 1], [30, 5]),
                         history_of("c", [5], [20])], ignore_index=True)
    features = build_features(history)
    first, second = features.xs(START, level="timestamp"), features.xs(START + DAY, level="timestamp")
    assert first["apy_rank"].to_dict() == {"a": pytest.approx(1 / 3), "b": 1.0, "c": pytest.approx(2 / 3)}
    assert first["tvl_rank"].to_dict() == {"a": pytest.approx(1 / 3), "b": 1.0, "c": pytest.approx(2 / 3)}
    assert first["apy_excess_median"].to_dict() == {"a": -1.0, "b": 1.0, "c": 0.0}
    assert second["apy_rank"].to_dict() == {"a": 1.0, "b": 0.5}  # c has no row that day
    assert second["apy_excess_median"].to_dict() == {"a": 4.0, "b": -4.0}


def test_peg_features_only_for_stablecoin_pools():
    history = pd.concat([history_of("usd", [5] * 10, [10] * 10, price=[1, 1.001, 0.97, 0.99] + [1] * 6),
                         history_of("eth", [5] * 10, [10] * 10, price=[2000, 2100, 1900] + [2000] * 7)],
                        ignore_index=True)
    pools = meta(("usd", "aave-v3", "USDC", True), ("eth", "aave-v3", "WETH", False))
    features = build_features(history, pools_meta=pools)
    usd, eth = features.xs("usd", level="pool"), features.xs("eth", level="pool")
    assert usd["peg_dev"].tolist() == pytest.approx([0, 0.001, -0.03, -0.01] + [0] * 6)
    # max |price - 1| over the 7 days ending at each day
    assert usd["peg_dev_max_7d"].tolist() == pytest.approx([0, 0.001] + [0.03] * 7 + [0.01])
    assert eth["peg_dev"].isna().all()
    assert eth["price_ret_1d"].iloc[1] == pytest.approx(math.log(2100 / 2000))
    assert build_features(history)["peg_dev"].isna().all()  # stablecoin unknown without metadata


def test_news_is_matched_by_protocol_and_token_words():
    history = pd.concat([history_of(p, [5] * 5, [10] * 5) for p in ("aave-usdc", "morpho-usdt", "other")],
                        ignore_index=True)
    pools = meta(("aave-usdc", "aave-v3", "USDC-WETH", True), ("morpho-usdt", "morpho-blue", "USDT", True),
                 ("other", "compound-v2", "DAI", True))
    titles = {  # day published (during the day before this midnight) → title
        1: "AAVE markets hacked overnight",  # aave (case-insensitive)
        2: "Aavegotchi and USDCx rally",  # no whole-word match
        3: "Morpho Blue paused after usdt exploit",  # morpho: 1 item, two risk words
    }
    news = pd.DataFrame({
        "timestamp": [START + d * DAY - pd.Timedelta(hours=3) for d in titles],
        "title": list(titles.values()), "source": "wire", "url": [f"https://n/{d}" for d in titles],
        "summary": [None, None, "Funds at risk"],
    })
    news["timestamp"] = news["timestamp"].astype("datetime64[us, UTC]")
    features = build_features(history, news, pools)
    counts = features["news_count_1d"].unstack("pool")
    assert counts["aave-usdc"].tolist() == [0, 1, 0, 0, 0]
    assert counts["morpho-usdt"].tolist() == [0, 0, 0, 1, 0]
    assert counts["other"].tolist() == [0, 0, 0, 0, 0]
    assert features["news_count_3d"].unstack("pool")["aave-usdc"].tolist() == [0, 1, 1, 1, 0]
    risk = features["news_risk_count_7d"].unstack("pool")
    assert risk["aave-usdc"].tolist() == [0, 1, 1, 1, 1] and risk["morpho-usdt"].tolist() == [0, 0, 0, 1, 1]
    vader = SentimentIntensityAnalyzer()
    expected = vader.polarity_scores("Morpho Blue paused after usdt exploit. Funds at risk")["compound"]
    sentiment = features["news_sentiment_mean_7d"].unstack("pool")["morpho-usdt"]
    assert math.isnan(sentiment.iloc[2]) and sentiment.iloc[3] == pytest.approx(expected)


def news_of(market) -> pd.DataFrame:
    """The market's news, or a small synthetic market's when it has none."""
    return market.news if market.news is not None else generate_market(n_pools=4, days=60, seed=3).news


def test_sentiment_is_vaders_score_of_each_item_computed_once(synthetic_or_real):
    """Uses `synthetic_or_real`. The memoised scores are VADER's own, item by item; a second pass over the same
    items (the next keeper cycle, the next retraining) scores none of them again."""
    news = news_of(synthetic_or_real)
    text = news["title"].fillna("") + ". " + news["summary"].fillna("")
    compound.cache_clear()
    scores = sentiment_scores(text)
    vader = SentimentIntensityAnalyzer()
    assert scores.tolist() == [vader.polarity_scores(t)["compound"] for t in text]  # exact, not approximately
    assert compound.cache_info().misses == text.nunique()
    misses = compound.cache_info().misses
    assert sentiment_scores(text).tolist() == scores.tolist() and compound.cache_info().misses == misses


def test_keyword_searches_are_pandas_own_each_text_searched_once(synthetic_or_real):
    """Uses `synthetic_or_real`. The memoised searches give `str.contains`'s answers item by item, a second pass
    searches nothing again, and the features with every memo cold and warm are the same bits."""
    market = synthetic_or_real
    news = news_of(market)
    text = news["title"].fillna("") + ". " + news["summary"].fillna("")
    patterns = [RISK_PATTERN, INCIDENT_PATTERN, HEDGE_PATTERN, r"(?<![a-z0-9])aave(?![a-z0-9])"]
    _FOUND.clear()
    for pattern in patterns:
        assert contains(text, pattern).tolist() == text.str.contains(pattern, case=False, regex=True).tolist()
        assert len(_FOUND[pattern]) == text.nunique()
    searched = {pattern: dict(found) for pattern, found in _FOUND.items()}
    assert [contains(text, pattern).tolist() for pattern in patterns] == [
        text.str.contains(pattern, case=False, regex=True).tolist() for pattern in patterns]
    assert {pattern: dict(found) for pattern, found in _FOUND.items()} == searched
    if market.pools is not None:
        _FOUND.clear()
        compound.cache_clear()
        cold = build_features(market.history, news, market.pools)
        pd.testing.assert_frame_equal(build_features(market.history, news, market.pools), cold, check_exact=True)


def test_pool_keywords_are_memoised_by_the_pools_texts_never_stale():
    """The memo answers a pool table it has seen with its keywords, and another project or symbol of the same
    pools with their own; what a caller does to an answer changes no later one."""
    first = pool_keywords(meta(("a", "aave-v3", "USDC", True)))
    assert first == [("a", "aave"), ("a", "usdc")]
    first.append(("a", "changed"))
    assert pool_keywords(meta(("a", "aave-v3", "USDC", True))) == [("a", "aave"), ("a", "usdc")]
    assert pool_keywords(meta(("a", "morpho-blue", "USDC", True))) == [("a", "morpho"), ("a", "morpho blue"),
                                                                        ("a", "usdc")]
    assert pool_keywords(meta(("a", "aave-v3", "USDT", True))) == [("a", "aave"), ("a", "usdt")]
    assert pool_keywords(meta(("a", "aave-v3", "USDT", True)), tokens=False) == [("a", "aave")]


def test_news_at_midnight_counts_that_day_a_second_later_counts_the_next():
    history = history_of("a", [5] * 3, [10] * 3)
    news = pd.DataFrame({"timestamp": [START + DAY, START + DAY + pd.Timedelta(seconds=1)],
                         "title": ["Aave one", "Aave two"], "source": "w", "url": ["u1", "u2"], "summary": None})
    news["timestamp"] = news["timestamp"].astype("datetime64[us, UTC]")
    features = build_features(history, news, meta(("a", "aave-v3", "USDC", True)))
    assert features["news_count_1d"].tolist() == [0, 1, 1]


def test_without_news_the_columns_are_the_same_and_unknown():
    history = history_of("a", APY, TVL)
    pools = meta(("a", "aave-v3", "USDC", True))
    news = pd.DataFrame({"timestamp": pd.Series([START], dtype="datetime64[us, UTC]"), "title": ["x"],
                         "source": ["w"], "url": ["u"], "summary": [None]})
    with_news, without = build_features(history, news, pools), build_features(history)
    assert list(with_news.columns) == list(without.columns)
    news_columns = [c for c in without.columns if c.startswith("news_")]
    assert without[news_columns].isna().all().all()
    assert (with_news["news_count_30d"] == 0).all()  # known: nothing matched
    other = pd.concat([history, history_of("unknown", APY, TVL)], ignore_index=True)
    assert build_features(other, news, pools).xs("unknown", level="pool")[news_columns].isna().all().all()


def test_unaligned_history_and_news_without_pools_are_refused():
    history = history_of("a", APY, TVL)
    shifted = history.assign(timestamp=history["timestamp"] + pd.Timedelta(hours=23))
    with pytest.raises(DataError, match="row 0, field 'timestamp': .* is not a UTC midnight; align"):
        build_features(shifted)
    with pytest.raises(DataError, match="news features need pools_meta"):
        build_features(history, news=pd.DataFrame())


def test_align_to_daily_labels_with_the_next_midnight_and_keeps_the_last_observation():
    raw = pd.DataFrame({
        "timestamp": pd.to_datetime(["2024-01-01T00:00:00Z", "2024-01-01T09:00:00Z", "2024-01-01T23:01:05Z",
                                     "2024-01-03T12:00:00Z"]).astype("datetime64[us, UTC]"),
        "pool": "a", "apy": [1.0, 2.0, 3.0, 4.0], "apy_base": 0.0, "apy_reward": 0.0, "tvl_usd": 1.0,
    })
    aligned = align_to_daily(raw)
    assert aligned["timestamp"].dt.strftime("%Y-%m-%d").tolist() == ["2024-01-01", "2024-01-02", "2024-01-04"]
    assert aligned["apy"].tolist() == [1.0, 3.0, 4.0]
    pd.testing.assert_frame_equal(align_to_daily(aligned), aligned)


# -- no look-ahead ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def baseline(synthetic_or_real):
    market = synthetic_or_real
    return build_features(market.history, market.news, market.pools)


@given(
    cut=st.floats(0, 1),
    noise_seed=st.integers(0, 2**32 - 1),
    scale=st.sampled_from([0.01, 0.3, 2.0]),
    extra_news=st.integers(0, 8),
    drop_share=st.sampled_from([0.0, 0.3]),
)
def test_features_up_to_t_ignore_everything_after_t(synthetic_or_real, baseline, cut, noise_seed, scale,
                                                     extra_news, drop_share):
    """Uses `synthetic_or_real`. Changing every value after t, dropping rows after t and adding risky news
    after t leaves every feature row at or before t unchanged; so does cutting the data at t."""
    market, rng = synthetic_or_real, np.random.default_rng(noise_seed)
    days = market.history["timestamp"].sort_values().unique()
    t = days[int(cut * (len(days) - 1))]
    later = market.history["timestamp"] > t
    history = market.history.copy()
    for column in ("apy", "apy_base", "apy_reward", "tvl_usd", "price"):
        if column in history:
            history.loc[later, column] *= np.exp(scale * rng.normal(size=later.sum()))
    if "utilization" in history:
        history.loc[later, "utilization"] = rng.uniform(0, 1, later.sum())
    history = history[~(later & (rng.random(len(history)) < drop_share))].reset_index(drop=True)
    news = market.news
    if news is not None:
        project = rng.choice(market.pools["project"].to_numpy(), extra_news)
        extra = pd.DataFrame({
            "timestamp": (t + pd.to_timedelta(rng.uniform(1, 30 * 86_400, extra_news), unit="s")),
            "title": [f"{p.split('-')[0]} exploit: insolvency feared, deposits paused" for p in project],
            "source": "late-wire", "url": [f"https://late/{i}" for i in range(extra_news)], "summary": None,
        }).astype({"timestamp": "datetime64[us, UTC]"})
        news = pd.concat([news, extra], ignore_index=True).sort_values("timestamp", ignore_index=True)

    expected = baseline[baseline.index.get_level_values("timestamp") <= t]
    perturbed = build_features(history, news, market.pools)
    pd.testing.assert_frame_equal(perturbed[perturbed.index.get_level_values("timestamp") <= t], expected,
                                  check_exact=True)
    cut_news = None if market.news is None else market.news[market.news["timestamp"] <= t]
    pd.testing.assert_frame_equal(build_features(market.history[~later], cut_news, market.pools), expected,
                                  check_exact=True)

"""News features: items matched to pools by protocol and token names, counted over trailing day windows,
with VADER sentiment and risk-word counts.

Matching: a pool's keywords are its protocol (DeFiLlama slug without version parts: ``aave-v3`` → "aave";
``morpho-blue`` → "morpho" and "morpho blue") and the tokens of its symbol (``USDC-WETH`` → "usdc",
"weth"); keywords shorter than 3 letters are ignored. An item matches a pool when a keyword occurs in its
title or summary as a whole word, case-insensitively. An item published at time ``p`` counts from the
first UTC midnight at or after ``p`` (the row that knows about it) on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache, lru_cache

import numpy as np
import pandas as pd
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from strategy.data.daily import DailyPanel
from strategy.data.schema import POOL, TIMESTAMP
from strategy.features.windows import trailing

RISK_TERMS = ("exploit", "hack", "depeg", "pause", "insolvency")
# The risk terms and their inflections: exploited, hacker, de-pegged, paused, insolvent, ...
RISK_PATTERN = r"\b(?:exploit\w*|hack\w*|de-?peg\w*|paus(?:e|ed|es|ing)|insolven\w*)\b"
# An incident: what costs a protocol's depositors money or access (a depeg of the token is in its price).
INCIDENT_PATTERN = (r"\b(?:incident|exploit\w*|hack\w*|drain\w*|bad debt|paus(?:e|ed|es|ing)|insolven\w*|"
                    r"attack\w*)\b")
# A warning or a rumour is not a report: "could", "may", "warn", "fears", "rumours", "possible".
HEDGE_PATTERN = r"\b(?:could|may|might|warns?|warning|fears?|worries|rumou?rs?|possible|possibly)\b"
_MIN_KEYWORD_LENGTH = 3
SENTIMENT_MEMO_ITEMS = 1 << 16  # distinct texts whose score is kept (some 20 MiB at most)
MATCH_MEMO_ITEMS = 1 << 16  # distinct texts whose search result is kept, for each pattern
KEYWORDS_MEMO_ITEMS = 64  # distinct pool tables whose keywords are kept


def news_features(
    panel: DailyPanel, news: pd.DataFrame, pools_meta: pd.DataFrame, windows: Sequence[int]
) -> dict[str, np.ndarray]:
    """Wide (days × pools) arrays: item counts, risk-item counts and sentiment over trailing windows.

    Pools missing from ``pools_meta`` get NaN (they cannot be matched), the others 0 when nothing matched.
    """
    title = news["title"].fillna("")
    text = title + ". " + news["summary"].fillna("")
    matched = match_pools(text, pool_keywords(pools_meta)).reindex(columns=panel.pools, fill_value=False)
    day = pd.DatetimeIndex(news[TIMESTAMP].dt.ceil("D"))
    sentiment = sentiment_scores(text).to_numpy()
    risky = contains(text, RISK_PATTERN)

    weights = matched.to_numpy(dtype=float)
    start = min(panel.days[0], day.min()) if len(day) else panel.days[0]
    grid = pd.date_range(start, panel.days[-1], freq="D", name=TIMESTAMP)
    rows = grid.get_indexer(day)  # each item's grid day; -1 past the grid
    marks = {  # items × pools, 0 or 1
        "count": weights,
        "risk": weights * risky[:, None],
        "incident": _incident_matches(title, text, pools_meta).reindex(columns=panel.pools, fill_value=False)
        .to_numpy(dtype=float),
    }
    counts = {name: _daily_counts(values, rows, len(grid)) for name, values in marks.items()}  # grid days × pools
    sentiment_sum = _by_day(weights * sentiment[:, None], rows, len(grid), "sum", 0.0)
    sentiment_low = _by_day(np.where(weights > 0, sentiment[:, None], np.nan), rows, len(grid), "min", np.nan)

    features: dict[str, np.ndarray] = {}
    for w in (1, *windows):
        for name, label in (("count", "count"), ("risk", "risk_count"), ("incident", "incident_count")):
            features[f"news_{label}_{w}d"] = _trailing_sum(counts[name], w)
    for w in windows:
        count = features[f"news_count_{w}d"]
        features[f"news_sentiment_mean_{w}d"] = (trailing(sentiment_sum, w, 1, "sum")
                                                 / np.where(count > 0, count, np.nan))
        features[f"news_sentiment_min_{w}d"] = trailing(sentiment_low, w, 1, "min")
    return _on_panel(panel, grid, pools_meta, features)


# Counts are whole numbers, which numpy sums exactly as pandas does; the sentiment sums and minima, which are
# not, stay pandas' (its sums are compensated).


def _daily_counts(marks: np.ndarray, rows: np.ndarray, days: int) -> np.ndarray:
    """`days` × pools: the items' marks summed by grid row (`rows`); items past the grid (-1) are left out."""
    inside = rows >= 0
    counts = np.zeros((days, marks.shape[1]))
    np.add.at(counts, rows[inside], marks[inside])
    return counts


def _by_day(values: np.ndarray, rows: np.ndarray, days: int, how: str, fill: float) -> np.ndarray:
    """`days` × pools: the items' values aggregated by grid row (`rows`) by pandas' groupby `how`, `fill` on days
    without items; items past the grid (-1) are left out. Grouped by row number, not by timestamp: the same
    groups in the same item order, without factorising timestamps."""
    inside = rows >= 0
    grouped = pd.DataFrame(values[inside]).groupby(rows[inside]).agg(how)
    daily = np.full((days, values.shape[1]), fill)
    daily[grouped.index.to_numpy()] = grouped.to_numpy()
    return daily


def _trailing_sum(counts: np.ndarray, window: int) -> np.ndarray:
    """Each day's sum over the last `window` days (those there are), as `rolling(window, min_periods=1)`."""
    total = np.cumsum(counts, axis=0)
    trailing = total.copy()
    trailing[window:] -= total[:-window]
    return trailing


def _on_panel(panel: DailyPanel, grid: pd.DatetimeIndex, pools_meta: pd.DataFrame,
              features: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each grid-days × pools array on the panel's days (all on the grid), NaN for the pools `pools_meta`
    lacks."""
    rows = grid.get_indexer(panel.days)
    known = panel.pools.isin(pools_meta[POOL])
    return {name: np.where(known, values[rows], np.nan) for name, values in features.items()}


def incident_days(panel: DailyPanel, news: pd.DataFrame, pools_meta: pd.DataFrame) -> pd.DataFrame:
    """Days × pools: 1.0 on the day (first midnight at or after publication) of an item reporting an incident
    of the pool's protocol (`incident_matches`), else 0.0; NaN for pools `pools_meta` lacks."""
    matched = incident_matches(news, pools_meta).reindex(columns=panel.pools, fill_value=False)
    day = pd.DatetimeIndex(news[TIMESTAMP].dt.ceil("D"))
    daily = pd.DataFrame(matched.to_numpy(dtype=float), index=day, columns=panel.pools).groupby(level=0).max()
    known = np.broadcast_to(panel.pools.isin(pools_meta[POOL]), (len(panel.days), len(panel.pools)))
    return daily.reindex(panel.days, fill_value=0.0).where(known)


def incident_matches(news: pd.DataFrame, pools_meta: pd.DataFrame) -> pd.DataFrame:
    """Items × pools: the item reports an incident (INCIDENT_PATTERN in its title or summary, and no hedge of
    HEDGE_PATTERN in its title) and names the pool's protocol in its title. Tokens are not enough: "USDC" is
    in every stablecoin story."""
    title = news["title"].fillna("")
    return _incident_matches(title, title + ". " + news["summary"].fillna(""), pools_meta)


def _incident_matches(title: pd.Series, text: pd.Series, pools_meta: pd.DataFrame) -> pd.DataFrame:
    """`incident_matches` of the items' titles and texts (title. summary)."""
    reports = contains(text, INCIDENT_PATTERN) & ~contains(title, HEDGE_PATTERN)
    named = match_pools(title, pool_keywords(pools_meta, tokens=False))
    return named & reports[:, None]


def pool_keywords(pools_meta: pd.DataFrame, *, tokens: bool = True) -> list[tuple[str, str]]:
    """(pool, keyword) pairs, lower-case, one per distinct keyword of a pool (its protocol's, and its tokens
    unless `tokens` is False), in the order they are first named. Memoised by the pools and their texts: a
    keeper's every cycle names the same pools."""
    pools = pools_meta[POOL].tolist()
    project = pools_meta["project"].astype("str")
    symbol = pools_meta["symbol"].astype("str") if tokens else None
    key = (tuple(pools), tuple(project.tolist()), None if symbol is None else tuple(symbol.tolist()))
    try:
        memo = _KEYWORDS.get(key)
    except TypeError:  # an unhashable pool id: not memoised
        return _pool_keywords(pools, project, symbol)
    if memo is None:
        if len(_KEYWORDS) >= KEYWORDS_MEMO_ITEMS:
            _KEYWORDS.clear()
        memo = _KEYWORDS[key] = tuple(_pool_keywords(pools, project, symbol))
    return list(memo)


_KEYWORDS: dict[tuple[object, ...], tuple[tuple[str, str], ...]] = {}


def _pool_keywords(pools: list[str], project: pd.Series, symbol: pd.Series | None) -> list[tuple[str, str]]:
    """`pool_keywords` of the pools' projects and symbols (str), unmemoised. The words are cut by pandas'
    string methods, whatever engine those run on; the pairs are gathered in Python (a handful of pools, where
    frames cost more than they hold)."""
    protocol = project.str.lower().str.replace(r"-v\d+\b", "", regex=True)
    parts: list[pd.Series] = [
        protocol.str.split("-").str[0],  # "morpho"
        protocol.str.replace("-", " "),  # "morpho blue"
    ]
    if symbol is not None:
        parts.append(symbol.str.lower().str.split(r"[-/ ]+", regex=True))
    named = ((pool, word) for part in parts for pool, words in zip(pools, part.tolist(), strict=True)
             for word in (words if isinstance(words, list) else [words]))
    return list(dict.fromkeys((pool, word) for pool, word in named
                              if isinstance(word, str) and len(word) >= _MIN_KEYWORD_LENGTH))


def match_pools(text: pd.Series, keywords: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """Items × pools (the pools `keywords` names, sorted): True where the item's text names one of the pool's
    keywords as a whole word."""
    unique = list(dict.fromkeys(keyword for _, keyword in keywords))
    pools = pd.Index(sorted({pool for pool, _ in keywords}), name=POOL)
    incidence = np.zeros((len(unique), len(pools)), dtype=int)
    for pool, keyword in keywords:
        incidence[unique.index(keyword), pools.get_loc(pool)] = 1
    hits = contains_each(text, [rf"(?<![a-z0-9]){re.escape(keyword)}(?![a-z0-9])" for keyword in unique])
    return pd.DataFrame(hits.astype(int) @ incidence > 0, index=text.index, columns=pools)


def contains(text: pd.Series, pattern: str) -> np.ndarray:
    """`text.str.contains(pattern, case=False, regex=True)` as booleans, each distinct text searched once per
    process for each pattern: by the same pandas call, on texts of the same dtype (so the same regex engine)."""
    return contains_each(text, [pattern])[:, 0]


def contains_each(text: pd.Series, patterns: Sequence[str]) -> np.ndarray:
    """Items × patterns: `contains` of each pattern. The texts are told apart once for all the patterns (a
    keeper's cycle searches the same items for a dozen keywords, each answer but the newest items' memoised)."""
    codes, distinct = pd.factorize(text, use_na_sentinel=False)  # in order of first appearance
    values = distinct.tolist()
    found = np.empty((len(values), len(patterns)), dtype=bool)
    for column, pattern in enumerate(patterns):
        memo = _FOUND.setdefault(pattern, {})
        if len(memo) > MATCH_MEMO_ITEMS:
            memo.clear()
        unseen = [value for value in values if value not in memo]
        if unseen:
            searched = pd.Series(unseen, dtype=text.dtype).str.contains(pattern, case=False, regex=True)
            memo.update(zip(unseen, searched.tolist(), strict=True))
        found[:, column] = [memo[value] for value in values]
    return found[codes]


# A keyword search is elementwise, and the keeper's cycles and a backtest's retrainings search the same items
# again: pattern -> text -> found.
_FOUND: dict[str, dict[str, bool]] = {}


def sentiment_scores(text: pd.Series) -> pd.Series:
    """VADER compound score in [-1, 1] per text; each distinct text is scored once per process (`compound`)."""
    return pd.Series([compound(t) for t in text.tolist()], index=text.index, dtype=float)


# VADER is plain Python (about 0.1 ms an item) and a score depends on the text alone, while every keeper cycle
# and every retraining of a backtest reads the same items again. Bounded: a keeper runs for months.
@lru_cache(maxsize=SENTIMENT_MEMO_ITEMS)
def compound(text: str) -> float:
    """VADER's compound score of `text`, memoised."""
    return _analyzer().polarity_scores(text)["compound"]


@cache
def _analyzer() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()

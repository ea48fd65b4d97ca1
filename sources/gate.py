"""The data gate the keeper cycle calls before anything can reach a transaction.

Given fetched frames (canonical `strategy.data` schema) and "now", it refuses data that is incomplete,
stale or implausible: it logs the reason and raises a `DataGateError`; otherwise it returns the frame
unchanged. Only the last points of each series are judged: real spikes deep in the history must not block
today's cycle.

The gate separates a broken feed from a market that moves. On real lending markets (../shared/data, eight
Ethereum stablecoin markets 2022-2025) DeFiLlama's `tvlUsd` is the liquidity still available (supplied -
borrowed): it moves with every borrow, beyond ±50 % on 148 of 3,797 daily steps (from -99.9 % to
+58,500 %), and a supply APY on the steep side of a rate model's kink moves tens of points in a day (+66.6
on Aave v3 USDT). Steps of TVL and APY are therefore not judged by default (`max_tvl_change`,
`max_apy_jump`: set them for sources whose values do not move like that). What a market cannot do, and a
broken feed does, is checked on every point:

- `max_age` 36 h: DeFiLlama publishes about one point a day per pool; more than a day and a half without
  one means the feed stopped. A clock more than `max_clock_skew` (10 min) ahead is a broken source.
- APY within [`min_apy`, `max_apy`] = [0, 1000] %: supply rates are never negative, and at full
  utilization a stablecoin rate model pays well under 100 % (real maximum 68.2 %); 1000 % leaves an order
  of magnitude for savings vaults and spikes, while a unit error (basis points or a ratio read as percent,
  1e6 %) or NaN is refused.
- TVL within (0, `max_tvl_usd` = 1e12] USD: zero available liquidity is a glitch (the real minimum is
  3,408 USD at 99.99 % utilization), and no pool holds more than all stablecoins in existence (a decimals
  error multiplies by 1e6 or 1e12).
- utilization, where the source gives it, within [0, 1]: borrowed over supplied.
- `max_frozen_points` 3: the same APY and TVL on the last three points. Available liquidity changes with
  every block, and no two consecutive real points in the shared data repeat either value; a feed that
  re-serves its last answer does.
- prices: positive, and at most `max_price_change` (25 %) from the point before: the March 2023 USDC depeg
  moved the daily close by 3 % (intraday low 12 %), while a decimals or symbol mix-up moves it by orders
  of magnitude.
"""

import logging
import math
from collections.abc import Callable, Hashable, Iterable
from datetime import datetime, timedelta
from functools import partial
from typing import Annotated, cast

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat

from strategy.data.errors import DataError
from strategy.data.schema import POOL, TIMESTAMP

log = logging.getLogger(__name__)


class DataGateError(DataError):
    """Fetched data must not drive a decision; the message lists every reason."""


class MissingDataError(DataGateError):
    """A required pool or coin, or a required column, is absent."""


class StaleDataError(DataGateError):
    """The latest point of a series is older than the allowed age."""


class ImplausibleDataError(DataGateError):
    """A value, a jump between the last two points, or a timestamp cannot be right."""


class GateLimits(BaseModel):
    """Thresholds of the gate; the module docstring says why each default is what it is."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_age: timedelta = timedelta(hours=36)
    # Points from the future beyond this mean a broken clock or a broken source.
    max_clock_skew: timedelta = timedelta(minutes=10)
    # APY bounds in percent; the vault's lending pools never pay below zero.
    min_apy: float = 0.0
    max_apy: PositiveFloat = 1000.0
    max_tvl_usd: PositiveFloat = 1e12
    # This many last points with the same APY and TVL: the feed re-serves a frozen answer.
    max_frozen_points: Annotated[int, Field(ge=2)] = 3
    # Step limits between the last two points; None (the default) leaves steps unjudged, as lending markets
    # move that much (module docstring). Percentage points, and a relative change (0.5 = a 50 % rise or fall).
    max_apy_jump: PositiveFloat | None = None
    max_tvl_change: PositiveFloat | None = None
    max_price_change: PositiveFloat = 0.25


# The columns the gate reads; the rest of the canonical schema passes through unchecked.
GATED_MARKET_COLUMNS = (TIMESTAMP, POOL, "apy", "tvl_usd")
GATED_PRICE_COLUMNS = (TIMESTAMP, "coin", "price")


def check_market(
    history: pd.DataFrame, now: datetime, required_pools: Iterable[str] = (), limits: GateLimits | None = None
) -> pd.DataFrame:
    """Pass the market history through, or raise with the reason when it must not be used."""
    limits = limits or GateLimits()
    latest, previous = _check_series(history, POOL, GATED_MARKET_COLUMNS, required_pools, now, limits)
    _judge_latest_points(latest, previous, partial(_market_point_problems, limits=limits))
    _refuse_if(_frozen_pools(history, limits), StaleDataError)
    return history


def check_prices(
    prices: pd.DataFrame, now: datetime, required_coins: Iterable[str] = (), limits: GateLimits | None = None
) -> pd.DataFrame:
    """Pass the price history through, or raise with the reason when it must not be used."""
    limits = limits or GateLimits()
    latest, previous = _check_series(prices, "coin", GATED_PRICE_COLUMNS, required_coins, now, limits)
    _judge_latest_points(latest, previous, partial(_price_point_problems, limits=limits))
    return prices


def stale_series(frame: pd.DataFrame, key: str, now: datetime, limits: GateLimits | None = None) -> list[str]:
    """The series of `frame` (by `key`) whose latest point is older than `max_age` at `now`."""
    limits = limits or GateLimits()
    latest = frame.groupby(key, sort=True)[TIMESTAMP].max()
    return [str(name) for name, at in latest.items() if pd.Timestamp(now) - at > limits.max_age]


PointJudge = Callable[[str, pd.Series, pd.Series | None], list[str]]


def _judge_latest_points(latest: pd.DataFrame, previous: pd.DataFrame, judge: PointJudge) -> None:
    """Applies `judge(key, latest point, point before it or None)` to every series."""
    problems = [
        problem
        for key, point in latest.iterrows()
        for problem in judge(str(key), point, _point(previous, key))
    ]
    _refuse_if(problems, ImplausibleDataError)


def _point(points: pd.DataFrame, key: Hashable) -> pd.Series | None:
    """The row of `points` (one per key) at `key`, or None."""
    # `.loc[key]` of one label is this `xs`; the stubs say Series or DataFrame, as the index could repeat a key
    return cast(pd.Series, points.xs(key)) if key in points.index else None


def _market_point_problems(pool: str, latest: pd.Series, previous: pd.Series | None, limits: GateLimits) -> list[str]:
    problems = []
    if not limits.min_apy <= latest.apy <= limits.max_apy:
        problems.append(f"pool {pool}: APY {latest.apy} % is outside {limits.min_apy}..{limits.max_apy} %")
    if not 0 < latest.tvl_usd <= limits.max_tvl_usd:
        problems.append(f"pool {pool}: TVL {latest.tvl_usd} USD is outside (0, {limits.max_tvl_usd:,.0f}] USD")
    utilization = latest.get("utilization")
    if utilization is not None and not pd.isna(utilization) and not 0 <= utilization <= 1:
        problems.append(f"pool {pool}: utilization {utilization} is outside 0..1")
    if problems or previous is None:
        return problems
    if limits.max_apy_jump is not None and abs(latest.apy - previous.apy) > limits.max_apy_jump:
        problems.append(
            f"pool {pool}: APY jumped from {previous.apy} % to {latest.apy} %, "
            f"more than {limits.max_apy_jump} points in one step"
        )
    if limits.max_tvl_change is not None and _relative_change(previous.tvl_usd, latest.tvl_usd) > limits.max_tvl_change:
        problems.append(
            f"pool {pool}: TVL moved from {previous.tvl_usd:,.0f} to {latest.tvl_usd:,.0f} USD, "
            f"more than {limits.max_tvl_change:.0%} in one step"
        )
    return problems


def _frozen_pools(history: pd.DataFrame, limits: GateLimits) -> list[str]:
    """Pools whose last `max_frozen_points` points all carry the same APY and TVL."""
    count = limits.max_frozen_points
    recent = history.sort_values([POOL, TIMESTAMP]).groupby(POOL, sort=False).tail(count)
    points = recent[POOL].value_counts()
    distinct = recent.drop_duplicates([POOL, "apy", "tvl_usd"])[POOL].value_counts().reindex(points.index)
    frozen = sorted(points.index[(points == count) & (distinct == 1)])
    return [f"pool {pool}: the last {count} points repeat APY and TVL exactly (a frozen feed)" for pool in frozen]


def _price_point_problems(coin: str, latest: pd.Series, previous: pd.Series | None, limits: GateLimits) -> list[str]:
    if not latest.price > 0:
        return [f"coin {coin}: price {latest.price} is not positive"]
    if previous is not None and _relative_change(previous.price, latest.price) > limits.max_price_change:
        return [
            f"coin {coin}: price moved from {previous.price} to {latest.price}, "
            f"more than {limits.max_price_change:.0%} in one step"
        ]
    return []


def _check_series(
    frame: pd.DataFrame,
    key: str,
    columns: tuple[str, ...],
    required: Iterable[str],
    now: datetime,
    limits: GateLimits,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Checks columns, presence and age of every series; returns its latest and previous points by key."""
    if now.tzinfo is None:
        raise ValueError(f"now must be timezone-aware, got {now!r}")
    absent_columns = [column for column in columns if column not in frame.columns]
    if absent_columns:
        _refuse(MissingDataError, f"frame lacks column(s) {', '.join(absent_columns)}")
    absent = sorted(set(required) - set(frame[key]))
    if absent:
        _refuse(MissingDataError, f"no data for {key}(s) {', '.join(absent)}")
    if frame.empty:
        _refuse(MissingDataError, f"no {key} data at all")

    ordered = frame.sort_values([key, TIMESTAMP])
    is_last = ~ordered[key].duplicated(keep="last")
    latest = ordered[is_last].set_index(key)
    earlier = ordered[~is_last]
    previous = earlier[~earlier[key].duplicated(keep="last")].set_index(key)
    ages = pd.Timestamp(now) - latest[TIMESTAMP]

    def latest_at(name: Hashable) -> str:
        # a Timestamp (one row per key), which the stubs widen to any scalar
        return cast(pd.Timestamp, latest.at[name, TIMESTAMP]).isoformat()

    _refuse_if(
        [
            f"{key} {name}: latest point {latest_at(name)} is {_hours(age)} old "
            f"(limit {_hours(limits.max_age)})"
            for name, age in ages.items()
            if age > limits.max_age
        ],
        StaleDataError,
    )
    _refuse_if(
        [
            f"{key} {name}: latest point {latest_at(name)} is {_hours(-age)} in the future "
            f"(limit {_hours(limits.max_clock_skew)})"
            for name, age in ages.items()
            if -age > limits.max_clock_skew
        ],
        ImplausibleDataError,
    )
    return latest, previous


def _hours(span: timedelta) -> str:
    return f"{span.total_seconds() / 3600:.4g} h"


def _relative_change(before: float, after: float) -> float:
    """|after / before - 1|; infinite when the series starts from zero or a value is missing."""
    if not before > 0 or math.isnan(after):
        return math.inf
    return abs(after / before - 1)


def _refuse_if(problems: list[str], error: type[DataGateError]) -> None:
    if problems:
        _refuse(error, "; ".join(problems))


def _refuse(error: type[DataGateError], reason: str) -> None:
    log.error("data gate refused the data (%s): %s", error.__name__, reason)
    raise error(reason)

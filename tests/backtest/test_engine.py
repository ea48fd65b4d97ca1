"""The daily replay: point-in-time views, accrual, costs, guardrail rejections, determinism."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from itertools import pairwise

import pandas as pd
import pytest

from backtest.baselines import TrailingBestForecaster
from backtest.engine import Setup, replay
from backtest.market import MarketData
from config import BacktestSettings
from strategy.allocator import MarketForecast, allocate
from strategy.data.schema import TIMESTAMP
from tests.backtest.conftest import CAPITAL, history_frame

DAYS = 40
FLAT = {"a": [(10.0, 1e7, 1.0)] * DAYS, "b": [(5.0, 1e7, 1.0)] * DAYS, "c": [(2.0, 1e7, 1.0)] * DAYS}
FIRST = pd.Timestamp("2024-01-01", tz="UTC")
LAST = FIRST + pd.Timedelta(days=DAYS - 1)


class Fixed:
    """Forecasts the given APYs every day."""

    name, leaky = "fixed", False

    def __init__(self, apys: dict[str, float]):
        self.apys = apys

    def forecast(self, view: MarketData, now: pd.Timestamp) -> dict[str, MarketForecast]:
        return {pool: MarketForecast(apy_pct=apy, p_event=0.0) for pool, apy in self.apys.items()}


def flat_market(rows: dict = FLAT) -> MarketData:
    return MarketData(history_frame(rows), None, None, "flat")


def test_idle_capital_stays_put_without_forecasts(setup_of: Callable[..., Setup]) -> None:
    run = replay(setup_of(flat_market(), FIRST, LAST), Fixed({}))
    assert (run.values["net"] == CAPITAL).all()
    assert not any(decision.traded for decision in run.decisions)
    assert len(run.decisions) == DAYS - 1  # every day but the last


def test_positions_earn_the_realised_yield_net_of_gas_and_slippage(setup_of: Callable[..., Setup]) -> None:
    """The position beside a market's supply S (1e7 available, utilization unknown) earns the rate of 10 % a
    year times S/(S + x) on the x it holds into each day, compounding daily."""
    setup = setup_of(flat_market(), FIRST, LAST)
    run = replay(setup, Fixed({"a": 10.0}))
    first = run.decisions[0]
    cap = 4000 * setup.capital // 10_000  # 40 %, less the margin for what slippage may take from the total
    assert first.accepted and cap * (1 - 1e-4) <= first.targets["a"] < cap
    assert sum(d.accepted for d in run.decisions) == 1  # a is full; nothing else pays
    position = (first.targets["a"] - first.slippage) / setup.settings.unit
    idle = CAPITAL - first.targets["a"] / setup.settings.unit
    for _ in range(DAYS - 1):
        position *= 1.10 ** (1e7 / (1e7 + position) / 365)
    expected = idle + position - first.gas / setup.settings.unit
    assert run.values["net"].iloc[-1] == pytest.approx(expected, abs=DAYS * 1e-6)  # flooring: < 1 base unit a day
    assert run.pnl["gas"] == -setup.price_of_gas(setup.costs.rebalance_gas(1)) / setup.settings.unit
    assert run.pnl["yield"] + run.pnl["dilution"] == pytest.approx(
        run.values["total"].iloc[-1] - CAPITAL + first.slippage / 1e6, abs=1e-3)
    # about 400k beside 10 M: the rate diluted by about 3.85 %, of about 4,100 earned
    assert run.pnl["dilution"] == pytest.approx(-run.pnl["yield"] * 0.0385, rel=0.01)


def test_without_supply_dilution_a_position_earns_the_recorded_apy_on_any_amount(
        setup_of: Callable[..., Setup]) -> None:
    setup = setup_of(flat_market(), FIRST, LAST, settings=BacktestSettings(supply_dilution=False))
    run = replay(setup, Fixed({"a": 10.0}))
    first = run.decisions[0]
    invested = (first.targets["a"] - first.slippage) / setup.settings.unit
    idle = CAPITAL - first.targets["a"] / setup.settings.unit
    expected = idle + invested * 1.10 ** ((DAYS - 1) / 365) - first.gas / setup.settings.unit
    assert run.values["net"].iloc[-1] == pytest.approx(expected, abs=DAYS * 1e-6)
    assert run.pnl["dilution"] == 0


class Unaware(Fixed):
    """`Fixed`, planning as if every market were deep: the allocator is not told the markets' supply."""

    name = "unaware"

    @staticmethod
    def plan(state, guardrails, forecasts, config):
        return allocate(state, guardrails, {m: replace(f, supply=None) for m, f in forecasts.items()}, config)


def test_the_allocator_sizes_a_thin_market_by_the_supply_the_replay_dilutes(setup_of: Callable[..., Setup]) -> None:
    # 10 % on a supply of 200,000 beside a deep 2.5 %, caps of 90 %: each unit more in the thin market is worth
    # 0.10·S²/(S + x)², 2.5 % at x = S, so the vault stops there; told nothing it fills the thin market to its cap
    # and earns less for it, in the same replay.
    rows = {"a": [(10.0, 2e5, 1.0)] * DAYS, "b": [(2.5, 1e10, 1.0)] * DAYS}
    rails = {"max_turnover_bps": 10_000, "markets": {pool: {"cap_bps": 9_000} for pool in rows}}
    setup = setup_of(flat_market(rows), FIRST, LAST, settings=BacktestSettings(guardrails=rails))
    assert {pool: depth.supply for pool, depth in (setup.depth_on(FIRST) or {}).items()} == {
        "a": 2e5 * setup.settings.unit, "b": 1e10 * setup.settings.unit}
    aware, unaware = (replay(setup, forecaster({"a": 10.0, "b": 2.5})) for forecaster in (Fixed, Unaware))
    cap = 9000 * setup.capital // 10_000
    # within a chord of it: over 900,000 of room the allocator's 8 chords each span 1.53 times of slope here
    assert aware.decisions[0].targets["a"] == pytest.approx(200_000 * setup.settings.unit, rel=0.15)
    assert cap * (1 - 1e-3) <= unaware.decisions[0].targets["a"] < cap  # less the room slippage may take
    assert aware.values["net"].iloc[-1] > unaware.values["net"].iloc[-1]
    # with the dilution off the markets are deep on both sides: the replay's yields and the allocator's plan
    deep = setup_of(flat_market(rows), FIRST, LAST, settings=BacktestSettings(guardrails=rails, supply_dilution=False))
    assert deep.depth_on(FIRST) is None
    assert cap * (1 - 1e-3) <= replay(deep, Fixed({"a": 10.0, "b": 2.5})).decisions[0].targets["a"] < cap


def test_strategies_only_see_data_up_to_the_decision_day(market: MarketData, setup_of: Callable[..., Setup]) -> None:
    seen: list[tuple[pd.Timestamp, pd.Timestamp, pd.Timestamp]] = []

    class Spy:
        name, leaky = "spy", False

        def forecast(self, view: MarketData, now: pd.Timestamp) -> dict[str, MarketForecast]:
            seen.append((now, view.history[TIMESTAMP].max(), view.news[TIMESTAMP].max()))
            return {}

    setup = setup_of(market)
    replay(setup, Spy())
    assert [now for now, _, _ in seen] == list(setup.days[:-1])
    assert all(last_row == now and last_news <= now for now, last_row, last_news in seen)
    assert market.news[TIMESTAMP].max() > seen[-1][0]  # there was later news to hide


def test_a_pool_that_stops_reporting_is_left(setup_of: Callable[..., Setup]) -> None:
    rows = dict(FLAT, a=[(10.0, 1e7, 1.0)] * 10 + [None] * (DAYS - 10), d=[(2.0, 1e7, 1.0)] * DAYS)
    run = replay(setup_of(flat_market(rows), FIRST, LAST), Fixed({"a": 10.0, "b": 5.0, "c": 4.0, "d": 4.0}))
    assert run.positions["a"].iloc[9] > 0
    assert run.positions["a"].iloc[-1] == 0  # forecast at 0 % from day 10: moved to c and d
    assert run.positions["d"].iloc[9] == 0 < run.positions["d"].iloc[-1]


def test_guardrail_rejections_are_counted_and_cost_nothing(setup_of: Callable[..., Setup]) -> None:
    class Flip:
        """Prefers a on even days, c on odd days: wants to trade every day."""

        name, leaky = "flip", False

        def forecast(self, view: MarketData, now: pd.Timestamp) -> dict[str, MarketForecast]:
            best = "a" if now.day % 2 == 0 else "c"
            return {pool: MarketForecast(apy_pct=50.0 if pool == best else 0.0, p_event=0.0) for pool in FLAT}

    two_days = BacktestSettings(guardrails={"min_rebalance_interval": 2 * 86_400})
    run = replay(setup_of(flat_market(), FIRST, LAST, settings=two_days), Flip())
    rejected = [d for d in run.decisions if d.rejections]
    assert rejected and all(d.rejections == ["vault: cooldown"] and d.gas == 0 for d in rejected)
    accepted = [d for d in run.decisions if d.accepted]
    assert all((b.day - a.day).days >= 2 for a, b in pairwise(accepted))
    assert -run.pnl["gas"] == sum(d.gas for d in accepted) / 1e6 > 0


def test_rebalances_only_every_n_days(setup_of: Callable[..., Setup]) -> None:
    run = replay(setup_of(flat_market(), FIRST, LAST, rebalance_every=7), Fixed({"a": 10.0}))
    assert [d.day for d in run.decisions] == list(pd.date_range(FIRST, LAST - pd.Timedelta(days=1), freq="7D"))


def test_same_inputs_give_the_same_replay(market: MarketData, setup_of: Callable[..., Setup]) -> None:
    first, second = (replay(setup_of(market), TrailingBestForecaster()) for _ in range(2))
    pd.testing.assert_frame_equal(first.values, second.values)
    assert first.decisions == second.decisions

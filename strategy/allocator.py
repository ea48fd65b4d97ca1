"""From per-market forecasts to target allocations that the vault's guardrails accept.

A mixed-integer linear program, solved exactly by HiGHS through `scipy.optimize.milp`. Amounts are
fractions of total assets T, so every variable lies in [0, 1]. For each market i with a forecast:

    x_i = x0_i + u_i - d_i            target = current + supplied - withdrawn,  u_i, d_i >= 0
    a_i, b_i in {0, 1}                market i goes up / goes down (each touch costs gas)
    r_i = ŷ_i·H/365/100 - λ·p_i·LGD   value per unit held over the horizon: return minus risk penalty

    maximise   Σ r_i·(u_i - d_i)  -  g/T·Σ(a_i + b_i)  -  s·Σ(u_i + d_i)          (s = slippage_bps/10⁴)

where the market's supply S_i besides the vault is known (`MarketForecast.supply`), the vault's own position
dilutes its rate: holding x earns y_i·x·(1 - e_i·(x - h_i)/(S_i + x)) (y_i = ŷ_i·H/365/100, e_i the rate curve's
elasticity, h_i the vault's position the forecast's rate is at, `MarketForecast.held`: 0 but where the data holds
the vault, `strategy.market_supply`; y_i·x·S_i/(S_i + x) at e_i = 1, h_i = 0), as the backtest charges it
(`backtest.realised`, h_i = 0). That is concave in x, so the yield of u_i (d_i) is taken as chords between
breakpoints
(`yield_segments`): chord variables that add up to u_i (d_i), filled nearest the position first by the
objective alone, each below the curve, so a plan is never valued above what it earns; the expected gain is then
computed exactly (`trade_value`). Each unit more is worth less than the one before, so the vault spreads over
markets it would otherwise fill one by one, and stops adding to a thin market once its marginal yield
y_i·(1 - e_i + e_i·(S_i + h_i)·S_i/(S_i + x)²) falls to another's. Without S_i (or at y_i <= 0) r_i is linear, as above.
    subject to m·a_i <= u_i <= U_i·a_i,   m·b_i <= d_i <= W_i·b_i,    a_i + b_i <= 1
               Σ(u_i - d_i) <= S          idle floor unless idle does not go down, and Σx + idle = T
               Σ(u_i + d_i) <= M          turnover, and the loss budget
               Σ p_i·LGD·(u_i - d_i) <= max(0, B - Σ p_i·LGD·x0_i)      only with a risk budget B

with the vault's integer limits, computed exactly in asset units (then divided by T):

    U_i = max(0, min(cap_abs_i, ⌊cap_bps_i·(T-n+1-⌈s·M⌉)/10⁴⌋) - x0_i)   caps bind only markets that go
                                                              up, so a market over its cap can only go down;
                                                              the total after may be lower by 1 unit per other
                                                              market (ERC-4626 rounding) and by slippage
    W_i = min(x0_i, maxWithdraw_i - ⌈ε·x0_i⌉)                   what the market can pay back now (a lending
                                                              market near 100 % utilization pays only its cash),
                                                              less what the position may earn before the rebalance
                                                              is mined (it names targets: it withdraws that too)
    S   = max(Σx0, T - ⌈min_idle_bps·T/10⁴⌉) - Σx0             "Σx <= Σx0 (idle not down) or idle >= floor"
    M   = min(⌊max_turnover_bps·T/10⁴⌋, ⌊max_loss_bps·T/slippage_bps⌋) - ⌈ε·Σx0⌉   slippage_bps·moved <=
          max_loss_bps·T; less what the positions may earn before the rebalance is mined (ε below)
    m   = max(min_trade_floor, ⌈g / spread⌉, 1),  spread = max(0, max r) - min(0, min r): a smaller trade
          cannot pay its own gas even moving from the worst place to the best (idle is worth 0); r_i here is
          the marginal value at today's position, the most a unit supplied gains and the least a unit
          withdrawn costs where it is diluted

A vault outside its limits (idle below the floor, a market over its cap: a large withdrawal or a loss elsewhere
puts it there, never a rebalance, and interest's drift, `guardrails.DRIFT_BPS`, is no breach) is moved back as
fast as the turnover and loss limits allow, whatever it costs: every market over its cap must withdraw down to it
(d_i >= e_i, the largest breach first, within M and W_i), and idle must rise by its shortfall (S = -R, R =
min(shortfall plus the slippage it costs, M)), the idle floor being restored first in that it alone takes up to
all of M. Without a breach, doing nothing is always feasible, so the program is never infeasible, even when the
risk budget is broken (the risk constraint then forbids adding risk). Markets listed but without a forecast are
held, even over a cap.

The solution is turned into integer asset amounts (rounded, clamped into [m, bound], snapped to a bound
within 1e-9·T) and the sum constraints, which the solver meets only up to tolerances relative to T, are
restored in exact arithmetic by cutting the least valuable supplies first. Every result therefore passes
`guardrails.check_rebalance` (lossless execution), keeps the risk budget exactly and trades at least m per
market. If the rounded plan does not gain more than it costs, the current positions are returned unchanged; when
a bound proves that of every plan (no place worth moving to pays for leaving the cheapest place it may be moved
from, see `_no_plan_gains`), the solver is not called at all.
"""

import itertools
import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass as plain_dataclass
from enum import StrEnum
from fractions import Fraction
from typing import Annotated

import numpy as np
from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass
from scipy.optimize import Bounds, LinearConstraint, OptimizeResult, milp

from strategy.guardrails import (
    Breach,
    BreachKind,
    Guardrails,
    Uint256,
    VaultState,
    breaches,
    idle_floor,
)
from strategy.units import BPS, DAYS_PER_YEAR

# ε: the share of a position kept back from a withdrawal its market's cash bounds, and from the turnover limit. A
# rebalance names target positions, so it withdraws what the position has grown to by the block it is mined in;
# 1 bp is an hour at 87 % APY. A full exit from a market that pays back all of it needs none: it redeems every
# share.
ACCRUAL_MARGIN = Fraction(1, 10_000)
# The program takes a diluted market's concave yield as chords (`yield_segments`), each spanning at most this
# much of its slope, at most MAX_SEGMENTS a side: a chord lies below the curve by at most about a quarter of the
# step times the chord's yield (1 % of its yield at the default), while the program grows by 2 to 16 columns a
# diluted market (most are one chord: 1 M beside a supply of 100 M moves the slope by 2 %).
SEGMENT_SLOPE_STEP = 0.02
MAX_SEGMENTS = 8
# Solver amounts within this fraction of T of a bound are that bound (full exits stay full exits).
_SNAP = 1e-9
_MIP_REL_GAP = 1e-9

FiniteFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]
_STRICT = ConfigDict(extra="forbid")


# The LGD of a forecast that measured none: the dollar measure on the real markets of ../shared/data (the mean worst
# price fall within 7 days of an event row, the March 2023 USDC depeg among them). With the old 0.05 the usual
# p_event of 2-4 % a week outweighed every real lending yield and the vault stayed idle.
UNMEASURED_LOSS_GIVEN_EVENT = 0.005


@dataclass(frozen=True, config=_STRICT)
class MarketForecast:
    """A model's view of one market over the horizon: yield (APY, %) and probability of an adverse event, with
    what such an event costs when the forecaster measured it (see `loss_given`)."""

    apy_pct: FiniteFloat
    p_event: Annotated[float, Field(strict=True, ge=0, le=1)]
    loss_given_event: Annotated[float, Field(strict=True, ge=0, le=1)] | None = None
    # The market's supply besides this vault, in asset base units, that `apy_pct` is the supply rate at: the
    # vault's own position x beside it earns the rate times 1 - e·x/(supply + x), e the rate curve's
    # `elasticity` (`strategy.market_supply`). None: not known, or the market is taken as deep enough that the
    # vault's money moves no rate.
    supply: Annotated[int, Field(strict=True, gt=0)] | None = None
    elasticity: Annotated[float, Field(strict=True, ge=1, le=1e6, allow_inf_nan=False)] = 1.0
    # The vault's own position (asset base units) `apy_pct` is the rate at, where the market's data holds the
    # vault (`strategy.market_supply.besides_vault`): a position x then earns the rate times
    # 1 - e·(x - held)/(supply + x), the rate itself at x = held.
    held: Annotated[int, Field(strict=True, ge=0)] = 0


@dataclass(frozen=True, config=_STRICT)
class AllocatorConfig:
    """How the allocator trades value against risk and costs. Amounts are in asset base units."""

    horizon_days: Annotated[float, Field(strict=True, gt=0, le=10 * DAYS_PER_YEAR)]
    risk_aversion: Annotated[float, Field(strict=True, ge=0, le=1e6)] = 1.0  # λ
    # LGD: share of a position an adverse event costs. Set, it prices every event; left out (None), each forecast
    # is weighed by its own measure (a model's, on its training rows: `strategy.targets.mean_event_loss`), and
    # one without (the trailing-best rule, the baselines, `UNKNOWN_MARKET`, a model that measured none) by
    # `UNMEASURED_LOSS_GIVEN_EVENT`.
    loss_given_event: Annotated[float, Field(strict=True, ge=0, le=1)] | None = None
    gas_cost: Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)] = 0.0  # per market touched
    min_trade_floor: Uint256 = 0
    slippage_bps: Annotated[float, Field(strict=True, ge=0, le=BPS)] = 0.0  # realised loss per unit moved
    risk_budget: Annotated[float, Field(strict=True, ge=0, le=1)] | None = None  # max Σ w_i·p_i·LGD
    # The solver's budget: branch-and-bound nodes stop it at the same plan on every machine, so a verifier
    # re-executing the decision gets the same targets; the time limit is only the backstop of a slow machine,
    # and a plan it cuts short (status not_optimal, "Time limit reached") may not be reproduced elsewhere.
    node_limit: Annotated[int, Field(strict=True, gt=0)] = 10_000
    time_limit_s: Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)] = 10.0


class AllocationStatus(StrEnum):
    OPTIMAL = "optimal"  # solved to optimality; `changed` says whether the optimum trades
    NOT_OPTIMAL = "not_optimal"  # the solver stopped early (node or time limit); its best plan, or the positions
    PAUSED = "paused"  # the vault is paused: nothing to send
    EMPTY = "empty"  # no assets
    NOTHING_PAYS = "nothing_pays"  # no trade could pay for its gas


@plain_dataclass(frozen=True)
class Allocation:
    """The allocator's answer. `trades` is what the keeper names in `rebalance`; `targets` covers every market."""

    targets: dict[str, int]
    trades: dict[str, int]
    expected_gain: float  # over the horizon, in asset units, net of gas and slippage; 0 when holding
    status: AllocationStatus
    min_trade: int | None  # None: every place has the same value, no trade can pay
    solver_message: str = ""
    breaches: tuple[Breach, ...] = ()  # the limits the vault is outside of before this allocation
    repairing: bool = False  # the trades are forced, at least in part, to move back inside them

    @property
    def changed(self) -> bool:
        return bool(self.trades)


# The solver message of a hold `allocate` proves without the solver.
NO_PLAN_GAINS = "no plan can gain: the best place to move to is worth too little over the cheapest to move from"


class UnknownMarket(ValueError):
    """A position or forecast names a market the guardrails do not list."""


def horizon_value(forecast: MarketForecast, config: AllocatorConfig, held: int = 0) -> float:
    """r: the value over the horizon of one more unit held in the market beside `held` units, net of the risk
    penalty (with no supply known, every unit is worth the same)."""
    return span_value(forecast, config, held, held)


def span_value(forecast: MarketForecast, config: AllocatorConfig, start: int, end: int) -> float:
    """The value per unit of the units between positions `start` and `end` over the horizon: the yield the
    forecast expects, diluted by the position itself where the market's supply S is known, less the risk penalty.

    A position x earns y·x·(1 - e·(x - h)/(S + x)) = y·((1 - e)·x + e·(S + h)·x/(S + x)) (h the vault's position
    the rate is at, `MarketForecast.held`), concave in x for e >= 1 (x/(S + x) is concave), so the units between a
    and b earn y·(q - (e - 1)·(1 - q)) each, q = (S + h)·S/((S + a)(S + b)): at e = 1, h = 0 y·S²/((S + a)(S + b)),
    the marginal y·S²/(S + x)² at a = b = x. (The replay floors the rate at 0; this does not, so a position past
    that point is valued below what it earns, never above.)"""
    return _span_yield(forecast, config, start, end) - risk_penalty(forecast, config)


def _span_yield(forecast: MarketForecast, config: AllocatorConfig, start: float, end: float) -> float:
    expected = horizon_yield(forecast, config)
    if forecast.supply is None or expected <= 0:
        return expected  # at or below 0 taken as it is: no supply rate is negative, there is no interest to share
    supply = forecast.supply
    shared = ((supply + forecast.held) / (supply + start)) * (supply / (supply + end))
    return expected * (shared - (forecast.elasticity - 1) * (1 - shared))  # `shared` itself at e = 1, to the bit


def horizon_yield(forecast: MarketForecast, config: AllocatorConfig) -> float:
    """y: what one unit earns over the horizon at the forecast APY (of a position too small to dilute it)."""
    return forecast.apy_pct * config.horizon_days / DAYS_PER_YEAR / 100


def risk_penalty(forecast: MarketForecast, config: AllocatorConfig) -> float:
    """λ·p·LGD: the expected loss of one unit over the horizon, weighed by the risk aversion."""
    return config.risk_aversion * forecast.p_event * loss_given(forecast, config)


def loss_given(forecast: MarketForecast, config: AllocatorConfig) -> float:
    """The LGD `forecast`'s event probability is weighed by: the config's when set, else the forecast's own,
    else `UNMEASURED_LOSS_GIVEN_EVENT`."""
    if config.loss_given_event is not None:
        return config.loss_given_event
    return UNMEASURED_LOSS_GIVEN_EVENT if forecast.loss_given_event is None else forecast.loss_given_event


def trade_value(position: int, delta: int, forecast: MarketForecast, config: AllocatorConfig) -> float:
    """What moving `delta` (signed, asset units) into a market holding `position` gains over the horizon, net of
    its gas and slippage (`span_value` of the units moved): a plan's expected gain is the sum over its trades."""
    held = delta * span_value(forecast, config, position, position + delta)
    return held - config.gas_cost - config.slippage_bps / BPS * abs(delta)


def min_trade_size(values: list[float], config: AllocatorConfig) -> int | None:
    """m: the smallest trade that can pay its gas (or the configured floor); None if no trade can."""
    spread = max([0.0, *values]) - min([0.0, *values])  # idle is a place too, worth 0
    if spread == 0:
        return None
    smallest_paying = config.gas_cost / spread
    if not math.isfinite(smallest_paying):
        return None
    return max(config.min_trade_floor, math.ceil(smallest_paying), 1)


def risk_limit(state: VaultState, forecasts: Mapping[str, MarketForecast], config: AllocatorConfig) -> Fraction | None:
    """The most expected loss Σ x_i·p_i·LGD a plan may carry: the budget, or today's level if already above it."""
    if config.risk_budget is None:
        return None
    today = sum(state.position(m) * _risk_weight(f, config) for m, f in forecasts.items())
    return max(Fraction(config.risk_budget) * state.total, Fraction(today))


def expected_loss(
    targets: Mapping[str, int], forecasts: Mapping[str, MarketForecast], config: AllocatorConfig
) -> Fraction:
    """Σ x_i·p_i·LGD over the forecast markets, exactly."""
    return Fraction(sum(targets.get(m, 0) * _risk_weight(f, config) for m, f in forecasts.items()))


def allocate(
    state: VaultState,
    guardrails: Guardrails,
    forecasts: Mapping[str, MarketForecast],
    config: AllocatorConfig,
) -> Allocation:
    """The best targets the guardrails allow, or the current positions if no change pays for itself."""
    _require_listed("state.positions", state.positions, guardrails)
    _require_listed("forecasts", forecasts, guardrails)
    current = {market: state.position(market) for market in guardrails.markets}
    # Each market's value of a unit more or less at today's position: with dilution the best any trade can do
    # per unit supplied, and the least a withdrawal can cost per unit (the value is concave in the position).
    values = {market: horizon_value(forecasts[market], config, current[market])
              for market in guardrails.markets if market in forecasts}
    min_trade = min_trade_size(list(values.values()), config)
    outside = tuple(breaches(state, guardrails))
    if min_trade is None and outside and values:
        min_trade = max(config.min_trade_floor, 1)  # moving back inside the limits need not pay

    def hold(status: AllocationStatus, message: str = "") -> Allocation:
        return Allocation(dict(current), {}, 0.0, status, min_trade, message, outside)

    if state.paused:
        return hold(AllocationStatus.PAUSED)
    if state.total == 0:
        return hold(AllocationStatus.EMPTY)
    if min_trade is None or min_trade > state.total:
        return hold(AllocationStatus.NOTHING_PAYS)

    limits = _Limits.of(state, guardrails, forecasts, values, config, min_trade, outside)
    if not limits.repairing and _no_plan_gains(limits, values, config):
        return hold(AllocationStatus.OPTIMAL, NO_PLAN_GAINS)
    result = _solve(limits, forecasts, values, config)
    status = AllocationStatus.OPTIMAL if result.status == 0 else AllocationStatus.NOT_OPTIMAL
    if result.x is None:
        return hold(status, result.message)

    def value_of(trades: Mapping[str, int]) -> float:
        return sum(trade_value(current[market], delta, forecasts[market], config) for market, delta in trades.items())

    deltas, risk_cut = _integer_trades(result.x, limits, values)
    if risk_cut:
        # The risk row's float form hides a weight far below the largest (HiGHS drops coefficients under 1e-9 and
        # allows 1e-7 of violation), so the plan supplied there more risk than the exact budget keeps; solved
        # again with those supplies counted at the largest weight, it must free that risk elsewhere.
        again = _solve(limits, forecasts, values, config, riskiest=risk_cut)
        if again.x is not None:
            other, _ = _integer_trades(again.x, limits, values)
            if value_of(other) > value_of(deltas):
                deltas, result = other, again
    deltas = _spend_rounding_slack(deltas, limits, values, value_of)
    gain = value_of(deltas)
    if not deltas or (gain <= 0 and not limits.repairing):
        return hold(status, result.message)
    targets = {market: position + deltas.get(market, 0) for market, position in current.items()}
    trades = {market: targets[market] for market in deltas}
    return Allocation(targets, trades, gain, status, min_trade, result.message, outside, limits.repairing)


def move_limit(total: int, guardrails: Guardrails, config: AllocatorConfig, invested: int = 0) -> int:
    """M: the most one rebalance may move, by the turnover limit and by the loss its slippage would realise,
    less the accrual margin of `invested` (the positions it may withdraw from): a withdrawal moves what its
    position has grown to by the block the rebalance is mined in, so a plan at the limit would exceed it."""
    limit = guardrails.max_turnover_bps * total // BPS
    if config.slippage_bps > 0:
        limit = min(limit, math.floor(guardrails.max_loss_bps * total / Fraction(config.slippage_bps)))
    return max(0, limit - math.ceil(ACCRUAL_MARGIN * invested))


def mined_idle_floor(state: VaultState, guardrails: Guardrails) -> int:
    """The least idle a rebalance that lowers idle may leave for the contract to accept it when it is mined.

    The contract reports every market first, so it checks the floor against a total grown by what the
    positions earned since they were read, up to the accrual margin of them: a plan that left idle exactly at
    today's floor would revert a block or a minute later (a busy keeper saw it on the devnet).
    """
    invested = state.total - state.idle
    return idle_floor(state.total + math.ceil(ACCRUAL_MARGIN * invested), guardrails)


def position_caps(total: int, guardrails: Guardrails, markets: list[str], config: AllocatorConfig) -> dict[str, int]:
    """The most each of `markets` may hold after a rebalance for the contract's caps to hold.

    The contract checks bps caps against totalAssets after the move, which can be lower than T: ERC-4626
    rounding may leave each other moved position 1 unit short, and slippage costs at most s·M. (A 100 % cap
    cannot bind: a position is part of the total.)
    """
    moved = move_limit(total, guardrails, config)
    base = max(0, total - max(0, len(markets) - 1) - slippage_loss_bound(moved, len(markets), config))
    caps = {market: guardrails.markets[market] for market in markets}
    return {m: min(caps[m].cap_abs, total if caps[m].cap_bps >= BPS else caps[m].cap_bps * base // BPS)
            for m in markets}


def slippage_loss_bound(move_room: int, markets: int, config: AllocatorConfig) -> int:
    """The most slippage can take from the total when at most `move_room` is supplied to `markets` markets
    (each market's cost is rounded up against the vault)."""
    if config.slippage_bps == 0:
        return 0
    return math.ceil(Fraction(config.slippage_bps) * move_room / BPS) + markets


def withdrawal_room(state: VaultState, market: str) -> int:
    """W_i: the most a plan withdraws from `market`, within what it can pay back now and the accrual margin."""
    position = state.position(market)
    if market not in state.withdrawable:
        return position
    return max(0, min(position, state.withdrawable[market] - math.ceil(ACCRUAL_MARGIN * position)))


def _risk_weight(forecast: MarketForecast, config: AllocatorConfig) -> Fraction:
    return Fraction(forecast.p_event) * Fraction(loss_given(forecast, config))


def _require_listed(what: str, markets: Mapping[str, object], guardrails: Guardrails) -> None:
    unknown = sorted(set(markets) - set(guardrails.markets))
    if unknown:
        raise UnknownMarket(f"{what} names markets the guardrails do not list: {', '.join(unknown)}")


@plain_dataclass(frozen=True)
class _Limits:
    """The limits of one decision over the forecast markets, exact, in asset units (see the module docstring)."""

    total: int
    markets: list[str]
    positions: dict[str, int]  # x0_i
    down_room: dict[str, int]  # W_i
    up_room: dict[str, int]  # U_i
    down_floor: dict[str, int]  # e_i: what a market over its cap must withdraw
    invest_room: int  # S; negative (-R) while idle is below its floor
    move_room: int  # M
    min_trade: int  # m
    risk: dict[str, Fraction]  # p_i·LGD
    risk_room: Fraction | None  # risk limit minus today's expected loss, None without a budget

    @property
    def repairing(self) -> bool:
        return bool(self.down_floor) or self.invest_room < 0

    @classmethod
    def of(
        cls,
        state: VaultState,
        guardrails: Guardrails,
        forecasts: Mapping[str, MarketForecast],
        values: Mapping[str, float],
        config: AllocatorConfig,
        min_trade: int,
        outside: tuple[Breach, ...],
    ) -> "_Limits":
        total = state.total
        markets = [market for market in guardrails.markets if market in forecasts]
        positions = {market: state.position(market) for market in markets}
        invested = total - state.idle
        move_room = move_limit(total, guardrails, config, invested)
        limit = risk_limit(state, forecasts, config)
        caps = position_caps(total, guardrails, markets, config)
        down_room = {m: withdrawal_room(state, m) for m in markets}
        down_floor, idle_repair = _repairs(state, guardrails, caps, down_room, values, move_room, min_trade, config,
                                           outside)
        return cls(
            total=total,
            markets=markets,
            positions=positions,
            down_room=down_room,
            up_room={m: max(0, caps[m] - positions[m]) for m in markets},
            down_floor=down_floor,
            invest_room=(-idle_repair if idle_repair else max(invested, total - mined_idle_floor(state, guardrails))
                         - invested),
            move_room=move_room,
            min_trade=min_trade,
            risk={market: _risk_weight(forecasts[market], config) for market in markets},
            risk_room=None if limit is None else limit - expected_loss(positions, forecasts, config),
        )


def _repairs(state: VaultState, guardrails: Guardrails, caps: Mapping[str, int], available: Mapping[str, int],
             values: Mapping[str, float], move_room: int, min_trade: int,
             config: AllocatorConfig, outside: tuple[Breach, ...]) -> tuple[dict[str, int], int]:
    """What moving back inside the limits needs of this plan: the least each market over its cap must withdraw
    (e_i) and how much idle must rise (R), both within the move room M and what each market can pay back
    (`available`: W_i of the forecast markets), for the breaches `outside` names (interest's drift is none).

    Built from one feasible plan of withdrawals, so the program stays feasible: idle first, taken from the
    markets over their caps (largest breach first), then from the least valuable; then the markets over their
    caps down to the allocator's own cap, which leaves room for rounding and slippage, so they stay inside.
    A market that can pay back less than m cannot be traded, so it cannot help; a breach smaller than m is left.
    """
    positions = {m: state.position(m) for m in available}
    movable = [m for m in available if available[m] >= min_trade]
    excess = {breach.market: breach.amount for breach in outside if breach.kind is BreachKind.CAP}
    # A breach smaller than m is shown, not traded on.
    over = sorted((m for m in movable if excess.get(m, 0) >= min_trade), key=excess.__getitem__, reverse=True)
    order = over + sorted((m for m in movable if m not in over), key=values.__getitem__)

    plan: dict[str, int] = {}
    room = move_room
    below_floor = any(breach.kind is BreachKind.IDLE_FLOOR for breach in outside)
    short = max(0, mined_idle_floor(state, guardrails) - state.idle) if below_floor else 0
    short = short if short >= min_trade else 0
    target = short + slippage_loss_bound(short, 1, config) if short else 0  # what the withdrawals may lose
    need = target
    for market in order:
        take = min(available[market], room, max(need, min_trade))
        if need <= 0 or take < min_trade:
            continue
        plan[market], room, need = take, room - take, need - take

    down_floor: dict[str, int] = {}
    for market in over:
        wanted = min(max(positions[market] - caps[market], min_trade), available[market])
        taken = plan.get(market, 0)
        extra = min(max(0, wanted - taken), room)
        if taken + extra >= min_trade:
            down_floor[market] = min(taken + extra, wanted)
            room -= extra
    return down_floor, min(target, sum(plan.values()))


def _no_plan_gains(limits: _Limits, values: Mapping[str, float], config: AllocatorConfig) -> bool:
    """Whether no plan within `limits` can gain more than it costs, proven without the solver (most days: the
    vault already holds the best places it may).

    Any plan is a flow of at most F = min(M, what its sources can give) from sources (a market paying back at
    least m, costing r_i + s a unit; idle while it may go down, costing 0) to destinations (a market with room
    for at least m, worth r_i - s a unit; idle, worth 0), and touches at least one market. It gains at most
    F·max(0, best destination - cheapest source) - g; if that is not positive, the solver's plan would be held
    too. `values` are the marginal values at today's positions, so the bound holds for a diluted market too: its
    value is concave, no unit supplied gains more than the first and no unit withdrawn costs less (leaving a
    market raises the rate on what stays). Exact arithmetic: the proof does not rest on rounding.
    """
    slip = Fraction(config.slippage_bps) / BPS
    sources = [m for m in limits.markets if limits.down_room[m] >= limits.min_trade]
    idle_gives = max(0, limits.invest_room)  # in any amount: m binds each market's trade, not idle's share of it
    costs = [Fraction(values[m]) + slip for m in sources] + ([Fraction(0)] if idle_gives else [])
    if not costs:
        return True
    worth = [Fraction(values[m]) - slip for m in limits.markets if limits.up_room[m] >= limits.min_trade]
    spread = max([Fraction(0), *worth]) - min(costs)
    flow = min(limits.move_room, sum(limits.down_room[m] for m in sources) + idle_gives)
    return flow * max(Fraction(0), spread) <= Fraction(config.gas_cost)


def _solve(limits: _Limits, forecasts: Mapping[str, MarketForecast], values: Mapping[str, float],
           config: AllocatorConfig, riskiest: Collection[str] = ()) -> OptimizeResult:
    """The MILP over [u, d, a, b, chords] (fractions of T), minimising the negated, scaled objective.

    A market whose value is linear in its position carries its yield on u_i and d_i; a diluted one over more
    than one chord (`yield_segments`) carries it on chord variables that add up to u_i (d_i), filled nearest
    first by the objective alone since their yields fall (rise) away from the position. What is supplied to
    the `riskiest` markets counts in the risk row at the largest weight, a bound above their own."""
    n = len(limits.markets)
    total = limits.total
    slip = config.slippage_bps / BPS
    penalty = np.array([risk_penalty(forecasts[market], config) for market in limits.markets])
    cost_up, cost_down = slip + penalty, slip - penalty
    chord_costs: list[float] = []
    chord_widths: list[float] = []
    chord_rows: list[tuple[int, int]] = []  # (column of u_i or d_i, chord count) of each multi-chord side
    for i, market in enumerate(limits.markets):
        position = limits.positions[market]
        for side, reach, sign, costs in ((i, limits.up_room[market], 1, cost_up),
                                         (n + i, limits.down_room[market], -1, cost_down)):
            # no unit is supplied where it earns less than its risk penalty and slippage: idle takes it for free
            span = reach if sign < 0 else supply_reach(forecasts[market], config, position, reach, cost_up[i])
            chords = yield_segments(forecasts[market], config, position, sign * span)
            if len(chords) == 1 and span == reach:
                costs[i] -= sign * chords[0][1]
                continue
            chord_rows.append((side, len(chords)))
            chord_costs += [-sign * y for _, y in chords]
            chord_widths += [width / total for width, _ in chords]
    k = len(chord_costs)
    down = np.array([limits.down_room[market] / total for market in limits.markets])
    up = np.array([limits.up_room[market] / total for market in limits.markets])
    m = limits.min_trade / total
    gas = np.full(n, config.gas_cost / total)
    cost = np.concatenate([cost_up, cost_down, gas, gas, chord_costs])
    # Scaled to at most 1 in size whatever the yields, so HiGHS's absolute gaps and tolerances fit them.
    cost /= np.abs(cost).max() or 1.0  # all zero: a forced repair with nothing to gain or pay

    eye, zero, ones, none = np.eye(n), np.zeros((n, n)), np.ones(n), np.zeros(n)
    blocks = [  # (rows over [u, d, a, b], lower bound, upper bound)
        (np.hstack([eye, zero, -m * eye, zero]), 0.0, np.inf),  # u_i >= m·a_i
        (np.hstack([eye, zero, -np.diag(up), zero]), -np.inf, 0.0),  # u_i <= U_i·a_i
        (np.hstack([zero, eye, zero, -m * eye]), 0.0, np.inf),  # d_i >= m·b_i
        (np.hstack([zero, eye, zero, -np.diag(down)]), -np.inf, 0.0),  # d_i <= W_i·b_i
        (np.hstack([zero, zero, eye, eye]), -np.inf, 1.0),  # up or down, not both
        (np.hstack([ones, -ones, none, none])[None], -np.inf, limits.invest_room / total),
        (np.hstack([ones, ones, none, none])[None], -np.inf, limits.move_room / total),
    ]
    if limits.risk_room is not None:
        # Scaled to a largest coefficient of 1 too: with small p_event the row's violations would otherwise hide
        # inside HiGHS's feasibility tolerance, and the exact repair afterwards would cut the whole plan.
        weights = [limits.risk[market] for market in limits.markets]
        scale = max(weights) or Fraction(1)
        risk = np.array([float(w / scale) for w in weights])
        added = np.array([1.0 if market in riskiest else weight for market, weight in zip(limits.markets, risk,
                                                                                           strict=True)])
        room = min(limits.risk_room / total / scale, Fraction(n))  # the row's left side never exceeds n
        blocks.append((np.hstack([added, -risk, none, none])[None], -np.inf, float(room)))
    matrix = np.hstack([np.vstack([rows for rows, _, _ in blocks]), np.zeros((sum(len(r) for r, _, _ in blocks), k))])
    lower = np.concatenate([np.full(len(rows), lo) for rows, lo, _ in blocks])
    upper = np.concatenate([np.full(len(rows), hi) for rows, _, hi in blocks])
    if chord_rows:  # Σ chords - u_i (d_i) = 0
        sums = np.zeros((len(chord_rows), 4 * n + k))
        first = 4 * n
        for row, (side, count) in enumerate(chord_rows):
            sums[row, side] = -1.0
            sums[row, first:first + count] = 1.0
            first += count
        matrix, lower, upper = (np.vstack([matrix, sums]), np.concatenate([lower, np.zeros(len(chord_rows))]),
                                np.concatenate([upper, np.zeros(len(chord_rows))]))
    forced = np.array([limits.down_floor.get(market, 0) / total for market in limits.markets])
    return milp(
        cost,
        integrality=np.concatenate([np.zeros(2 * n), np.ones(2 * n), np.zeros(k)]),
        bounds=Bounds(np.concatenate([none, forced, none, (forced > 0).astype(float), np.zeros(k)]),
                      np.concatenate([up, down, ones, ones, chord_widths])),
        constraints=LinearConstraint(matrix, lower, upper),
        options={"node_limit": config.node_limit, "time_limit": config.time_limit_s, "mip_rel_gap": _MIP_REL_GAP},
    )


def supply_reach(forecast: MarketForecast, config: AllocatorConfig, position: int, room: int,
                 least: float) -> int:
    """How much of `room` supplied at `position` earns at least `least` a unit at the margin: a diluted market's
    marginal yield y·(1 - e + e·(S + h)·S/(S + x)²) falls with x, to `least` at S + x = S·√((S + h)/S)/√q,
    q = (least/y + e - 1)/e.
    The chords then span only what a plan could want, finer by as much."""
    expected = horizon_yield(forecast, config)
    if forecast.supply is None or expected <= 0:
        return room
    if least >= expected:
        return 0  # not even the first unit's yield pays
    share = (least / expected + forecast.elasticity - 1) / forecast.elasticity
    if share <= 0:
        return room  # the margin never falls that low
    supply = forecast.supply
    # √((S + h)/S) is 1 at h = 0: S/√q then, to the bit
    edge = supply * math.sqrt((supply + forecast.held) / supply) / math.sqrt(share)
    return max(0, min(room, math.floor(edge - supply) - position))


def yield_segments(forecast: MarketForecast, config: AllocatorConfig, position: int,
                   delta: int) -> list[tuple[float, float]]:
    """The chords the program takes the yield of moving `delta` (signed, asset units) at `position` as: (width in
    asset units, yield per unit), nearest the position first; one chord at the forecast's yield when it is not
    diluted (`span_value`).

    The yield of a position x is concave (`span_value`), so each chord (`span_value`'s yield) lies below the curve
    and a plan is never valued above what the replay and the market pay it; the chords are spaced evenly in
    log(S + x), each spanning at most SEGMENT_SLOPE_STEP of slope, at most MAX_SEGMENTS of them."""
    expected = horizon_yield(forecast, config)
    if delta == 0 or forecast.supply is None or expected <= 0:
        return [(float(abs(delta)), _span_yield(forecast, config, position, position + delta))]
    supply = forecast.supply
    near, far = supply + position, supply + position + delta
    # the slope y·(1 - e + e·(S + h)·S/(S + x)²) falls by about 2·e·(S + h)·S/(S + x)²·|log(far / near)| of the
    # yield over the range, at most 2·e·|log(far / near)| where S + x >= √((S + h)·S) (always, at h = 0)
    steepest = max(1.0, (supply + forecast.held) * supply / min(near, far) ** 2)
    spread = 2 * forecast.elasticity * steepest * abs(math.log(far / near))
    count = min(MAX_SEGMENTS, max(1, math.ceil(spread / math.log1p(SEGMENT_SLOPE_STEP))))
    points = [near * (far / near) ** (step / count) - supply for step in range(count)] + [position + delta]
    return [(abs(b - a), _span_yield(forecast, config, a, b)) for a, b in itertools.pairwise(points)]


def _integer_trades(solution: np.ndarray, limits: _Limits,
                    values: Mapping[str, float]) -> tuple[dict[str, int], frozenset[str]]:
    """Signed trades in asset units that meet every limit exactly, from the solver's fractional solution, and
    the markets whose supply the exact risk budget cut.

    The sums hold in the solution only up to solver tolerance (relative to T), so they are restored here.
    Cutting a supply eases every sum; a withdrawal is cut only once no supply is left, when money flows
    out of markets only and the idle and risk limits hold by themselves.
    """
    supplied, withdrawn, goes_up, goes_down = np.split(solution[:4 * len(limits.markets)], 4)  # chords after
    supplies: dict[str, int] = {}
    withdrawals: dict[str, int] = {}
    for i, market in enumerate(limits.markets):
        if goes_up[i] > 0.5:
            supplies[market] = _to_units(supplied[i], limits.up_room[market], limits)
        elif goes_down[i] > 0.5:
            withdrawals[market] = max(_to_units(withdrawn[i], limits.down_room[market], limits),
                                      limits.down_floor.get(market, 0))

    unit = dict.fromkeys(limits.markets, Fraction(1))
    cheapest_first = sorted(supplies, key=values.__getitem__)
    _cut(supplies, sum(supplies.values()) - sum(withdrawals.values()) - limits.invest_room, cheapest_first, unit,
         limits)
    risk_cut: frozenset[str] = frozenset()
    if limits.risk_room is not None:
        risk_added = (sum(limits.risk[m] * a for m, a in supplies.items())
                      - sum(limits.risk[m] * a for m, a in withdrawals.items()))
        planned = dict(supplies)
        _cut(supplies, risk_added - limits.risk_room, cheapest_first, limits.risk, limits)
        risk_cut = frozenset(m for m in planned if supplies[m] < planned[m])
    excess = _cut(supplies, sum(supplies.values()) + sum(withdrawals.values()) - limits.move_room, cheapest_first,
                  unit, limits)
    _cut(withdrawals, excess, sorted(withdrawals, key=values.__getitem__, reverse=True), unit, limits,
         limits.down_floor)

    trades = {market: amount for market, amount in supplies.items() if amount}
    trades |= {market: -amount for market, amount in withdrawals.items() if amount}
    return {market: trades[market] for market in limits.markets if market in trades}, risk_cut


def _to_units(fraction: float, bound: int, limits: _Limits) -> int:
    """A traded amount in asset units within [m, bound] (0 if that is empty), snapped to the bound when close."""
    amount = round(Fraction(fraction) * limits.total)
    if amount <= 0:
        return 0  # a touch without a trade: HiGHS ignores coefficients below 1e-9, so a_i = 1, u_i = 0 can occur
    if bound - amount <= _SNAP * limits.total:
        amount = bound
    return min(max(amount, limits.min_trade), bound) if bound >= limits.min_trade else 0


def _spend_rounding_slack(deltas: Mapping[str, int], limits: _Limits, values: Mapping[str, float],
                          value_of: Callable[[Mapping[str, int]], float]) -> dict[str, int]:
    """`deltas` with the whole units that rounding left unused put to work: a withdrawal that pays raised, one
    that costs lowered and a supply that pays raised, in order of value, as far as every sum's room (idle,
    turnover, risk), the market's own room, m and the repairs allow, each kept only when the plan gains by it.

    The solver's vertex can be fractional where the limits are odd (the accrual margin makes them so), and
    rounding it then leaves a unit idle that an integer plan would place."""
    plan = dict(deltas)

    def room() -> tuple[Fraction, Fraction, Fraction | None]:
        supplied = sum(d for d in plan.values() if d > 0)
        withdrawn = -sum(d for d in plan.values() if d < 0)
        risk = None if limits.risk_room is None else limits.risk_room - sum(limits.risk[m] * d for m, d in plan.items())
        return (Fraction(limits.invest_room - supplied + withdrawn), Fraction(limits.move_room - supplied - withdrawn),
                risk)

    def affordable(market: str, units: Fraction, risk: Fraction | None) -> int:
        if risk is not None and limits.risk[market] > 0:
            units = min(units, risk / limits.risk[market])
        return max(0, math.floor(units))

    def try_amount(market: str, delta: int) -> None:
        if delta != 0 and abs(delta) < limits.min_trade:
            return
        changed = {**plan, market: delta} if delta else {m: d for m, d in plan.items() if m != market}
        if value_of(changed) > value_of(plan):
            plan.clear()
            plan.update(changed)

    by_value = sorted(limits.markets, key=values.__getitem__, reverse=True)
    for market in reversed(by_value):  # a unit more withdrawn frees idle's room and risk, and takes turnover
        if plan.get(market, 0) <= 0:
            _, move, _ = room()
            more = min(limits.down_room[market] + plan.get(market, 0), max(0, math.floor(move)))
            if more > 0:
                try_amount(market, plan.get(market, 0) - more)
    for market in by_value:  # a unit kept back adds to idle's use and to risk, and frees turnover
        if plan.get(market, 0) < 0:
            invest, _, risk = room()
            withdrawn = -plan[market]
            kept = min(withdrawn - limits.down_floor.get(market, 0), affordable(market, invest, risk))
            try_amount(market, -max(withdrawn - kept, limits.min_trade if kept < withdrawn else 0))
    for market in by_value:
        if plan.get(market, 0) >= 0:
            invest, move, risk = room()
            more = min(limits.up_room[market] - plan.get(market, 0), affordable(market, min(invest, move), risk))
            if more > 0:
                try_amount(market, plan.get(market, 0) + more)
    return {market: plan[market] for market in limits.markets if market in plan}


def _cut(
    amounts: dict[str, int], excess: Fraction | int, order: list[str], weight: Mapping[str, Fraction], limits: _Limits,
    floors: Mapping[str, int] | None = None,
) -> Fraction | int:
    """Reduce `amounts` in `order` until Σ weight·cut covers `excess`, dropping what falls below m and never
    below `floors`; what is left over."""
    for market in order:
        if excess <= 0:
            break
        if weight[market] == 0:
            continue
        kept = max(0, amounts[market] - math.ceil(excess / weight[market]))
        if kept < limits.min_trade:
            kept = 0
        kept = max(kept, (floors or {}).get(market, 0))
        excess -= (amounts[market] - kept) * weight[market]
        amounts[market] = kept
    return excess


# The forecast of a listed market the data says nothing about today (its feed stopped, or has not started):
# neither its yield nor its safety is known, so it is valued as certain to suffer an adverse event. Its value
# r = -λ·1·LGD is below idle's 0, so every plan withdraws from it as fast as the turnover limit and its cash allow, and
# supplies nothing to it. A 0 % forecast instead leaves the allocator indifferent between it and idle, and the
# money stays in a dead market earning nothing. (With λ = 0 or LGD = 0 it is worth idle's 0: nothing then
# forces the exit.)
UNKNOWN_MARKET = MarketForecast(apy_pct=0.0, p_event=1.0)

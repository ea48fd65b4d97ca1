"""The vault's rebalance guardrails in Python: the one definition the keeper and the backtester share.

Mirrors `Vault.rebalance` as specified in contracts/README.md ("Vault semantics"): the same checks in the
same order, the same integer formulas and the same revert reasons. The contract reverts with the first
failing check, so `check_rebalance(...)[0].reason` is the reason the chain would give.

Two checks of the contract have no counterpart here: `vault: not keeper` (the caller is not part of the
state) and `vault: duplicate market` (a mapping cannot name a market twice). A market counts as *named*
when its position changes; naming a market without changing it has no effect on any check.

`simulate_rebalance` is the lossless execution model (markets pay back exactly, no slippage):
withdraw every market that goes down, then supply every market that goes up from idle.

A market also refuses on its own: an ERC-4626 lending market pays out only the cash it has not lent, its
`maxWithdraw`, so near 100 % utilization a position cannot be pulled (`VaultState.withdrawable`). The vault's
`_move_funds` withdraws before it checks caps, so that refusal comes right after the listing check.
"""

from collections.abc import Callable, Mapping
from dataclasses import replace
from enum import StrEnum
from typing import Annotated, Any, NamedTuple

from pydantic import ConfigDict, Field, Strict, TypeAdapter
from pydantic.dataclasses import dataclass

from strategy.units import BPS, UINT256_MAX

MAX_MARKETS = 16  # Vault.vy MAX_MARKETS: rebalance takes at most this many allocations
MAX_RATE_BPS = 100_000  # Vault.vy MAX_RATE_BPS: the loosest daily budget and yearly price growth
# The guardrails the devnet deploys and a backtest simulates unless its config says otherwise: an hour between
# rebalances, at most half the assets moved and 0.1 % lost per rebalance, 5 % idle; 40 % of assets per market.
DEFAULT_GUARDRAILS: dict[str, int] = {
    "min_rebalance_interval": 3600,
    "max_turnover_bps": 5000,
    "max_loss_bps": 10,
    "min_idle_bps": 500,
}
DEFAULT_CAP_BPS = 4000
# The vault's limits beyond a single rebalance, deployed with DEFAULT_GUARDRAILS: the keeper may lose at most
# 0.1 % and move at most twice the vault in a rolling day, and a market's accepted price may rise at most 100 %
# a year (the real stablecoin markets of 2022-2025 peaked at 68 %, Aave v3 USDT). The Python mirror sees the daily
# budgets as the per-rebalance limits they leave (chain.vault_reader).
DEFAULT_VAULT_LIMITS: dict[str, int] = {
    "daily_loss_bps": 10,
    "daily_turnover_bps": 20_000,
    "max_price_growth_bps": 10_000,
}

# On-chain amounts are uint256; strict so that a float or bool from a config file is an error, not a cast.
Uint256 = Annotated[int, Strict(), Field(ge=0, le=UINT256_MAX)]
Bps = Annotated[int, Strict(), Field(ge=0, le=BPS)]
MarketId = Annotated[str, Strict(), Field(min_length=1)]

_STRICT = ConfigDict(extra="forbid")


class Reason(StrEnum):
    """Revert reasons of `Vault.rebalance`, in the order the contract checks them."""

    PAUSED = "vault: paused"
    COOLDOWN = "vault: cooldown"
    MARKET_NOT_ALLOWED = "vault: market not allowed"
    # The market's own refusal inside `_move_funds` (MockMarket's words; a real market says it in its own).
    MARKET_ILLIQUID = "market: withdraw more than max"
    CAP_EXCEEDED = "vault: cap exceeded"
    IDLE_BELOW_FLOOR = "vault: idle below floor"
    TURNOVER_EXCEEDED = "vault: turnover exceeded"
    LOSS_EXCEEDED = "vault: loss exceeded"
    # The daily budgets: the mirror sees them folded into the two limits above, yet the chain can still find a
    # move over them (a loss the lossless mirror does not model, a budget tightened since it was read).
    OVER_DAILY_BUDGET = "vault: over daily budget"


@dataclass(frozen=True, config=_STRICT)
class MarketLimits:
    """Caps of one listed market: a share of total assets (bps) and an absolute amount (asset units)."""

    cap_bps: Bps
    cap_abs: Uint256


@dataclass(frozen=True, config=_STRICT)
class Guardrails:
    """The vault's rebalance parameters and its listed markets (keyed by address or pool id)."""

    min_rebalance_interval: Uint256
    max_turnover_bps: Bps
    max_loss_bps: Bps
    min_idle_bps: Bps
    markets: Annotated[Mapping[MarketId, MarketLimits], Field(max_length=MAX_MARKETS)]

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> "Guardrails":
        """Build from plain data (e.g. a parsed TOML table) with `markets` as `{id: {cap_bps, cap_abs}}`.

        Raises `pydantic.ValidationError` (a `ValueError`) naming each missing, unknown or bad key.
        """
        return TypeAdapter(cls).validate_python(dict(data))


@dataclass(frozen=True, config=_STRICT)
class VaultState:
    """What the guardrails look at: idle assets, each market's position (assets), last rebalance, pause flag,
    and what each market can pay back now.

    A market missing from `positions` has a position of 0; one missing from `withdrawable` pays back all of it.
    """

    idle: Uint256
    positions: Mapping[MarketId, Uint256]
    last_rebalance: Uint256
    paused: bool
    # The most one withdrawal from a market may take (its `maxWithdraw` for the vault), where that is less than
    # the position: a lending market lends out what it holds, and near 100 % utilization pays back only the rest.
    withdrawable: Mapping[MarketId, Uint256] = Field(default_factory=dict)

    def position(self, market: str) -> int:
        return self.positions.get(market, 0)

    def withdrawable_from(self, market: str) -> int:
        """The most a rebalance can take out of `market` now."""
        position = self.position(market)
        return min(position, self.withdrawable.get(market, position))

    @property
    def total(self) -> int:
        """`totalAssets()`: idle plus every position."""
        return self.idle + sum(self.positions.values())


class Violation(NamedTuple):
    """One failed guardrail: the contract's revert reason and the numbers behind it."""

    reason: Reason
    detail: str


class InsufficientIdle(ValueError):
    """The targets supply more than idle plus withdrawals hold: the asset transfer itself would revert."""


def check_rebalance(before: VaultState, after: VaultState, now: int, guardrails: Guardrails) -> list[Violation]:
    """Every guardrail the move from `before` to `after` at time `now` breaks, in the contract's order."""
    violations: list[Violation] = []
    if before.paused:
        violations.append(Violation(Reason.PAUSED, "the vault is paused"))
    ready_at = before.last_rebalance + guardrails.min_rebalance_interval
    if now < ready_at:
        violations.append(Violation(Reason.COOLDOWN, f"now {now} < last rebalance + interval = {ready_at}"))

    markets = dict.fromkeys([*before.positions, *after.positions])
    named = [m for m in markets if after.position(m) != before.position(m)]
    for market in named:
        if market not in guardrails.markets:
            violations.append(Violation(Reason.MARKET_NOT_ALLOWED, f"market {market} is not listed"))
    for market in named:
        taken, available = before.position(market) - after.position(market), before.withdrawable_from(market)
        if taken > available:
            violations.append(Violation(Reason.MARKET_ILLIQUID,
                                        f"market {market}: withdraw {taken} > the {available} it can pay now"))

    total_before, total_after = before.total, after.total
    for market in named:
        limits = guardrails.markets.get(market)
        position = after.position(market)
        if limits is None or position <= before.position(market):
            continue  # caps bind only markets that went up
        if position > limits.cap_abs or position * BPS > limits.cap_bps * total_after:
            violations.append(
                Violation(
                    Reason.CAP_EXCEEDED,
                    f"market {market}: position {position} > cap_abs {limits.cap_abs}"
                    f" or > {limits.cap_bps} bps of total {total_after}",
                )
            )

    if after.idle < before.idle and after.idle * BPS < guardrails.min_idle_bps * total_after:
        violations.append(
            Violation(
                Reason.IDLE_BELOW_FLOOR,
                f"idle went down to {after.idle} < {guardrails.min_idle_bps} bps of total {total_after}",
            )
        )

    moved = sum(abs(after.position(m) - before.position(m)) for m in named)
    if moved * BPS > guardrails.max_turnover_bps * total_before:
        violations.append(
            Violation(
                Reason.TURNOVER_EXCEEDED,
                f"moved {moved} > {guardrails.max_turnover_bps} bps of total before {total_before}",
            )
        )

    if total_after * BPS < total_before * (BPS - guardrails.max_loss_bps):
        violations.append(
            Violation(
                Reason.LOSS_EXCEEDED,
                f"total went from {total_before} to {total_after}, more than {guardrails.max_loss_bps} bps",
            )
        )
    return violations


def simulate_rebalance(before: VaultState, targets: Mapping[str, int]) -> VaultState:
    """The state after moving each named market to its target, lossless; other markets keep their position.

    `last_rebalance` is left as it was: the contract stamps it only on success (as `backtest.execution.execute` does).
    """
    targets = TypeAdapter(Mapping[MarketId, Uint256]).validate_python(targets)
    change = sum(before.position(m) - target for m, target in targets.items())
    idle = before.idle + change
    if idle < 0:
        raise InsufficientIdle(f"targets supply {-change} more than they withdraw, but idle is only {before.idle}")
    return replace(before, idle=idle, positions={**before.positions, **targets})


def idle_floor(total: int, guardrails: Guardrails) -> int:
    """The least idle a rebalance that lowers idle may leave (rounded up, as the contract checks it)."""
    return -(-guardrails.min_idle_bps * total // BPS)


def market_cap(total: int, limits: MarketLimits) -> int:
    """The most a market may hold at `total` assets by its caps: a position above it is over its cap."""
    return min(limits.cap_abs, limits.cap_bps * total // BPS)


# How far outside its limits interest alone carries a vault, which is not reported as a breach: 10 bps of total
# assets. A market that earns more than the vault's average grows past its cap, and idle, which earns nothing,
# falls below its floor; the contract allows both (it checks caps and the floor only on the way in, as MetaMorpho
# and Yearn V3 do). At the highest APY of the real stablecoin markets of 2022-2025 (68 %) a 40 % position drifts
# at most 7.5 bps of the vault a day past its cap, so between daily rebalances a vault stays within this; a
# withdrawal of more than 0.11 % of the vault, taken from idle at its floor, is a breach.
DRIFT_BPS = 10


class BreachKind(StrEnum):
    IDLE_FLOOR = "idle below its floor"
    CAP = "over its cap"


class Breach(NamedTuple):
    """A limit the vault is outside of now. No rebalance can put it there (the contract checks caps and the
    floor on the way in), but a large withdrawal or a loss elsewhere can; the keeper then moves back.
    Interest alone also moves the vault a little outside (`DRIFT_BPS`), and that is not a breach."""

    kind: BreachKind
    market: str | None  # the market over its cap; None for the idle floor
    amount: int  # how far outside the limit, in asset units
    limit: int  # the floor or the cap, in asset units

    def text(self, assets: Callable[[int], str], label: Callable[[str], str] = str) -> str:
        """One line for people, with amounts written by `assets` and markets named by `label`."""
        if self.market is None:
            return f"idle is {assets(self.amount)} below its floor of {assets(self.limit)}"
        return f"{label(self.market)} is {assets(self.amount)} over its cap of {assets(self.limit)}"


def breaches(state: VaultState, guardrails: Guardrails) -> list[Breach]:
    """Every limit the vault is outside of now by more than interest drifts it (`DRIFT_BPS` of total assets):
    the idle floor first, then each market over its cap."""
    def beyond_drift(amount: int) -> bool:
        return amount * BPS > DRIFT_BPS * state.total

    found = []
    floor = idle_floor(state.total, guardrails)
    if beyond_drift(floor - state.idle):
        found.append(Breach(BreachKind.IDLE_FLOOR, None, floor - state.idle, floor))
    for market, limits in guardrails.markets.items():
        cap = market_cap(state.total, limits)
        if beyond_drift(state.position(market) - cap):
            found.append(Breach(BreachKind.CAP, market, state.position(market) - cap, cap))
    return found

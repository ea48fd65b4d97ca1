"""How much a lending market's other suppliers hold: what the vault's own deposit dilutes. One estimate for the
keeper's and the backtest's decisions (`strategy.allocator`, `MarketForecast.supply`) and the backtest's realised
yields (`backtest.realised`), so the allocator plans with the supply the replay charges.

A lending market's borrowers pay their interest to every supplier, so supplying x beside a supply S lowers the
utilization u to u·S/(S + x), by the part x/(S + x) of itself, and the supply APY with it. At the same borrow rate
it falls to APY·S/(S + x) (the supply APY is the borrow rate times u); the market's rate model also answers the
lower utilization with a lower borrow rate, so it falls by e times that part, e = d ln APY / d ln u, the rate
curve's elasticity (`rate_elasticity`): APY·(1 - e·x/(S + x)), never below 0 (`dilution`), the first-order
expansion of the curve around today's utilization. Below a rate model's kink e is 1 to 2 (the borrow rate rises
gently), above it 5 to 15 or more; on the shared real markets its daily estimates have medians of 1.9 to 6.6. A
position large enough to carry the utilization down past the kink is charged more than the flatter curve there
would take: overstated, never hidden.

DeFiLlama's `tvlUsd` of a lending market is what is left to borrow, S·(1 - u): with the utilization u known the
supply is tvlUsd / (1 - u), else tvlUsd itself, less than the supply, so the share and the dilution are
overstated, never hidden. A day's two figures need not be of the same moment: on 2023-07-30, as the Curve
exploit drained it, Aave v3 USDC had 196k USD left at a utilization of 95.7 % (a supply of 4.6 M) beside 282 M
the day before and 224 M the day after. Supply moves slowly, so each day's is the median of the estimates of the
last SUPPLY_MEDIAN_DAYS days.

The recorded supply is taken as the others' (the vault's money is not in it): true of the replay, and of a keeper
whose markets are not the recorded pools (the devnet's). A keeper whose markets ARE the recorded pools (a real
deployment, `[chain] vault_in_pool_data`) reads a supply S_total = S + x0 and an APY that already include its own
position x0 there; counted as the others', it would dilute itself twice, overstate its dilution and spread more
than it needs to. Its depth is then taken besides the vault (`besides_vault`): S = S_total - x0, and the APY is
the rate at x0 (`MarketDepth.held`), so moving to x changes the utilization by (S + x0)/(S + x) and the APY to
APY·(1 - e·(1 - (S + x0)/(S + x))) = APY·(1 - e·(x - x0)/(S + x)) in the same first order: exactly the recorded
APY at x = x0, above it below x0 (leaving raises the rate), today's formula at x0 = 0. The supply being a median
of SUPPLY_MEDIAN_DAYS days, x0 is the position the keeper reads on chain, not each day's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from strategy.data.daily import DailyPanel
from strategy.data.prices import in_asset
from strategy.data.schema import TIMESTAMP
from strategy.features.market import rate_curve_slope, supplied_usd

SUPPLY_MEDIAN_DAYS = 7  # a day whose liquidity and utilization disagree is outvoted by the days before it
# The most e is taken to be. Just past a kink it can be 50 (a curve of the Aave v3 stablecoin kind, 4 % at a 90 %
# kink and 60 % more up to 100 %, at 91 %: a borrow rate of 10 % rising 6 points per point of utilization), but
# only for the first units: below the kink the curve flattens, so a first-order e that large overstates all but
# the smallest position. The real USDC markets' estimates reach 20 on 9 % (Compound v3) and 17 % (Aave v3) of
# their days, where this caps them.
MAX_RATE_ELASTICITY = 20.0


@dataclass(frozen=True)
class MarketDepth:
    """What the vault's own money does to one market's supply APY: its supply besides the vault (base units), the
    rate curve's elasticity there (`rate_elasticity`) and the vault's own position (base units) the recorded APY
    is the rate at: 0 where the data does not hold the vault (module docstring)."""

    supply: int
    elasticity: float = 1.0
    held: int = 0


def supply_usd(panel: DailyPanel) -> pd.DataFrame:
    """Each market's supply in USD (days × pools) from its available liquidity and utilization (module docstring)."""
    # Without a utilization the liquidity stands for the supply; all of it lent, that day's figures say nothing
    # of it (NaN), and the days before it stand.
    supplied = supplied_usd(panel.wide("tvl_usd"), panel.wide("utilization").fillna(0))
    return supplied.rolling(SUPPLY_MEDIAN_DAYS, min_periods=1).median()


def usd_in_asset(panel: DailyPanel, pools_meta: pd.DataFrame | None, asset_symbol: str | None) -> pd.DataFrame:
    """Units of the vault's asset a USD of each pool's figures is worth (days × pools): the pool's price in the
    asset over its price in USD (`strategy.data.prices.in_asset`), at par where either price is unknown."""
    price = panel.wide("price")
    return (in_asset(price, pools_meta, asset_symbol) / price).fillna(1.0)


def supply_in_asset(panel: DailyPanel, pools_meta: pd.DataFrame | None, asset_symbol: str | None,
                    unit: int) -> pd.DataFrame:
    """Each market's supply in base units of the vault's asset (`unit` per asset unit), days × pools."""
    return supply_usd(panel) * usd_in_asset(panel, pools_meta, asset_symbol) * unit


@dataclass(frozen=True)
class AssetUnit:
    """The vault's asset as a supply is counted in it: its symbol (its pools give its dollar price) and decimals."""

    symbol: str
    decimals: int

    @property
    def unit(self) -> int:
        return 10**self.decimals


def rate_elasticity(panel: DailyPanel) -> pd.DataFrame:
    """e of each market (days × pools): its rate curve's slope (`strategy.features.market.rate_curve_slope`, the
    last 90 days) times u over the APY, within [1, MAX_RATE_ELASTICITY]; 1 where the slope is not known. No
    rate model pays suppliers a higher APY for a lower utilization at a steady borrow rate, so e >= 1."""
    apy, utilization = panel.wide("apy"), panel.wide("utilization")
    with np.errstate(divide="ignore", invalid="ignore"):
        elasticity = rate_curve_slope(apy, utilization) * utilization / apy
    return elasticity.clip(lower=1.0, upper=MAX_RATE_ELASTICITY).fillna(1.0)


def depth_on(history: pd.DataFrame, pools_meta: pd.DataFrame | None, asset: AssetUnit,
             day: pd.Timestamp) -> dict[str, MarketDepth]:
    """The depth of each pool with a supply estimate on `day`, from the daily-aligned `history` up to it: the
    keeper's and a decision replay's. The supply from the last SUPPLY_MEDIAN_DAYS days, the elasticity from the
    whole history given (a rolling slope's last bits depend on where its series starts, and the backtest reads
    it from its whole history too). A pool whose supply is not known is left out."""
    known = history[history[TIMESTAMP] <= day]
    recent = known[known[TIMESTAMP] > day - pd.Timedelta(days=SUPPLY_MEDIAN_DAYS)]
    if recent.empty or recent[TIMESTAMP].max() != day:
        return {}
    supply = supply_in_asset(DailyPanel(recent), pools_meta, asset.symbol, asset.unit).iloc[-1]
    return depths(supply, rate_elasticity(DailyPanel(known)).iloc[-1])


def depths(supply: pd.Series, elasticity: pd.Series) -> dict[str, MarketDepth]:
    """One day's depths by pool, as `MarketForecast` takes them: a whole, positive, known supply (base units)."""
    return {str(pool): MarketDepth(int(value), float(elasticity.get(pool, 1.0)))
            for pool, value in supply.items() if np.isfinite(value) and value >= 1}


def besides_vault(depth: Mapping[str, MarketDepth], positions: Mapping[str, int]) -> dict[str, MarketDepth]:
    """`depth` read from data that holds the vault's `positions` (by market, base units, as read on chain): each
    market's supply less the vault's position there, at which its APY was recorded. A recorded supply no larger
    than the position (a day's figures from before the vault's deposit) cannot hold it, and stands as it is."""
    return {market: MarketDepth(known.supply - held, known.elasticity, held)
            if 0 < (held := positions.get(market, 0)) < known.supply else known
            for market, known in depth.items()}


def dilution(positions: np.ndarray, supply: np.ndarray, elasticity: np.ndarray | float = 1.0) -> np.ndarray:
    """max(0, 1 - e·x/(S + x)) of each market: the part of its supply rate a position x earns beside a supply S
    (both in the same unit) at the rate curve's elasticity e (S/(S + x) at e = 1, to the bit); 1 where the vault
    holds nothing there or the supply is not known."""
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.maximum(0.0, (supply + (1 - elasticity) * positions) / (supply + positions))
    return np.where((positions > 0) & ~np.isnan(supply), factor, 1.0)

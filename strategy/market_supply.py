"""How much a lending market's other suppliers hold: what the vault's own deposit dilutes. One estimate for the
keeper's and the backtest's decisions (`strategy.allocator`, `MarketForecast.supply`) and the backtest's realised
yields (`backtest.realised`), so the allocator plans with the supply the replay charges.

A lending market's borrowers pay their interest to every supplier, so supplying x beside a supply S lowers the
supply rate to rate·S/(S + x) at the same borrowing (`dilution`). The market's rate model also answers the lower
utilization with a lower borrow rate, which this leaves out, so the cost is at least this.

DeFiLlama's `tvlUsd` of a lending market is what is left to borrow, S·(1 - u): with the utilization u known the
supply is tvlUsd / (1 - u), else tvlUsd itself, less than the supply, so the share and the dilution are
overstated, never hidden. A day's two figures need not be of the same moment: on 2023-07-30, as the Curve
exploit drained it, Aave v3 USDC had 196k USD left at a utilization of 95.7 % (a supply of 4.6 M) beside 282 M
the day before and 224 M the day after. Supply moves slowly, so each day's is the median of the estimates of the
last SUPPLY_MEDIAN_DAYS days.

The recorded supply is taken as the others' (the vault's money is not in it): true of the replay, and of a keeper
whose markets are not the recorded pools (the devnet's). A vault inside the recorded markets counts itself twice,
so it overstates its own dilution and spreads more than it needs to, never less.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from strategy.data.daily import DailyPanel
from strategy.data.prices import in_asset
from strategy.data.schema import TIMESTAMP
from strategy.features.market import supplied_usd

SUPPLY_MEDIAN_DAYS = 7  # a day whose liquidity and utilization disagree is outvoted by the days before it


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


def supply_on(history: pd.DataFrame, pools_meta: pd.DataFrame | None, asset: AssetUnit,
              day: pd.Timestamp) -> dict[str, int]:
    """The supply of each pool with an estimate on `day` (base units), from the daily-aligned `history` up to it:
    the keeper's and a decision replay's, from the last SUPPLY_MEDIAN_DAYS days only. A pool whose supply is not
    known is left out."""
    recent = history[(history[TIMESTAMP] <= day) & (history[TIMESTAMP] > day - pd.Timedelta(days=SUPPLY_MEDIAN_DAYS))]
    if recent.empty:
        return {}
    panel = DailyPanel(recent)
    if panel.days[-1] != day:
        return {}
    return supplies(supply_in_asset(panel, pools_meta, asset.symbol, asset.unit).iloc[-1])


def supplies(row: pd.Series) -> dict[str, int]:
    """One day's supplies (base units, by pool) as `MarketForecast.supply` takes them: whole, positive, known."""
    return {str(pool): int(value) for pool, value in row.items() if np.isfinite(value) and value >= 1}


def dilution(positions: np.ndarray, supply: np.ndarray) -> np.ndarray:
    """S / (S + x) of each market: the part of its supply rate a position x earns beside a supply S (both in the
    same unit); 1 where the vault holds nothing there or the supply is not known."""
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = supply / (supply + positions)
    return np.where((positions > 0) & ~np.isnan(supply), factor, 1.0)

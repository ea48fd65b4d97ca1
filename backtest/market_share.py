"""How much of a market's supply the vault is, and what that costs it: the effect of its own money on a market.

A lending market's borrowers pay their interest to every supplier, so supplying x beside a supply S lowers the
supply rate to rate·S/(S + x) at the same borrowing (`dilution`; an APY of a few percent to about
APY·S/(S + x)). The replay earns that (`backtest.realised`, `[backtest] supply_dilution`); the market's rate
model also answers the lower utilization with a lower borrow rate, which this leaves out, so the cost is at
least this. The report says how large the share got (`largest_share`), so that a replay of more capital than
its markets could take is read as such.

DeFiLlama's `tvlUsd` of a lending market is what is left to borrow, S·(1 - u): with the utilization u known the
supply is tvlUsd / (1 - u), else tvlUsd itself, less than the supply, so the share and the dilution are
overstated, never hidden. A day's two figures need not be of the same moment: on 2023-07-30, as the Curve
exploit drained it, Aave v3 USDC had 196k USD left at a utilization of 95.7 % (a supply of 4.6 M) beside 282 M
the day before and 224 M the day after. Supply moves slowly, so each day's is the median of the estimates of the
last SUPPLY_MEDIAN_DAYS days.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from strategy.data.daily import DailyPanel
from strategy.data.schema import POOL, TIMESTAMP

SUPPLY_MEDIAN_DAYS = 7  # a day whose liquidity and utilization disagree is outvoted by the days before it
# At 1 % of a market's supply the vault's own deposit lowers its supply APY by 1 % of itself or more: said.
NOTABLE_SHARE = 0.01


@dataclass(frozen=True)
class MarketShare:
    """The largest part of one market's supply a strategy's position was, and where."""

    pool: str
    day: pd.Timestamp
    share: float  # x / (S + x): the position over the market's supply with it

    def as_dict(self, label: str) -> dict[str, object]:
        return {"pool": self.pool, "label": label, "day": self.day.date().isoformat(), "share": self.share}


def market_prices(history: pd.DataFrame) -> pd.DataFrame | None:
    """USD a unit of each market's asset (day × pool), None when the history has no prices."""
    if "price" not in history or history["price"].isna().all():
        return None
    return history.pivot(index=TIMESTAMP, columns=POOL, values="price")


def market_supply(history: pd.DataFrame) -> pd.DataFrame:
    """Each market's supply in USD (every day × pool) of a daily-aligned history (module docstring)."""
    return supply_of(DailyPanel(history))


def supply_of(panel: DailyPanel) -> pd.DataFrame:
    """Each market's supply in USD (days × pools) from its available liquidity and utilization (module docstring)."""
    available, utilization = panel.wide("tvl_usd"), panel.wide("utilization")
    # all of it lent: that day's figures say nothing of the supply (x / 0), and the days before it stand
    supplied = (available / (1 - utilization.fillna(0).clip(upper=1))).replace(np.inf, np.nan)
    return supplied.rolling(SUPPLY_MEDIAN_DAYS, min_periods=1).median()


def dilution(positions: np.ndarray, supply: np.ndarray) -> np.ndarray:
    """S / (S + x) of each market: the part of its supply rate a position x earns beside a supply S (both in the
    same unit); 1 where the vault holds nothing there or the supply is not known."""
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = supply / (supply + positions)
    return np.where((positions > 0) & ~np.isnan(supply), factor, 1.0)


def largest_share(positions: pd.DataFrame, supply: pd.DataFrame, prices: pd.DataFrame | None) -> MarketShare | None:
    """The largest x / (S + x) over the days and pools of `positions` (in the asset, day × pool); None when the
    strategy held nothing where the supply is known. `prices` (USD per asset, day × pool) values the positions
    as the supply is valued; without them the asset is a dollar."""
    held = positions.loc[:, (positions > 0).any()]
    if held.empty:
        return None
    if prices is not None:
        held = held * prices.reindex(index=held.index, columns=held.columns).fillna(1.0)
    known = supply.reindex(index=held.index, columns=held.columns)
    shares = (held / (known + held)).where(known.notna() & (held > 0)).to_numpy(dtype="float64")
    if np.isnan(shares).all():
        return None
    day, pool = (int(i) for i in np.unravel_index(np.nanargmax(shares), shares.shape))  # the first, if several
    return MarketShare(str(held.columns[pool]), pd.Timestamp(held.index[day]), float(shares[day, pool]))

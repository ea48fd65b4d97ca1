"""How much of a market's supply the vault would have been: the one effect of its own money a replay leaves out.

A replay earns each market's recorded APY on whatever it supplies, as if its deposits changed nothing. In a
lending market they do: the borrowers' interest is shared by every supplier, so supplying x beside a supply S
lowers the supply APY to about APY·S/(S + x) at the same borrowing, and further where the market's rate model
answers the lower utilization. The report says how large that share got, so that a replay of more capital than
its markets could take is not read as what the vault would have earned.

DeFiLlama's `tvlUsd` of a lending market is what is left to borrow, S·(1 - u): with the utilization u known the
supply is tvlUsd / (1 - u), else tvlUsd itself, less than the supply, so the share is overstated, never hidden.
A day's two figures need not be of the same moment: on 2023-07-30, as the Curve exploit drained it, Aave v3 USDC
had 196k USD left at a utilization of 95.7 % (a supply of 4.6 M) beside 282 M the day before and 224 M the day
after. Supply moves slowly, so each day's is the median of the last SUPPLY_MEDIAN_DAYS days' estimates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

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
    """Each market's supply in USD (day × pool) from its available liquidity and utilization (module docstring)."""
    available = history.pivot(index=TIMESTAMP, columns=POOL, values="tvl_usd")
    if "utilization" in history:
        utilization = history.pivot(index=TIMESTAMP, columns=POOL, values="utilization").reindex_like(available)
        # all of it lent: that day's figures say nothing of the supply (x / 0), and the days before it stand
        available = (available / (1 - utilization.fillna(0).clip(upper=1))).replace(np.inf, np.nan)
    return available.rolling(SUPPLY_MEDIAN_DAYS, min_periods=1).median()


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

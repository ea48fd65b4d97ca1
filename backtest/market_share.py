"""How much of a market's supply the vault was, and where: the report's reading of a replay whose capital its
markets could not take without moving their rates (`strategy.market_supply` says what that costs and how the
supply is estimated; `backtest.realised` charges it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from strategy.data.daily import DailyPanel
from strategy.data.schema import POOL, TIMESTAMP
from strategy.market_supply import supply_usd

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
    return supply_usd(DailyPanel(history))


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

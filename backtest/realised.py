"""What happened to a position in each pool from one day to the next, from the market data.

For the day ``d`` arriving (the position was held over (d-1, d]):

- yield: the position compounds daily at the APY the pool reports on day ``d`` (the rate over that day;
  `strategy.targets` likewise takes days t+1..t+H as what holding from t earns); no row that day earns 0;
- peg: in a stablecoin pool (per the pool metadata), the position is marked to the pool's price in the
  vault's asset (`strategy.data.prices.in_asset`, as the peg-loss target counts it), i.e. it moves by
  price(d) / price(d-1), so a depeg loses value and a recovery wins it back. A pool of the asset itself is
  priced 1: the vault counts in that token, so its depeg moves idle and every position alike (a USDC vault
  holding Aave's USDC market loses nothing to it in USDC);
- incident: on the day of an exploit or bad-debt report naming the pool's protocol, the position loses the
  reported loss pro rata (`backtest.incidents`).

Changes of a lending market's available liquidity (its DeFiLlama TVL) cost nothing: they are other
depositors' and borrowers' flows, and on real markets a "TVL run" haircut charged losses nobody had. What the
available liquidity does is bound what the vault can take out that day (`DayFactors.withdrawable`, in the
vault's state as a market's `maxWithdraw` is on chain): near 100 % utilization a position stays where it is,
and an incident then costs it what it costs every depositor left.

Prices of non-stablecoin pools are not applied: the vault's positions are in its asset, the yield is
what they earn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from backtest.incidents import incident_losses
from backtest.market import MarketData
from strategy.data.daily import DailyPanel
from strategy.data.prices import in_asset
from strategy.units import DAYS_PER_YEAR


class Held(NamedTuple):
    """One position carried through one day, in base units (floats): after the yield, the peg, an incident."""

    before: int
    earned: float
    marked: float
    after: float

    def add_pnl(self, pnl: dict[str, float], unit: int) -> None:
        """Add what each effect gave or took, in asset units, to `pnl` (keys of `PNL_EFFECTS`)."""
        pnl["yield"] += (self.earned - self.before) / unit
        pnl["peg"] += (self.marked - self.earned) / unit
        pnl["incident"] += (self.after - self.marked) / unit


class DayFactors(NamedTuple):
    """Per-pool multipliers of one day, in the universe's order."""

    growth: np.ndarray  # yield
    peg: np.ndarray  # price move of stablecoin pools
    loss: np.ndarray  # share lost to incidents
    liquidity: np.ndarray  # the market's available liquidity in asset units (inf: not known that day)

    def hold(self, index: int, position: int) -> Held:
        """Position `position` of the pool at `index` held through the day."""
        earned = position * float(self.growth[index])
        marked = earned * float(self.peg[index])
        return Held(position, earned, marked, marked * (1 - float(self.loss[index])))

    def withdrawable(self, positions: Sequence[int], unit: int) -> dict[int, int]:
        """The most a withdrawal may take from each pool (by index) whose available liquidity is below its
        position in `positions` (base units; `unit` base units per asset unit): what the vault's state says."""
        return {index: int(self.liquidity[index] * unit) for index, position in enumerate(positions)
                if self.liquidity[index] * unit < position}


PNL_EFFECTS = ("yield", "peg", "incident")


class RealisedMarket:
    """Daily yield, peg and incident factors of the universe's pools, precomputed on the daily grid."""

    def __init__(self, market: MarketData, pools: Sequence[str], asset_symbol: str | None = None):
        panel = DailyPanel(market.history)
        columns = pd.Index(list(pools))

        def wide(column: str) -> pd.DataFrame:
            return panel.wide(column).reindex(columns=columns)

        apy = wide("apy")
        # In the asset over the whole panel: the asset's price may come from pools outside the universe.
        price = in_asset(panel.wide("price"), market.pools, asset_symbol).reindex(columns=columns)
        self.pools = list(pools)
        self.growth = ((1 + apy / 100) ** (1 / DAYS_PER_YEAR)).fillna(1.0)
        stable = columns.isin(sorted(market.stablecoin_pools()))
        ratio = price / price.shift(1)
        self.peg = ratio.where(np.broadcast_to(stable, ratio.shape)).fillna(1.0)
        # Available liquidity in the asset: each pool's TVL in USD over the asset's USD price that day (its
        # price in the asset over its price in USD), at par where either price is unknown.
        self.liquidity = (wide("tvl_usd") * (price / wide("price")).fillna(1.0)).fillna(np.inf)
        losses = incident_losses(market.history, market.news, market.pools, self.pools)
        self.loss, self.unpriced_incidents = losses.share.reindex(self.growth.index, fill_value=0.0), losses.unpriced

    def on(self, day: pd.Timestamp) -> DayFactors:
        """The factors of `day` (all neutral if the data has no such day)."""
        if day not in self.growth.index:
            neutral = np.ones(len(self.pools))
            return DayFactors(neutral, neutral, np.zeros(len(self.pools)), np.full(len(self.pools), np.inf))
        return DayFactors(self.growth.loc[day].to_numpy(), self.peg.loc[day].to_numpy(), self.loss.loc[day].to_numpy(),
                          self.liquidity.loc[day].to_numpy())

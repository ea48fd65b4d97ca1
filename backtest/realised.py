"""What happened to a position in each pool from one day to the next, from the market data.

For the day ``d`` arriving (the position was held over (d-1, d]):

- yield: the position compounds daily at the APY the pool reports on day ``d`` (the rate over that day;
  `strategy.targets` likewise takes days t+1..t+H as what holding from t earns); no row that day earns 0;
- dilution: given each market's `depth` (its supply S and rate curve's elasticity e), the vault's own position
  x beside it earns the supply rate recorded without it times max(0, 1 - e·x/(S + x)) (`strategy.market_supply`),
  i.e. the day's growth to that power; x is the position held into the day;
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
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd

from backtest.incidents import incident_losses
from backtest.market import MarketData
from strategy.data.daily import DailyPanel
from strategy.data.prices import in_asset
from strategy.market_supply import dilution, usd_in_asset
from strategy.units import DAYS_PER_YEAR

if TYPE_CHECKING:
    from backtest.engine import Setup


class Held(NamedTuple):
    """One position carried through one day, in base units (floats): at the recorded APY, at the APY its own
    supply left it, after the peg, after an incident."""

    before: int
    recorded: float
    earned: float
    marked: float
    after: float

    def add_pnl(self, pnl: dict[str, float], unit: int) -> None:
        """Add what each effect gave or took, in asset units, to `pnl` (keys of `PNL_EFFECTS`)."""
        pnl["yield"] += (self.recorded - self.before) / unit
        pnl["dilution"] += (self.earned - self.recorded) / unit
        pnl["peg"] += (self.marked - self.earned) / unit
        pnl["incident"] += (self.after - self.marked) / unit


class DayFactors(NamedTuple):
    """Per-pool multipliers of one day, in the universe's order."""

    recorded_growth: np.ndarray  # yield at the recorded APY: what the market paid without the vault
    growth: np.ndarray  # yield at the APY the vault's position earned: the recorded one, diluted by it
    peg: np.ndarray  # price move of stablecoin pools
    loss: np.ndarray  # share lost to incidents
    liquidity: np.ndarray  # the market's available liquidity in asset units (inf: not known that day)

    def hold(self, index: int, position: int) -> Held:
        """Position `position` of the pool at `index` held through the day."""
        earned = position * float(self.growth[index])
        marked = earned * float(self.peg[index])
        return Held(position, position * float(self.recorded_growth[index]), earned, marked,
                    marked * (1 - float(self.loss[index])))

    def withdrawable(self, positions: Sequence[int], unit: int) -> dict[int, int]:
        """The most a withdrawal may take from each pool (by index) whose available liquidity is below its
        position in `positions` (base units; `unit` base units per asset unit): what the vault's state says."""
        return {index: int(self.liquidity[index] * unit) for index, position in enumerate(positions)
                if self.liquidity[index] * unit < position}


PNL_EFFECTS = ("yield", "dilution", "peg", "incident")


class RealisedMarket:
    """Daily yield, peg and incident factors of the universe's pools, precomputed on the daily grid.

    `depth`: each pool's supply besides the vault (in the base units of the positions `on` is given) and its
    rate curve's elasticity, days × pools, to dilute each pool's APY by them (module docstring); None: every
    position earns the recorded APY."""

    def __init__(self, market: MarketData, pools: Sequence[str], asset_symbol: str | None = None,
                 depth: tuple[pd.DataFrame, pd.DataFrame] | None = None):
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
        in_asset_units = usd_in_asset(panel, market.pools, asset_symbol).reindex(columns=columns, fill_value=1.0)
        self.liquidity = (wide("tvl_usd") * in_asset_units).fillna(np.inf)
        self.depth = None if depth is None else tuple(frame.reindex(index=self.growth.index, columns=columns)
                                                      for frame in depth)
        losses = incident_losses(market.history, market.news, market.pools, self.pools)
        self.loss, self.unpriced_incidents = losses.share.reindex(self.growth.index, fill_value=0.0), losses.unpriced

    @classmethod
    def of(cls, setup: Setup) -> RealisedMarket:
        """The realised market of a replay, diluted as its settings say (`[backtest] supply_dilution`)."""
        return cls(setup.market, setup.pools, setup.settings.asset_symbol, setup.market_depth)

    def on(self, day: pd.Timestamp, positions: Sequence[int] = ()) -> DayFactors:
        """The factors of `day` (all neutral if the data has no such day) for the positions held into it (base
        units, in the universe's order; none: nothing held)."""
        if day not in self.growth.index:
            neutral = np.ones(len(self.pools))
            return DayFactors(neutral, neutral, neutral, np.zeros(len(self.pools)), np.full(len(self.pools), np.inf))
        recorded = self.growth.loc[day].to_numpy()
        growth = recorded
        if self.depth is not None and any(positions):
            # the supply rate times 1 - e·x/(S + x): the recorded growth to that power (g ** 1.0 is g, to the bit)
            supply, elasticity = (frame.loc[day].to_numpy() for frame in self.depth)
            growth = recorded ** dilution(np.asarray(positions, dtype="float64"), supply, np.nan_to_num(elasticity,
                                                                                                         nan=1.0))
        return DayFactors(recorded, growth, self.peg.loc[day].to_numpy(), self.loss.loc[day].to_numpy(),
                          self.liquidity.loc[day].to_numpy())

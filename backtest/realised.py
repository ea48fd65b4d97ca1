"""What happened to a position in each pool from one day to the next, from the market data.

For the day ``d`` arriving (the position was held over (d-1, d]):

- yield: the position compounds daily at the APY the pool reports on day ``d`` (the rate over that day;
  `strategy.targets` likewise takes days t+1..t+H as what holding from t earns); no row that day earns 0;
- peg: in a stablecoin pool (per the pool metadata) the position is marked to the pool's price,
  i.e. it moves by price(d) / price(d-1), so a depeg loses value and a recovery wins it back;
- TVL run: on the first day of a TVL collapse, as `strategy.targets` defines it (TVL below
  (1 - tvl_run_fraction) × its maximum over the H days before), the position loses `tvl_run_haircut` of
  its value (the share of funds that could not be withdrawn in time, or were lost).

Prices of non-stablecoin pools are not applied: the vault's positions are in its asset, the yield is
what they earn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from backtest.market import MarketData
from strategy.allocator import DAYS_PER_YEAR
from strategy.data.daily import DailyPanel
from strategy.targets import TargetParams


class Held(NamedTuple):
    """One position carried through one day, in base units (floats): after the yield, the peg, the TVL run."""

    before: int
    earned: float
    marked: float
    after: float

    def add_pnl(self, pnl: dict[str, float], unit: int) -> None:
        """Add what each effect gave or took, in asset units, to `pnl` (keys yield, peg, tvl_run)."""
        pnl["yield"] += (self.earned - self.before) / unit
        pnl["peg"] += (self.marked - self.earned) / unit
        pnl["tvl_run"] += (self.after - self.marked) / unit


class DayFactors(NamedTuple):
    """Per-pool multipliers of one day, in the universe's order."""

    growth: np.ndarray  # yield
    peg: np.ndarray  # price move of stablecoin pools
    run: np.ndarray  # True on the first day of a TVL run

    def hold(self, index: int, position: int, haircut: float) -> Held:
        """Position `position` of the pool at `index` held through the day (a run loses `haircut` of it)."""
        earned = position * float(self.growth[index])
        marked = earned * float(self.peg[index])
        return Held(position, earned, marked, marked * (1 - haircut) if self.run[index] else marked)


class RealisedMarket:
    """Daily yield, peg and TVL-run factors of the universe's pools, precomputed on the daily grid."""

    def __init__(self, market: MarketData, pools: Sequence[str], params: TargetParams):
        panel = DailyPanel(market.history)
        columns = pd.Index(list(pools))

        def wide(column: str) -> pd.DataFrame:
            return panel.wide(column).reindex(columns=columns)

        apy, price, tvl = wide("apy"), wide("price"), wide("tvl_usd")
        self.pools = list(pools)
        self.growth = ((1 + apy / 100) ** (1 / DAYS_PER_YEAR)).fillna(1.0)
        stable = columns.isin(sorted(market.stablecoin_pools()))
        ratio = price / price.shift(1)
        self.peg = ratio.where(np.broadcast_to(stable, ratio.shape)).fillna(1.0)
        earlier_peak = tvl.shift(1).rolling(params.horizon_days, min_periods=1).max()
        running = tvl < (1 - params.tvl_run_fraction) * earlier_peak
        self.run = running & ~running.shift(1, fill_value=False)

    def on(self, day: pd.Timestamp) -> DayFactors:
        """The factors of `day` (all neutral if the data has no such day)."""
        if day not in self.growth.index:
            neutral = np.ones(len(self.pools))
            return DayFactors(neutral, neutral, np.zeros(len(self.pools), dtype=bool))
        return DayFactors(
            self.growth.loc[day].to_numpy(), self.peg.loc[day].to_numpy(), self.run.loc[day].to_numpy(dtype=bool)
        )

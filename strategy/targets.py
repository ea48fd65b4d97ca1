"""Training targets: forward mean APY and forward adverse-event flags, on the daily grid.

Definitions, for a pool at day t with horizon H = ``TargetParams.horizon_days`` (all on a daily-aligned
history, see `strategy.data.align_to_daily`):

- The horizon is complete when the pool has a row on every day t+1, ..., t+H. Otherwise every target of
  the row is NaN (never computed from part of the horizon).
- ``fwd_apy_mean`` = mean of apy over days t+1 ... t+H, i.e. over (t, t+H] (percent).
- ``event_apy_collapse`` = 1 when apy(t) >= ``collapse_min_apy`` and min apy over (t, t+H] is below
  ``collapse_fraction`` × apy(t), else 0. (Below ``collapse_min_apy`` percent a fall is not a collapse.)
- ``event_tvl_run`` = 1 when min tvl_usd over (t, t+H] is below (1 - ``tvl_run_fraction``) × tvl_usd(t), else 0.
- ``event_peg_loss`` = for stablecoin pools, 1 when max |price - 1| over (t, t+H] exceeds ``peg_tolerance``,
  else 0 (assumes USD pegs); NaN when a price of the horizon is missing (or no price column) or the pool's
  stablecoin flag is unknown (no ``pools_meta`` row); 0 for non-stablecoin pools.
- ``adverse_event`` = 1 when any of the three events is 1, else 0: an unobservable peg loss (NaN) counts
  as not seen, so histories without prices still get this target from APY and TVL.

Flags are floats (0.0 / 1.0 / NaN) so that LightGBM takes them as labels directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from strategy.data.daily import DailyPanel
from strategy.data.schema import POOL

TARGET_COLUMNS = ("fwd_apy_mean", "event_apy_collapse", "event_tvl_run", "event_peg_loss", "adverse_event")


@dataclass(frozen=True)
class TargetParams:
    """Horizon and event thresholds; the module docstring defines how each is used."""

    horizon_days: int = 7  # H: days ahead, the window is (t, t+H]
    collapse_fraction: float = 0.5  # APY collapse: forward min apy < 50 % of apy(t)
    collapse_min_apy: float = 1.0  # ... only counted from apy(t) >= 1 %
    tvl_run_fraction: float = 0.3  # TVL run: forward min TVL < (1 - 30 %) of TVL(t)
    peg_tolerance: float = 0.02  # peg loss: |price - 1| > 0.02 at some point of the horizon

    def __post_init__(self) -> None:
        if self.horizon_days < 1:
            raise ValueError(f"horizon_days must be >= 1, got {self.horizon_days}")
        for name in ("collapse_fraction", "tvl_run_fraction"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"{name} must be in (0, 1), got {getattr(self, name)}")
        if self.peg_tolerance <= 0:
            raise ValueError(f"peg_tolerance must be > 0, got {self.peg_tolerance}")


def build_targets(
    history: pd.DataFrame, pools_meta: pd.DataFrame | None = None, params: TargetParams = TargetParams()
) -> pd.DataFrame:
    """Targets for every row of a daily-aligned canonical ``history``, indexed by (timestamp, pool), sorted."""
    panel = DailyPanel(history)
    horizon = params.horizon_days
    apy, tvl, price = panel.wide("apy"), panel.wide("tvl_usd"), panel.wide("price")

    def ahead(frame: pd.DataFrame, statistic: str) -> pd.DataFrame:
        """``statistic`` of days t+1 ... t+H at row t; NaN unless all H values are there."""
        window = frame.shift(-1).iloc[::-1].rolling(horizon, min_periods=horizon)
        return getattr(window, statistic)().iloc[::-1]

    fwd_apy_mean = ahead(apy, "mean")
    complete = fwd_apy_mean.notna()
    collapse = (apy >= params.collapse_min_apy) & (ahead(apy, "min") < params.collapse_fraction * apy)
    run = ahead(tvl, "min") < (1 - params.tvl_run_fraction) * tvl
    stable = panel.per_pool(pools_meta.set_index(POOL)["stablecoin"] if pools_meta is not None else None)
    worst_deviation = ahead((price - 1).abs(), "max")
    peg = pd.DataFrame(
        np.select([stable == 0, (stable == 1) & worst_deviation.notna()],
                  [0.0, (worst_deviation > params.peg_tolerance).astype(float)], np.nan),
        index=panel.days, columns=panel.pools,
    )
    adverse = collapse | run | (peg == 1)
    targets = {
        "fwd_apy_mean": fwd_apy_mean,
        "event_apy_collapse": collapse.astype(float).where(complete),
        "event_tvl_run": run.astype(float).where(complete),
        "event_peg_loss": peg.where(complete),
        "adverse_event": adverse.astype(float).where(complete),
    }
    return panel.long(targets)

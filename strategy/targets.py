"""Training targets: forward mean APY and forward loss-event flags, on the daily grid.

An event is something that costs a depositor of an ERC-4626 lending market money, not a change in how much
others have deposited: the available liquidity (DeFiLlama's `tvlUsd` of a lending market) swings with
borrowing every day, and on the real markets in ../shared/data a "30 % TVL drop in a week" flagged 16-29 %
of rows although no depositor lost anything. Definitions, for a pool at day t with horizon
H = ``TargetParams.horizon_days`` (all on a daily-aligned history, see `strategy.data.align_to_daily`):

- The horizon is complete when the pool has a row on every day t+1, ..., t+H. Otherwise every target of
  the row is NaN (never computed from part of the horizon).
- ``fwd_apy_mean`` = mean of apy over days t+1 ... t+H, i.e. over (t, t+H] (percent).
- ``event_peg_loss`` = for stablecoin pools, 1 when the pool's price in the vault's asset
  (``TargetParams.asset_symbol``, `strategy.data.prices.in_asset`) falls on some day of (t, t+H] more than
  ``peg_tolerance`` below its price at t: the position is worth that much less in what the vault counts in.
  A depeg of the asset itself is no loss (its pools are priced 1: it moves idle cash and every position
  alike), nor is a rise. NaN when a price of t or of the horizon is missing (or no price column) or the
  pool's stablecoin flag is unknown (no ``pools_meta`` row); 0 for non-stablecoin pools.
- ``event_illiquid`` = 1 when utilization reaches ``illiquid_utilization`` on a day of (t, t+H]: almost
  everything supplied is lent out, so a position cannot be withdrawn (the vault is stuck in the market
  while the risk lasts); NaN when a utilization of the horizon is missing.
- ``event_incident`` = 1 when a news item of (t, t+H] reports an incident (`strategy.features.news.
  INCIDENT_PATTERN`: exploit, hack, drained, bad debt, pause...) and names the pool's protocol in its title
  (`strategy.features.news.incident_matches`); 0 without such an item, NaN without news or pool metadata.
- ``adverse_event`` = 1 when any of the three events is 1, else 0: an unobservable event (NaN) counts as
  not seen, so histories without prices, utilization or news still get this target from what they have.
- ``worst_fall`` = 1 - the lowest price in the vault's asset over (t, t+H] / the price at t, 0 when it only
  rose: the most a position entered at t lost in the horizon, in the asset. Not an event: averaged over the
  event rows it is what an event costs (`mean_event_loss`). NaN unless all H + 1 prices are known.

Flags are floats (0.0 / 1.0 / NaN) so that LightGBM takes them as labels directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from strategy.data.daily import DailyPanel
from strategy.data.prices import in_asset
from strategy.data.schema import POOL

FWD_APY_MEAN = "fwd_apy_mean"
EVENT_COLUMNS = ("event_peg_loss", "event_illiquid", "event_incident")
WORST_FALL = "worst_fall"


@dataclass(frozen=True)
class TargetParams:
    """Horizon and event thresholds; the module docstring defines how each is used."""

    horizon_days: int = 7  # H: days ahead, the window is (t, t+H]
    peg_tolerance: float = 0.02  # peg loss: the price in the asset falls > 2 % below its price at t
    # Illiquid: utilization >= 98 %, where a lending market's rate model is far up its steep slope and the
    # available liquidity is 2 % of supply (on the real Aave and Compound v3 USDC markets: 39 of 1,671 days).
    illiquid_utilization: float = 0.98
    # The vault's asset: prices count in it (None: in USD, as before the vault's asset was known).
    asset_symbol: str | None = None

    def __post_init__(self) -> None:
        if self.horizon_days < 1:
            raise ValueError(f"horizon_days must be >= 1, got {self.horizon_days}")
        if self.peg_tolerance <= 0:
            raise ValueError(f"peg_tolerance must be > 0, got {self.peg_tolerance}")
        if not 0 < self.illiquid_utilization <= 1:
            raise ValueError(f"illiquid_utilization must be in (0, 1], got {self.illiquid_utilization}")


def build_targets(
    history: pd.DataFrame, pools_meta: pd.DataFrame | None = None, params: TargetParams = TargetParams(),
    news: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Targets for every row of a daily-aligned canonical ``history``, indexed by (timestamp, pool), sorted."""
    from strategy.features.news import incident_days

    panel = DailyPanel(history)
    horizon = params.horizon_days
    apy, price, utilization = panel.wide("apy"), panel.wide("price"), panel.wide("utilization")

    def ahead(frame: pd.DataFrame, statistic: str) -> pd.DataFrame:
        return _ahead(frame, horizon, statistic)

    fwd_apy_mean = _forward_apy_mean(apy, horizon)
    complete = fwd_apy_mean.notna()
    stable = panel.per_pool(pools_meta.set_index(POOL)["stablecoin"] if pools_meta is not None else None)
    worst_fall = _worst_fall(in_asset(price, pools_meta, params.asset_symbol), horizon)
    peg = pd.DataFrame(
        np.select([stable == 0, (stable == 1) & worst_fall.notna()],
                  [0.0, (worst_fall > params.peg_tolerance).astype(float)], np.nan),
        index=panel.days, columns=panel.pools,
    )
    highest = ahead(utilization, "max")
    illiquid = (highest >= params.illiquid_utilization).astype(float).where(highest.notna())
    if news is None or pools_meta is None:
        incident = pd.DataFrame(np.nan, index=panel.days, columns=panel.pools)
    else:
        incident = ahead(incident_days(panel, news, pools_meta).astype(float), "max")
    adverse = (peg == 1) | (illiquid == 1) | (incident == 1)
    targets = {
        FWD_APY_MEAN: fwd_apy_mean,
        "event_peg_loss": peg.where(complete),
        "event_illiquid": illiquid.where(complete),
        "event_incident": incident.where(complete),
        "adverse_event": adverse.astype(float).where(complete),
        WORST_FALL: worst_fall,
    }
    return panel.long(targets)


def forward_apy_mean(history: pd.DataFrame, params: TargetParams = TargetParams()) -> pd.Series:
    """`build_targets`' ``fwd_apy_mean`` alone, the same values on the same index: what scoring a yield forecast
    reads (the promotion gate, every day of a replay), at a third of the cost of every target."""
    panel = DailyPanel(history)
    return panel.long({FWD_APY_MEAN: _forward_apy_mean(panel.wide("apy"), params.horizon_days)})[FWD_APY_MEAN]


def loss_given_event(history: pd.DataFrame, pools_meta: pd.DataFrame | None = None,
                     params: TargetParams = TargetParams(), news: pd.DataFrame | None = None) -> float | None:
    """What an adverse event costs on `history`: `mean_event_loss` of its targets."""
    return mean_event_loss(build_targets(history, pools_meta, params, news))


def mean_event_loss(targets: pd.DataFrame) -> float | None:
    """The mean ``worst_fall`` over the rows of `targets` whose ``adverse_event`` is 1; None when no such row
    has a known price path.

    The allocator weighs each event probability by this (an illiquid spell or an incident without priced
    losses costs no principal, a depeg costs its depth until it recovers): a model measures it on the rows it
    was trained on (`strategy.models.artifact.ArtifactMetadata.loss_given_event`).
    """
    losses = targets.loc[targets["adverse_event"] == 1, WORST_FALL].dropna()
    return float(losses.mean()) if len(losses) else None


def _forward_apy_mean(apy: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """The mean APY over (t, t+H] at row t; NaN unless every day of it has a row."""
    return _ahead(apy, horizon, "mean")


def _worst_fall(price: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """1 - min price over (t, t+H] / price(t) at row t, 0 when it only rose; NaN unless all H + 1 are known."""
    return (1 - _ahead(price, horizon, "min") / price).clip(lower=0)


def _ahead(frame: pd.DataFrame, horizon: int, statistic: str) -> pd.DataFrame:
    """``statistic`` of days t+1 ... t+H at row t; NaN unless all H values are there."""
    window = frame.shift(-1).iloc[::-1].rolling(horizon, min_periods=horizon)
    return getattr(window, statistic)().iloc[::-1]

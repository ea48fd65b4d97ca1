"""Walk-forward, out-of-sample evaluation of the models against naive baselines.

The test period is the last `test_days` labelled days. It is cut into folds of `fold_days` (default
`retrain_every_days`, as the backtest retrains); each fold is forecast by a model trained at the fold's
first day (`train_artifact(..., train_end=fold start)`: it sees nothing after that day, and no row whose
target reaches into the fold), so every test forecast is out of sample, as it would have been made live.
Features are point-in-time, so they are computed once on the whole history, for the test rows and for every
fold's training.

Baselines, computed on the same test rows:
- yield: persistence, the trailing 7-day mean APY (`strategy.models.dataset.persistence_apy`) as the
  forecast of the forward mean APY; the model's MAE is compared with its MAE.
- risk: the event rate of the fold model's training rows as a constant probability (Brier score of
  "climatology"); and an AUC of 0.5 (no skill).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from strategy.config import ModelSettings
from strategy.data.schema import POOL, TIMESTAMP
from strategy.models import metrics
from strategy.models.dataset import (
    BASELINE,
    RISK_TARGET,
    YIELD_TARGET,
    labelled_targets,
    model_features,
)
from strategy.models.errors import ModelError
from strategy.models.training import train_artifact

# The per-row table `score` reads: outcome, baseline and model forecasts of each test row.
PREDICTION_COLUMNS = ("actual", "baseline", "apy_pred", "apy_q10", "event", "p_event", "p_base_rate", "fold")


@dataclass(frozen=True)
class Evaluation:
    """Out-of-sample scores of the test rows (see the module docstring)."""

    test_start: pd.Timestamp
    test_end: pd.Timestamp
    folds: int
    rows: int
    pools: int
    mae_model: float
    mae_baseline: float
    auc: float | None  # None when the test period has no events (or only events)
    brier: float
    brier_base_rate: float
    event_rate: float
    q10_below_share: float  # share of outcomes below the 10 % quantile forecast (calibrated: about 0.1)
    reliability: list[metrics.ReliabilityBin]

    @property
    def beats_baseline(self) -> bool:
        return self.mae_model < self.mae_baseline


def walk_forward(history: pd.DataFrame, news: pd.DataFrame | None, pools_meta: pd.DataFrame | None,
                 settings: ModelSettings, *, test_days: int, fold_days: int | None = None
                 ) -> tuple[Evaluation, pd.DataFrame]:
    """Scores over the last `test_days` labelled days of a daily-aligned history, and the per-row table."""
    if test_days < 1:
        raise ModelError(f"the test period must be at least one day, got {test_days}")
    fold_days = fold_days or settings.retrain_every_days
    features = model_features(history, news, pools_meta)
    dataset = features.join(labelled_targets(history, news, pools_meta, settings.target_params()))
    labelled = dataset[dataset[YIELD_TARGET].notna() & dataset[RISK_TARGET].notna()]
    days = labelled.index.get_level_values(TIMESTAMP).unique().sort_values()
    if len(days) <= test_days:
        raise ModelError(f"the history has {len(days)} labelled days: too few for a test period of {test_days} "
                         "days and training before it")
    test_days_index = days[-test_days:]
    parts = []
    for fold, start in enumerate(test_days_index[::fold_days]):
        in_fold = test_days_index[(test_days_index >= start) & (test_days_index < start + pd.Timedelta(days=fold_days))]
        artifact = train_artifact(history, news, pools_meta, start, settings, features=features)
        rows = labelled[labelled.index.get_level_values(TIMESTAMP).isin(in_fold)]
        predicted = artifact.predict(rows)
        parts.append(pd.DataFrame({
            "actual": rows[YIELD_TARGET],
            "baseline": rows[BASELINE],
            "apy_pred": predicted["apy_pred"],
            "apy_q10": predicted["apy_q10"],
            "event": rows[RISK_TARGET],
            "p_event": predicted["p_event"],
            "p_base_rate": artifact.metadata.event_rate,
            "fold": fold,
        }))
    table = pd.concat(parts)
    return score(table, test_days_index[0], test_days_index[-1]), table


def score(table: pd.DataFrame, test_start: pd.Timestamp, test_end: pd.Timestamp) -> Evaluation:
    """The scores of a table with `PREDICTION_COLUMNS`, indexed by (timestamp, pool)."""
    return Evaluation(
        test_start=test_start,
        test_end=test_end,
        folds=int(table["fold"].nunique()),
        rows=len(table),
        pools=table.index.get_level_values(POOL).nunique(),
        mae_model=metrics.mae(table["apy_pred"].to_numpy(), table["actual"].to_numpy()),
        mae_baseline=metrics.mae(table["baseline"].to_numpy(), table["actual"].to_numpy()),
        auc=metrics.auc(table["p_event"].to_numpy(), table["event"].to_numpy()),
        brier=metrics.brier(table["p_event"].to_numpy(), table["event"].to_numpy()),
        brier_base_rate=metrics.brier(table["p_base_rate"].to_numpy(), table["event"].to_numpy()),
        event_rate=float(table["event"].mean()),
        q10_below_share=metrics.below_share(table["apy_q10"].to_numpy(), table["actual"].to_numpy()),
        reliability=metrics.reliability(table["p_event"].to_numpy(), table["event"].to_numpy()),
    )

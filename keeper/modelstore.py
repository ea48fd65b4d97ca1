"""The keeper's model artifact: loaded from `model.artifact_dir`, or trained once at start when it is missing.

Training at start (`model.train_if_missing = true`, the devnet default) fits `strategy.models.train_artifact`
on the /chart history of the markets' pools and `model.extra_pools` with their tokens' coin prices joined
(`sources.inputs.with_token_prices`), the configured news and the pools' metadata, with every target horizon ending before today (UTC midnight), then saves the artifact where the
next start finds it. A directory that holds files but no valid artifact is an error, never overwritten.
"""

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pandas as pd

from keeper.config import ModelPlacement
from strategy.config import ModelSettings
from strategy.data import align_to_daily
from strategy.models import ModelArtifact, ModelError, train_artifact

log = logging.getLogger(__name__)

TrainingData = tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame]  # history, news, pools metadata


def load_or_train(placement: ModelPlacement, settings: ModelSettings,
                  training_data: Callable[[], TrainingData], now: datetime) -> ModelArtifact:
    """The artifact in `placement.artifact_dir`, or one trained from `training_data()` (see the docstring)."""
    directory = Path(placement.artifact_dir)
    if _holds_files(directory):
        artifact = ModelArtifact.load(directory)
        log.info("model %s loaded from %s", artifact.content_hash, directory)
        return artifact
    if not placement.train_if_missing:
        raise ModelError(f"no model artifact in {directory} (model.artifact_dir); train one with `vaultbot model "
                         f"train`, or set model.train_if_missing = true to train at start")
    history, news, pools_meta = training_data()
    train_end = pd.Timestamp(now).floor("D")
    log.info("no model in %s: training on %d rows of %d pools up to %s", directory, len(history),
             history["pool"].nunique(), train_end.date())
    artifact = train_artifact(align_to_daily(history), news, pools_meta, train_end=train_end, settings=settings)
    artifact.save(directory)
    log.info("model %s trained and saved to %s", artifact.content_hash, directory)
    return artifact


def _holds_files(directory: Path) -> bool:
    return directory.is_dir() and any(directory.iterdir())

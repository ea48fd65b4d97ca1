"""A trained model artifact: three LightGBM boosters and the metadata that says what they were trained on.

- ``yield``: forward mean APY over the horizon, as a residual over the persistence baseline
  (`strategy.models.dataset.BASELINE`); ``apy_pred`` = baseline + prediction.
- ``risk``: probability of an adverse event within the horizon (``p_event``), through the metadata's
  `strategy.models.calibration.RiskCalibration` when it has one.
- ``yield_q10``: the 10 % quantile of the forward mean APY, the same way (``apy_q10``).

On disk (`save`/`load`) an artifact is a directory of ``artifact.json`` (metadata and content hash) and one
LightGBM model text file per booster. ``content_hash`` is "0x" + sha256 of the canonical metadata JSON and
the model texts, so it is the same after a save/load round trip and `load` refuses files that changed. The
settings of `strategy.config.PROMOTION_SETTINGS` say how models are promoted, not how this one was trained:
they are left out of both (a loaded artifact has their defaults).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Final, Literal

import lightgbm as lgb
import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError

from strategy.config import PROMOTION_SETTINGS, ModelSettings
from strategy.models.calibration import RiskCalibration
from strategy.models.dataset import BASELINE
from strategy.models.errors import ModelError
from strategy.safe_json import loads

YIELD, RISK, YIELD_Q10 = "yield", "risk", "yield_q10"
MODELS = (YIELD, RISK, YIELD_Q10)
QUANTILE = 0.1  # of YIELD_Q10
PREDICTIONS = ("apy_pred", "p_event", "apy_q10")
ARTIFACT_FILE = "artifact.json"
FORMAT: Final = 1
# Inference on one thread: the same bits on every run and machine (decision bundles re-run it), and no OpenMP
# team spinning up for a few rows, which stalls a busy machine for tens of milliseconds a call.
PREDICT_THREADS = 1


class ArtifactMetadata(BaseModel):
    """What an artifact was trained on and how; part of its content hash."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal[1] = FORMAT
    features: list[str]  # columns of `strategy.models.dataset.model_features`, in the boosters' order
    train_start: datetime  # first and last day of the labelled rows used (targets end <= train_end - embargo)
    last_label_day: datetime
    train_end: datetime  # nothing after this was used
    rows: int  # labelled rows trained on (the final fit)
    event_rate: float  # share of those rows with an adverse event
    # What an event cost on those rows (`strategy.targets.mean_event_loss`): the allocator weighs this model's
    # p_event by it. None: no event row with a known price path (and every artifact saved before it was kept).
    loss_given_event: float | None = None
    pools: int
    data_hash: str  # sha256 of those rows (features and targets)
    settings: ModelSettings
    best_iterations: dict[str, int]  # boosting rounds per model, picked by early stopping
    validation: dict[str, float | None]  # metrics on the time-ordered validation split (see training)
    lightgbm_version: str
    risk_calibration: RiskCalibration | None = None  # applied to the risk booster's output; None: raw


def model_file(name: str) -> str:
    return f"{name}.txt"


@dataclass(frozen=True)
class ModelArtifact:
    """Boosters (as LightGBM model text, by name in `MODELS`) and their metadata."""

    model_texts: Mapping[str, str]
    metadata: ArtifactMetadata
    _boosters: dict[str, lgb.Booster] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        missing = [name for name in MODELS if name not in self.model_texts]
        if missing:
            raise ModelError(f"model artifact lacks the {', '.join(missing)} model(s)")
        boosters = {}
        for name in MODELS:
            try:
                boosters[name] = lgb.Booster(model_str=self.model_texts[name])
            except lgb.basic.LightGBMError as error:
                raise ModelError(f"the {name} model is not a valid LightGBM model: {error}") from None
            if boosters[name].feature_name() != self.metadata.features:
                raise ModelError(f"the {name} model's features differ from the artifact's feature list")
        object.__setattr__(self, "_boosters", boosters)

    @property
    def features(self) -> list[str]:
        return self.metadata.features

    @property
    def settings(self) -> ModelSettings:
        return self.metadata.settings

    @cached_property
    def content_hash(self) -> str:
        return content_hash(self.metadata, self.model_texts)

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        """``apy_pred``, ``p_event`` and ``apy_q10`` for every row of a `model_features` table (same index)."""
        matrix = _matrix(features, self.features)
        predictions = {
            "apy_pred": _over_baseline(self._boosters[YIELD], matrix, features),
            "p_event": np.clip(self._risk(matrix), 0.0, 1.0),
            "apy_q10": _over_baseline(self._boosters[YIELD_Q10], matrix, features),
        }
        return pd.DataFrame(predictions, index=features.index)

    def apy_pred(self, features: pd.DataFrame) -> np.ndarray:
        """``apy_pred`` alone, for every row of a `model_features` table."""
        return _over_baseline(self._boosters[YIELD], _matrix(features, self.features), features)

    def _risk(self, matrix: np.ndarray) -> np.ndarray:
        # a dense matrix in, an array out (sparse results come only of sparse input); asarray returns it as is
        raw = np.asarray(self._boosters[RISK].predict(matrix, num_threads=PREDICT_THREADS))
        calibration = self.metadata.risk_calibration
        return raw if calibration is None else calibration.apply(raw)

    def importances(self, kind: Literal["gain", "split"] = "gain") -> pd.DataFrame:
        """Feature importance of each booster (columns `MODELS`), features as rows, by yield gain first."""
        table = pd.DataFrame(
            {name: self._boosters[name].feature_importance(importance_type=kind) for name in MODELS},
            index=pd.Index(self.features, name="feature"),
        )
        return table.sort_values(list(MODELS), ascending=False)

    def save(self, directory: str | Path) -> Path:
        """Write the artifact into `directory` (created if needed); returns it."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for name in MODELS:
            (directory / model_file(name)).write_text(self.model_texts[name], encoding="utf-8")
        document = {"content_hash": self.content_hash, "metadata": _metadata_json(self.metadata)}
        (directory / ARTIFACT_FILE).write_text(json.dumps(document, indent=1, sort_keys=True), encoding="utf-8")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> ModelArtifact:
        """The artifact saved in `directory`; `ModelError` naming the directory if it is missing or corrupt."""
        directory = Path(directory)
        try:
            return cls._load(directory)
        except ModelError as error:
            raise ModelError(f"model artifact {directory}: {error}") from None

    @classmethod
    def _load(cls, directory: Path) -> ModelArtifact:
        if not (directory / ARTIFACT_FILE).is_file():
            raise ModelError(f"no {ARTIFACT_FILE} (not a saved model; train one with `vaultbot model train`)")
        try:
            document = loads((directory / ARTIFACT_FILE).read_text(encoding="utf-8"))
            metadata = ArtifactMetadata.model_validate(document["metadata"])
            expected = document["content_hash"]
            texts = {name: (directory / model_file(name)).read_text(encoding="utf-8") for name in MODELS}
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
            reason = error.errors()[0]["msg"] if isinstance(error, ValidationError) else error
            raise ModelError(f"unreadable or corrupt: {reason}") from None
        actual = content_hash(metadata, texts)
        if actual != expected:
            raise ModelError(f"corrupt: its files hash to {actual}, not the saved content hash {expected}")
        return cls(texts, metadata)


@dataclass(frozen=True)
class YieldModel:
    """The yield booster alone, as LightGBM model text: ``apy_pred`` as a `ModelArtifact` with it gives."""

    model_text: str
    features: list[str]
    _booster: lgb.Booster = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_booster", lgb.Booster(model_str=self.model_text))

    def apy_pred(self, features: pd.DataFrame) -> np.ndarray:
        return _over_baseline(self._booster, _matrix(features, self.features), features)


def _matrix(features: pd.DataFrame, names: list[str]) -> np.ndarray:
    missing = [name for name in names if name not in features]
    if missing:
        raise ModelError(f"features missing for the model: {', '.join(missing[:5])}"
                         f"{' ...' if len(missing) > 5 else ''} (it was trained on {len(names)})")
    return features[names].to_numpy(dtype="float64")


def _over_baseline(booster: lgb.Booster, matrix: np.ndarray, features: pd.DataFrame) -> np.ndarray:
    """A yield booster's forecast: the persistence baseline plus the residual it learnt."""
    return features[BASELINE].to_numpy(dtype="float64") + booster.predict(matrix, num_threads=PREDICT_THREADS)


def _metadata_json(metadata: ArtifactMetadata) -> dict[str, Any]:
    data = metadata.model_dump(mode="json", exclude={"settings": set(PROMOTION_SETTINGS)})
    if data["settings"]["asset_symbol"] is None:  # trained in USD, as every artifact before the setting was
        del data["settings"]["asset_symbol"]
    if data["loss_given_event"] is None:  # unmeasured, as every artifact before it was kept
        del data["loss_given_event"]
    return data


def content_hash(metadata: ArtifactMetadata, model_texts: Mapping[str, str]) -> str:
    """"0x" + sha256 of the canonical metadata JSON and each model text (length-prefixed, in `MODELS` order)."""
    digest = hashlib.sha256()
    for part in (json.dumps(_metadata_json(metadata), sort_keys=True, separators=(",", ":")),
                 *(model_texts[name] for name in MODELS)):
        data = part.encode("utf-8")
        digest.update(f"{len(data)}:".encode())
        digest.update(data)
    return "0x" + digest.hexdigest()

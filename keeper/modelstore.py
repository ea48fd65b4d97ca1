"""The keeper's model store in `model.artifact_dir`: every model it trained, by content hash, and the promotion
policy's state (`strategy.models.promotion.PolicyState`) that names the champion.

Layout:
- `<content hash>/`: a saved `ModelArtifact` for each challenger trained, promoted or not, so that any
  decision's `model_hash` can be looked up; never rewritten, as the name is the content;
- `champion.json`: the state, `{"champion": hash or null, "last_trained": day or null, "fallback": why the
  trailing-best rule decides, or null}`, replaced atomically after the artifact it names is saved.

A directory holding a single saved artifact (`vaultbot model train --out DIR`) is adopted: copied under its
hash and made the champion without a gate (an operator put it there), retrained `retrain_every_days` after its
training day. A directory holding other files is an error, never overwritten.
"""

import json
import logging
import os
from pathlib import Path

import pandas as pd

from strategy.decision_record import is_hash
from strategy.models import ModelArtifact, ModelError
from strategy.models.artifact import ARTIFACT_FILE
from strategy.models.promotion import PolicyState
from strategy.safe_json import loads

log = logging.getLogger(__name__)

STATE_FILE = "champion.json"


class ModelStore:
    """The models and the policy state in one directory (see the module docstring)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def load_state(self) -> PolicyState | None:
        """The stored state, that of a single artifact it adopts (writing its state), or None for an empty (or
        missing) directory."""
        if (self.directory / STATE_FILE).is_file():
            return self._read_state()
        if (self.directory / ARTIFACT_FILE).is_file():
            champion = ModelArtifact.load(self.directory)
            state = PolicyState.with_champion(champion)
            self.write(state)
            log.info("model %s in %s adopted as the champion", champion.content_hash, self.directory)
            return state
        if self.directory.is_dir() and any(self.directory.iterdir()):
            raise ModelError(f"{self.directory} (model.artifact_dir) holds files but neither a model store "
                             f"({STATE_FILE}) nor a model artifact ({ARTIFACT_FILE})")
        return None

    def save(self, artifact: ModelArtifact) -> Path:
        """`artifact` under its content hash (kept as it is when already there)."""
        path = self.directory / artifact.content_hash
        if not (path / ARTIFACT_FILE).is_file():  # `ModelArtifact.save` writes that file last
            artifact.save(path)
        return path

    def load(self, content_hash: str) -> ModelArtifact:
        artifact = ModelArtifact.load(self.directory / content_hash)
        if artifact.content_hash != content_hash:  # the store is keyed by content: a swapped directory is no model
            raise ModelError(f"{self.directory / content_hash} holds model {artifact.content_hash}, not its name")
        return artifact

    def hashes(self) -> list[str]:
        """The content hashes of the models in the store."""
        if not self.directory.is_dir():
            return []
        return sorted(path.name for path in self.directory.iterdir() if (path / ARTIFACT_FILE).is_file())

    def write(self, state: PolicyState) -> None:
        """Replace the stored state; its champion is saved first."""
        if state.champion is not None:
            self.save(state.champion)
        document = {
            "champion": state.champion.content_hash if state.champion is not None else None,
            "last_trained": state.last_trained.date().isoformat() if state.last_trained is not None else None,
            "fallback": state.fallback,
        }
        self.directory.mkdir(parents=True, exist_ok=True)
        staged = self.directory / f".{STATE_FILE}.tmp"
        staged.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
        os.replace(staged, self.directory / STATE_FILE)

    def _read_state(self) -> PolicyState:
        path = self.directory / STATE_FILE
        try:
            document = loads(path.read_text(encoding="utf-8"))
            champion, last_trained, fallback = document["champion"], document["last_trained"], document["fallback"]
            if champion is not None and not (isinstance(champion, str) and is_hash(champion)):
                raise ValueError(f"champion {champion!r} is not a content hash")  # nor a path out of the store
            trained = pd.Timestamp(last_trained, tz="UTC") if last_trained is not None else None
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
            raise ModelError(f"{path}: unreadable or corrupt: {error}") from None
        return PolicyState(champion=self.load(champion) if champion is not None else None, last_trained=trained,
                           fallback=fallback)

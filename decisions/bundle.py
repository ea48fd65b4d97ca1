"""A decision bundle: the decision record and the three parts whose hashes it holds, in one canonical JSON
file named by the decision hash; the model artifact beside it, once per content hash.

    <dir>/<decision hash>.json        canonical JSON {"config", "inputs", "record", "state"}
    <dir>/models/<model hash>/        the `ModelArtifact` that decided (none for the trailing-best rule)

The record commits to every part: `inputs_hash` = keccak256(canonical JSON of "inputs"), `config_hash` and
`state_hash` likewise, `model_hash` = the artifact's content hash, so the decision hash on chain names the
whole bundle (docs/decision-bundle.md gives the bytes).
"""

import os
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from decisions.codec import encode
from strategy.allocator import AllocatorConfig
from strategy.decision_record import canonical_json, decision_hash_of, decision_record, hash_of
from strategy.guardrails import Guardrails, VaultState
from strategy.market_supply import AssetUnit
from strategy.models import ModelArtifact
from strategy.models.artifact import ARTIFACT_FILE

MODELS_DIR = "models"
PARTS = ("inputs", "config", "state")  # each hashed into the record as <part>_hash
# The config's key, true where the pools' data holds the vault (`[chain] vault_in_pool_data`): its supply is then
# taken besides the vault's positions (`decisions.replay.market_depth`). Absent when false, so such a bundle is
# byte for byte what it was before the key existed.
VAULT_IN_POOL_DATA = "vault_in_pool_data"
# What the re-execution runs on: recorded, so a verifier sees a version it does not share.
PACKAGES = ("vaultbot", "lightgbm", "numpy", "pandas", "scipy", "rfc8785")


@dataclass(frozen=True)
class Bundle:
    """One decision's bundle document and its decision hash."""

    document: dict[str, Any]
    decision_hash: str

    @property
    def record(self) -> dict[str, Any]:
        return self.document["record"]

    @property
    def text(self) -> str:
        return canonical_json(self.document)


def versions() -> dict[str, str]:
    """The Python and package versions a decision was computed with."""
    return dict(_versions())


@cache
def _versions() -> dict[str, str]:
    # Read once a process (about 7 ms a cycle otherwise): the code that runs is what was imported, even if the
    # packages on disk are upgraded under a running keeper.
    found = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found


def decision_bundle(*, chain_id: int, vault: str, timestamp: int, inputs: Mapping[str, Any], model_hash: str,
                    allocator: AllocatorConfig, markets: Mapping[str, str], guardrails: Guardrails,
                    state: VaultState, block: Mapping[str, Any], chain_time: int, unknown_pools: Sequence[str],
                    asset: AssetUnit, targets: Mapping[str, int], vault_in_pool_data: bool = False) -> Bundle:
    """The bundle of a decision: `inputs` is `strategy.decision_record.inputs_document` of what the model saw,
    `markets` the pool -> market map, `block` the block the state was read at, `chain_time` the time the
    guardrail mirror checked the plan at, `asset` the vault's asset, in which the inputs' dollars are counted
    to tell the allocator each market's supply (`decisions.replay.market_depth`), less the vault's positions
    where `vault_in_pool_data`."""
    parts = {
        "inputs": dict(inputs),
        "config": {"allocator": encode(allocator), "markets": encode(markets),
                   "asset": {"symbol": asset.symbol, "decimals": str(asset.decimals)}, "versions": versions(),
                   **({VAULT_IN_POOL_DATA: True} if vault_in_pool_data else {})},
        "state": {"block": {"hash": _hex(block["hash"]), "number": str(block["number"]),
                            "timestamp": str(block["timestamp"])},
                  "chain_time": str(chain_time), "guardrails": encode(guardrails), "vault": encode(state),
                  "unknown_pools": list(unknown_pools)},
    }
    record = decision_record(chain_id=chain_id, vault=vault, inputs_hash=hash_of(parts["inputs"]),
                             model_hash=model_hash, targets=targets, timestamp=timestamp,
                             config_hash=hash_of(parts["config"]), state_hash=hash_of(parts["state"]))
    return Bundle(parts | {"record": record}, decision_hash_of(record))


def bundle_path(directory: Path, decision_hash: str) -> Path:
    return Path(directory) / f"{decision_hash.lower()}.json"


def model_path(directory: Path, model_hash: str) -> Path:
    return Path(directory) / MODELS_DIR / model_hash.lower()


def write_bundle(directory: Path, bundle: Bundle, artifact: ModelArtifact | None) -> Path:
    """`bundle` as <dir>/<decision hash>.json (replaced atomically) and `artifact` under its hash, unless there."""
    directory = Path(directory)
    if artifact is not None and not (model_path(directory, artifact.content_hash) / ARTIFACT_FILE).is_file():
        artifact.save(model_path(directory, artifact.content_hash))  # `save` writes ARTIFACT_FILE last
    path = bundle_path(directory, bundle.decision_hash)
    directory.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.tmp")
    staged.write_bytes(bundle.text.encode("utf-8"))
    os.replace(staged, path)
    return path


def _hex(value: Any) -> str:
    """A block hash as 0x + lowercase hex, from web3's HexBytes or text."""
    return value.lower() if isinstance(value, str) else "0x" + bytes(value).hex()

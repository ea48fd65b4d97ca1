"""Bundles copied out of a bundle directory for archiving (`vaultbot decisions export`): the given decisions'
bundle files and each model artifact they name, once, in the same layout (`decisions.bundle`), so the copy can
be given to `vaultbot verify --bundle`, served by `decisions.publish`, or uploaded as is to any
content-addressed store. Bytes are copied, never re-encoded: the verifier checks them as the keeper wrote them.
"""

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from decisions.bundle import bundle_path, model_path
from decisions.publish import ARTIFACT_FILE, artifact_files, inside, is_hash, named_model


@dataclass
class Exported:
    """What an export copied, and what it could not find."""

    bundles: int = 0
    models: int = 0
    bytes: int = 0
    no_bundle: list[str] = field(default_factory=list)  # decision hashes without a bundle file
    no_model: list[str] = field(default_factory=list)  # model hashes a copied bundle names, not in the source


def export_bundles(source: Path, decision_hashes: Iterable[str], out: Path) -> Exported:
    """The bundles of `decision_hashes` (each once) from `source` into `out`, with their model artifacts."""
    exported, models = Exported(), set[str]()
    for decision_hash in dict.fromkeys(text.lower() for text in decision_hashes):
        bundle = inside(source, bundle_path(source, decision_hash)) if is_hash(decision_hash) else None
        if bundle is None:
            exported.no_bundle.append(decision_hash)
            continue
        data = bundle.read_bytes()
        model_hash = named_model(data)
        if model_hash is not None and model_hash not in models:
            models.add(model_hash)
            _copy_model(source, model_hash, out, exported)
        exported.bytes += _write(bundle_path(out, decision_hash), data)  # after its model, as the keeper writes
        exported.bundles += 1
    return exported


def _copy_model(source: Path, model_hash: str, out: Path, exported: Exported) -> None:
    files = artifact_files(source, model_hash)
    if files is None:
        exported.no_model.append(model_hash)
        return
    for name in sorted(files, key=lambda name: name == ARTIFACT_FILE):  # artifact.json last: the artifact is whole
        exported.bytes += _write(model_path(out, model_hash) / name, files[name].read_bytes())
    exported.models += 1


def _write(path: Path, data: bytes) -> int:
    """`data` as `path`, replaced atomically (an interrupted export leaves no half-written file); its size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.tmp")
    staged.write_bytes(data)
    os.replace(staged, path)
    return len(data)

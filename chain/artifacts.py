"""Compile the contracts (contracts/*.vy, shipped as vaultbot.contracts) with vyper's Python API into ABI +
deploy bytecode, cached on disk.

The cache key hashes every Vyper source under the contracts directory together with the
vyper and snekmate versions, so an unchanged tree is compiled once per machine.
"""

import hashlib
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from vaultbot import resources
from vaultbot.paths import cache_dir

CACHE_FORMAT = 1  # bump when the cached JSON layout changes


class CompilationError(RuntimeError):
    """A contract failed to compile; the message starts with its file name."""


@dataclass(frozen=True)
class ContractArtifact:
    name: str
    abi: list[dict]
    bytecode: str  # 0x-prefixed deploy (init) code


@dataclass(frozen=True)
class CompiledContracts:
    """Artifacts by contract name (file stem), and whether they came from the cache."""

    contracts: dict[str, ContractArtifact]
    from_cache: bool
    seconds: float

    def __getitem__(self, name: str) -> ContractArtifact:
        try:
            return self.contracts[name]
        except KeyError:
            raise KeyError(f"no compiled contract {name!r}; have {sorted(self.contracts)}") from None


def _source_files(contracts_dir: Path) -> list[Path]:
    return sorted(p for p in contracts_dir.rglob("*") if p.suffix in (".vy", ".vyi") and p.is_file())


def source_hash(contracts_dir: Path) -> str:
    """Hash of every Vyper source (path and content) plus the compiler and library versions."""
    digest = hashlib.sha256(f"{CACHE_FORMAT}|vyper {version('vyper')}|snekmate {version('snekmate')}".encode())
    for path in _source_files(contracts_dir):
        digest.update(b"\0" + path.relative_to(contracts_dir).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _compile(contracts_dir: Path) -> dict[str, ContractArtifact]:
    import vyper
    from vyper.compiler.input_bundle import FilesystemInputBundle

    # sys.path holds site-packages, so `from snekmate...` resolves; the contracts dir comes
    # last because vyper gives the last search path the highest precedence.
    search_paths = [Path(p) for p in reversed(sys.path) if p] + [contracts_dir]
    bundle = FilesystemInputBundle(search_paths)
    artifacts = {}
    for path in sorted(contracts_dir.glob("*.vy")):
        try:
            output = vyper.compile_from_file_input(
                bundle.load_file(path.resolve()), input_bundle=bundle, output_formats=["abi", "bytecode"]
            )
        except Exception as error:  # vyper raises many exception types; all mean "does not compile"
            raise CompilationError(f"{path.name}: {error}") from error
        artifacts[path.stem] = ContractArtifact(path.stem, output["abi"], output["bytecode"])
    if not artifacts:
        raise CompilationError(f"no .vy contracts in {contracts_dir}")
    return artifacts


def compile_contracts(contracts_dir: Path | None = None, cache: Path | None = None) -> CompiledContracts:
    """Compile every contracts/*.vy, or load the result of an identical earlier compile."""
    started = time.perf_counter()
    contracts_dir = (contracts_dir or resources.contracts_dir()).resolve()
    if not contracts_dir.is_dir():
        raise CompilationError(f"contracts directory {contracts_dir} does not exist")
    cache_file = (cache or cache_dir()) / f"contracts-{source_hash(contracts_dir)}.json"
    if cache_file.is_file():
        try:
            cached = json.loads(cache_file.read_text())
            contracts = {name: ContractArtifact(name, a["abi"], a["bytecode"]) for name, a in cached.items()}
            return CompiledContracts(contracts, True, time.perf_counter() - started)
        except (ValueError, KeyError, TypeError):
            pass  # a damaged cache entry is simply rebuilt
    contracts = _compile(contracts_dir)
    _write_atomically(cache_file, {c.name: {"abi": c.abi, "bytecode": c.bytecode} for c in contracts.values()})
    return CompiledContracts(contracts, False, time.perf_counter() - started)


def _write_atomically(path: Path, data: object) -> None:
    # concurrent runs (tests, two shells) may write the same entry: never leave half a file
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(handle, "w") as out:
        json.dump(data, out)
    os.replace(temporary, path)


def write_abis(compiled: CompiledContracts, out_dir: Path) -> dict[str, Path]:
    """Write <out_dir>/<Contract>.json (the ABI only) for every contract; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, artifact in compiled.contracts.items():
        paths[name] = out_dir / f"{name}.json"
        paths[name].write_text(json.dumps(artifact.abi, indent=2) + "\n")
    return paths

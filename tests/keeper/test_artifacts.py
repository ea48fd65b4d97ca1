"""chain.artifacts: compiling contracts/*.vy with vyper's API, the on-disk cache, ABI files."""

import json
import shutil
from pathlib import Path

import pytest

from chain.artifacts import (
    CompilationError,
    compile_contracts,
    write_abis,
)
from vaultbot.resources import contracts_dir


@pytest.fixture
def token_only(tmp_path: Path) -> Path:
    """A contracts dir with just MockToken.vy (it imports snekmate, so search paths are exercised)."""
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    shutil.copy(contracts_dir() / "MockToken.vy", contracts)
    return contracts


def test_compiles_abi_and_deploy_bytecode(token_only: Path, tmp_path: Path) -> None:
    compiled = compile_contracts(token_only, cache=tmp_path / "cache")
    token = compiled["MockToken"]
    functions = {entry["name"] for entry in token.abi if entry["type"] == "function"}
    assert {"mint", "transfer", "approve", "decimals", "permit"} <= functions
    assert token.bytecode.startswith("0x") and len(token.bytecode) > 1000
    assert not compiled.from_cache


def test_second_compile_hits_the_cache(token_only: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = compile_contracts(token_only, cache=cache)
    assert len(list(cache.glob("contracts-*.json"))) == 1
    second = compile_contracts(token_only, cache=cache)
    assert second.from_cache
    assert second.contracts == first.contracts


def test_changed_source_misses_the_cache(token_only: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    compile_contracts(token_only, cache=cache)
    source = token_only / "MockToken.vy"
    source.write_text(source.read_text() + "\n# a comment changes the hash\n")
    assert not compile_contracts(token_only, cache=cache).from_cache
    assert len(list(cache.glob("contracts-*.json"))) == 2


def test_damaged_cache_entry_is_rebuilt(token_only: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    good = compile_contracts(token_only, cache=cache)
    (entry,) = cache.glob("contracts-*.json")
    entry.write_text("{not json")
    rebuilt = compile_contracts(token_only, cache=cache)
    assert not rebuilt.from_cache and rebuilt.contracts == good.contracts
    assert json.loads(entry.read_text())["MockToken"]["bytecode"] == good["MockToken"].bytecode


def test_compile_error_names_the_file(token_only: Path, tmp_path: Path) -> None:
    (token_only / "Broken.vy").write_text("@external\ndef f() -> uint256:\n    return undefined_name\n")
    with pytest.raises(CompilationError, match=r"^Broken\.vy: .*undefined_name"):
        compile_contracts(token_only, cache=tmp_path / "cache")


def test_missing_or_empty_contracts_dir_is_named(tmp_path: Path) -> None:
    with pytest.raises(CompilationError, match=f"{tmp_path / 'nowhere'} does not exist"):
        compile_contracts(tmp_path / "nowhere", cache=tmp_path / "cache")
    with pytest.raises(CompilationError, match=f"no .vy contracts in {tmp_path}"):
        compile_contracts(tmp_path, cache=tmp_path / "cache")


def test_unknown_contract_name_lists_what_exists(token_only: Path, tmp_path: Path) -> None:
    with pytest.raises(KeyError, match=r"no compiled contract 'Vault'; have \['MockToken'\]"):
        compile_contracts(token_only, cache=tmp_path / "cache")["Vault"]


def test_repo_contracts_all_compile(compiled_contracts) -> None:
    assert {"MockToken", "MockMarket", "Vault"} <= set(compiled_contracts.contracts)


def test_write_abis_writes_one_json_per_contract(compiled_contracts, tmp_path: Path) -> None:
    paths = write_abis(compiled_contracts, tmp_path / "abi")
    assert set(paths) == set(compiled_contracts.contracts)
    for name, path in paths.items():
        assert path == tmp_path / "abi" / f"{name}.json"
        assert json.loads(path.read_text()) == compiled_contracts[name].abi

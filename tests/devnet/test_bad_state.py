"""The devnet's state on disk gone wrong: a state directory that cannot be created, a pidfile whose pid names no
single process, a deployment JSON with a malformed address. Each is one error line, never a traceback."""

import json
import os
import re
from pathlib import Path

import pytest
import requests
from web3 import Web3

from chain.deployment import Deployment
from config import ConfigError
from devnet.anvil import (
    ANVIL_ENV,
    AnvilError,
    is_alive,
    read_pidfile,
    rpc_call,
    start_background,
    stop_background,
)
from devnet.llama_server import SyntheticLlama
from devnet.synthetic_sources import ChainMarket
from tests.cli import vaultbot

ADDRESS_KEYS = ["vault", "asset", "admin", "keeper", "guardian", "markets.0.address", "depositors.1"]


@pytest.fixture(autouse=True)
def no_anvil_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ANVIL_ENV, raising=False)


def deployment_record(tmp_path: Path) -> dict:
    return {"rpc_url": "http://127.0.0.1:9", "chain_id": 31337, "asset": "0x" + "01" * 20, "vault": "0x" + "02" * 20,
            "markets": [{"address": "0x" + "03" * 20, "name": "Aave USDC", "apy": 0.042}],
            "admin": "0x" + "04" * 20, "keeper": "0x" + "05" * 20, "guardian": "0x" + "06" * 20,
            "depositors": ["0x" + "07" * 20, "0x" + "08" * 20], "abi_dir": str(tmp_path / "abi"), "deployed_at": 1}


def with_value(record: dict, key: str, value: object) -> dict:
    """`record` with the value at the dotted `key` (list items by index) replaced."""
    *parents, last = key.split(".")
    node = record
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return record


def one_line_error(result, code: int = 1) -> str:
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result.output


# ---- 1. a state directory that cannot be created


def test_up_under_a_file_names_the_state_directory(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    state = tmp_path / "afile" / "sub"
    output = one_line_error(vaultbot("devnet", "up", "--json", str(state / "devnet.json"), "--markets", "1"))
    assert f"cannot create the devnet state directory {state}: Not a directory" in output


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_up_under_a_read_only_directory_names_the_state_directory(tmp_path: Path) -> None:
    (tmp_path / "ro").mkdir(mode=0o555)
    state = tmp_path / "ro" / "sub"
    output = one_line_error(vaultbot("devnet", "up", "--json", str(state / "devnet.json"), "--markets", "1"))
    assert f"cannot create the devnet state directory {state}: Permission denied" in output


def test_down_under_a_file_has_nothing_to_stop(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    result = vaultbot("devnet", "down", "--json", str(tmp_path / "afile" / "sub" / "devnet.json"))
    assert (result.exit_code, result.exception) == (0, None), result.output
    assert "no devnet is running" in result.output


@pytest.mark.anvil
def test_an_unwritable_pidfile_stops_the_anvil_it_could_not_record(tmp_path: Path) -> None:
    (tmp_path / "anvil.pid").mkdir()  # no pidfile to read, and none can be written
    with pytest.raises(AnvilError, match=f"cannot write the pidfile {tmp_path / 'anvil.pid'}: Is a directory"):
        start_background(tmp_path)
    port = re.search(r"Listening on [\d.]+:(\d+)", (tmp_path / "anvil.log").read_text()).group(1)
    with pytest.raises(requests.ConnectionError):  # stopped: `devnet down` could never have found it
        rpc_call(f"http://127.0.0.1:{port}", "eth_chainId", timeout=1.0)


@pytest.mark.anvil
def test_an_unwritable_abi_directory_is_named_and_stops_anvil(tmp_path: Path) -> None:
    (tmp_path / "abi").write_text("")  # a file where the ABIs go
    output = one_line_error(vaultbot("devnet", "up", "--json", str(tmp_path), "--markets", "1"))
    [line] = output.splitlines()  # the reason, then where anvil's log is, on one line
    assert f"writing the ABIs to {tmp_path / 'abi'} failed" in line and "(anvil stopped; its log is " in line
    assert not (tmp_path / "anvil.pid").exists()
    assert not (tmp_path / "devnet.json").exists()


# ---- 2. a deployment JSON with a malformed address


@pytest.mark.parametrize("key", ADDRESS_KEYS)
@pytest.mark.parametrize("value", ["0x123", "0x" + "zz" * 20, "not an address"])
def test_a_malformed_address_is_named_with_its_file_and_key(tmp_path: Path, key: str, value: str) -> None:
    path = tmp_path / "devnet.json"
    path.write_text(json.dumps(with_value(deployment_record(tmp_path), key, value)))
    with pytest.raises(ValueError, match=rf"^{path} is not a valid devnet deployment: {key}: '{value}' is not an "
                                         r"Ethereum address \(0x \+ 40 hex digits\)$"):
        Deployment.load(path)


def test_addresses_are_checksummed_on_load(tmp_path: Path) -> None:
    path = tmp_path / "devnet.json"
    path.write_text(json.dumps(with_value(deployment_record(tmp_path), "vault", "0x" + "ab" * 20)))
    assert Deployment.load(path).vault == Web3.to_checksum_address("0x" + "ab" * 20)


def test_keeper_status_on_a_devnet_json_with_a_bad_vault_is_one_line(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULTBOT_HOME", str(tmp_path))  # no --config: the devnet's deployment
    path = tmp_path / "devnet.json"
    path.write_text(json.dumps(with_value(deployment_record(tmp_path), "vault", "0x123")))
    output = one_line_error(vaultbot("keeper", "status"))
    assert f"{path} is not a valid devnet deployment: vault: '0x123' is not an Ethereum address" in output


@pytest.mark.anvil
def test_devnet_status_on_a_json_with_a_bad_vault_is_one_line(tmp_path: Path) -> None:
    record = start_background(tmp_path)
    try:
        path = tmp_path / "devnet.json"

        def refusal() -> str:  # one line, and the devnet not first said to be up
            output = one_line_error(vaultbot("devnet", "status", "--json", str(path)))
            assert output.startswith("error: ") and output.count("\n") == 1, output
            return output

        path.write_text("{not json")
        assert f"{path} is not a valid devnet deployment: file: Invalid JSON" in refusal()
        path.write_text(json.dumps(with_value(deployment_record(tmp_path) | {"rpc_url": record.rpc_url},
                                              "vault", "0x123")))
        assert f"{path} is not a valid devnet deployment: vault: '0x123' is not an Ethereum address" in refusal()
        # well formed, but of another chain: no code there, and no ABIs either
        path.write_text(json.dumps(deployment_record(tmp_path) | {"rpc_url": record.rpc_url}))
        assert f"cannot read the ABI {tmp_path / 'abi' / 'Vault.json'}" in refusal()
        (tmp_path / "abi").mkdir()
        for name in ("Vault", "MockToken"):
            (tmp_path / "abi" / f"{name}.json").write_text("[]")
        assert f"vault {'0x' + '02' * 20} has no code on {record.rpc_url}" in refusal()
    finally:
        stop_background(tmp_path)


# ---- 3. a pidfile whose pid names no single process


@pytest.mark.parametrize("pid", [0, -1, 2**31, 99999999999999999999, True, 1.5, "123"])
def test_a_pid_that_names_no_single_process_is_an_unreadable_pidfile(tmp_path: Path, pid: object) -> None:
    (tmp_path / "anvil.pid").write_text(json.dumps({"pid": pid, "rpc_url": "http://127.0.0.1:9", "log": "x"}))
    with pytest.raises(AnvilError, match=f"unreadable pidfile {tmp_path / 'anvil.pid'}"):
        read_pidfile(tmp_path)
    for command in ("status", "down", "up"):
        output = one_line_error(vaultbot("devnet", command, "--json", str(tmp_path)))
        assert f"unreadable pidfile {tmp_path / 'anvil.pid'}" in output
    assert (tmp_path / "anvil.pid").exists()  # left for the user to look at


@pytest.mark.parametrize("pid", [0, -1, 2**31, 2**64, 99999999999999999999])
def test_is_alive_never_means_a_process_group_or_overflows(pid: int) -> None:
    # os.kill(0 or -1, 0) asks about a whole process group (ours): that is never our anvil
    assert is_alive(pid) is False


@pytest.mark.anvil
def test_the_synthetic_sources_name_a_deployment_whose_market_abi_is_gone(w3: Web3, anvil, tmp_path: Path) -> None:
    record = deployment_record(tmp_path) | {"rpc_url": anvil.rpc_url, "deployed_at": 0}
    llama = SyntheticLlama.generate(seed=1, days=30, pools=1)
    abi = tmp_path / "abi" / "MockMarket.json"  # never written: `devnet up` did not run here
    with pytest.raises(ConfigError, match=rf"^chain.deployment: cannot read the ABI {abi}"):
        ChainMarket(llama, w3, Deployment.model_validate(record), {llama.pool_ids[0]: "0x" + "03" * 20})

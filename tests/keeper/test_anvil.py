"""devnet.anvil: finding the pinned binary, running anvil in-process and in the background."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from devnet import anvil
from devnet.anvil import (
    ANVIL_ENV,
    AnvilConfig,
    AnvilError,
    AnvilProcess,
    anvil_package_name,
    find_anvil,
    is_alive,
    read_pidfile,
    rpc_call,
    running_background,
    start_background,
    stop_background,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_anvil_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ANVIL_ENV, raising=False)


def _refuses_connections(rpc_url: str) -> bool:
    try:
        rpc_call(rpc_url, "eth_chainId", timeout=1.0)
    except requests.ConnectionError:
        return True
    return False


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.mark.parametrize(
    ("system", "machine", "package"),
    [
        ("linux", "x86_64", "anvil-linux-amd64"),
        ("linux", "aarch64", "anvil-linux-arm64"),
        ("darwin", "arm64", "anvil-darwin-arm64"),
        ("darwin", "x86_64", "anvil-darwin-amd64"),
        ("win32", "AMD64", "anvil-win32-amd64"),
    ],
)
def test_package_name_maps_python_platform_names_to_npm_packages(system: str, machine: str, package: str) -> None:
    assert anvil_package_name(system, machine) == package


def test_unsupported_platform_names_it_and_the_override() -> None:
    with pytest.raises(AnvilError, match=r"'freebsd14'.*'riscv64'.*VAULTBOT_ANVIL"):
        anvil_package_name("freebsd14", "riscv64")


def test_missing_binary_tells_the_user_to_install_it(tmp_path) -> None:
    (tmp_path / "package.json").write_text("{}")
    with pytest.raises(AnvilError) as error:
        find_anvil(tmp_path)
    message = str(error.value)
    assert "npm ci --ignore-scripts" in message and "./run setup" in message
    assert str(tmp_path / "node_modules" / "@foundry-rs") in message


def test_outside_the_checkout_the_error_says_to_set_the_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(anvil, "checkout_root", lambda: None)  # as when installed from a wheel
    with pytest.raises(AnvilError, match=f"not running from its checkout.*set {ANVIL_ENV}"):
        find_anvil()


def test_the_checkout_is_the_directory_of_package_json() -> None:
    assert anvil.checkout_root() == REPO


def test_override_must_point_to_an_executable(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ANVIL_ENV, str(tmp_path / "nope"))
    with pytest.raises(AnvilError, match=f"{ANVIL_ENV}=.*nope is not an executable file"):
        find_anvil()


def test_override_is_used_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    real = find_anvil()
    monkeypatch.setenv(ANVIL_ENV, str(real))
    assert find_anvil(REPO / "no-such-root") == real


def test_pinned_binary_has_the_version_package_json_pins() -> None:
    pinned = json.loads((REPO / "package.json").read_text())["devDependencies"]["@foundry-rs/anvil"]
    output = subprocess.run([find_anvil(), "--version"], capture_output=True, text=True, check=True).stdout
    assert f"anvil Version: {pinned}" in output


def test_config_builds_anvil_arguments() -> None:
    config = AnvilConfig(port=8555, chain_id=5, block_time=2, timestamp=1_700_000_000,
                         fork_url="http://127.0.0.1:9/rpc", fork_block_number=123, extra_args=("--accounts", "3"))
    assert config.args() == [
        "--host", "127.0.0.1", "--port", "8555", "--chain-id", "5", "--block-time", "2",
        "--timestamp", "1700000000", "--fork-url", "http://127.0.0.1:9/rpc", "--fork-block-number", "123",
        "--accounts", "3",
    ]


@pytest.mark.anvil
def test_context_manager_starts_answers_and_stops() -> None:
    with AnvilProcess(AnvilConfig(chain_id=1337, timestamp=1_700_000_000)) as node:
        pid, rpc_url, log_path = node.pid, node.rpc_url, node.log_path
        assert node.chain_id == 1337
        assert rpc_url.startswith("http://127.0.0.1:")
        assert int(rpc_call(rpc_url, "eth_chainId"), 16) == 1337
        genesis = rpc_call(rpc_url, "eth_getBlockByNumber", ["0x0", False])
        assert int(genesis["timestamp"], 16) == 1_700_000_000
        assert is_alive(pid)
    assert not is_alive(pid)
    assert _refuses_connections(rpc_url)
    assert not log_path.exists()  # the temporary log is cleaned up


@pytest.mark.anvil
def test_fixed_port_is_used() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with AnvilProcess(AnvilConfig(port=port)) as node:
        assert node.rpc_url == f"http://127.0.0.1:{port}"
        assert int(rpc_call(node.rpc_url, "eth_chainId"), 16) == 31337


@pytest.mark.anvil
def test_busy_port_fails_with_anvils_own_message(anvil: AnvilProcess) -> None:
    # the session anvil answers on that port, so only anvil's log can tell that the new one failed
    with pytest.raises(AnvilError, match=r"exited with code \d+ before it answered:\n.*Address already in use"):
        AnvilProcess(AnvilConfig(port=anvil.port)).start()


@pytest.mark.anvil
def test_bad_argument_error_carries_anvils_stderr() -> None:
    with pytest.raises(AnvilError, match="--no-such-flag"):
        AnvilProcess(AnvilConfig(extra_args=("--no-such-flag",))).start()


@pytest.mark.anvil
def test_startup_timeout_is_reported_and_the_process_stopped() -> None:
    node = AnvilProcess(startup_timeout=0)
    with pytest.raises(AnvilError, match=r"did not answer eth_chainId within 0s"):
        node.start()
    with pytest.raises(AnvilError, match="not running"):
        node.pid  # noqa: B018 - the property raises once the process is gone


@pytest.mark.anvil
def test_background_anvil_outlives_its_handle_and_stops_by_pidfile(tmp_path) -> None:
    record = start_background(tmp_path)
    try:
        assert read_pidfile(tmp_path) == record
        assert running_background(tmp_path) == record
        assert record.log_path == tmp_path.resolve() / "anvil.log"
        assert int(rpc_call(record.rpc_url, "eth_chainId"), 16) == 31337
        assert os.getsid(record.pid) == record.pid  # own session: no Ctrl-C from the launching terminal
        with pytest.raises(AnvilError, match=rf"already running \(pid {record.pid}"):
            start_background(tmp_path)
    finally:
        result = stop_background(tmp_path)
    assert result.stopped == record
    assert not (tmp_path / "anvil.pid").exists()
    assert not is_alive(record.pid)
    assert _refuses_connections(record.rpc_url)
    assert stop_background(tmp_path).message == f"no devnet is running (no {tmp_path / 'anvil.pid'})"


def test_stale_pidfile_of_a_dead_process_is_removed(tmp_path) -> None:
    pid = _dead_pid()
    (tmp_path / "anvil.pid").write_text(json.dumps({"pid": pid, "rpc_url": "http://127.0.0.1:9", "log": "x"}))
    assert running_background(tmp_path) is None
    result = stop_background(tmp_path)
    assert result.stopped is None
    assert result.message == f"no devnet is running (removed stale pidfile for pid {pid})"
    assert not (tmp_path / "anvil.pid").exists()


def test_pidfile_whose_pid_is_not_anvil_does_not_signal_it(tmp_path) -> None:
    # a recycled pid: alive, but nothing answers as anvil at the recorded URL
    (tmp_path / "anvil.pid").write_text(json.dumps({"pid": os.getpid(), "rpc_url": "http://127.0.0.1:9", "log": "x"}))
    assert stop_background(tmp_path).stopped is None
    assert not (tmp_path / "anvil.pid").exists()


def test_unreadable_pidfile_is_named(tmp_path) -> None:
    (tmp_path / "anvil.pid").write_text("12345")
    with pytest.raises(AnvilError, match=f"unreadable pidfile {tmp_path / 'anvil.pid'}"):
        running_background(tmp_path)

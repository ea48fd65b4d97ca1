"""Find anvil (the npm-pinned binary of the checkout, or $VAULTBOT_ANVIL) and run it on 127.0.0.1.

Two ways to run it: `AnvilProcess` as a context manager (tests, backtests) stops anvil on
exit; `start_background`/`stop_background` run a detached anvil that outlives the command
(`vaultbot devnet up|down`), tracked by a pidfile and a log file in a state directory.
"""

import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import requests

from strategy.safe_json import loads

ANVIL_ENV = "VAULTBOT_ANVIL"
HOST = "127.0.0.1"
FOUNDRY_PORT = 8545  # where Foundry's tools (and keeper/example-config.toml) expect a local node
PIDFILE_NAME = "anvil.pid"
LOGFILE_NAME = "anvil.log"

# Python's names -> the names of @foundry-rs/anvil's platform packages (see its const.mjs).
_PLATFORMS = {"linux": "linux", "darwin": "darwin", "win32": "win32"}
_ARCHITECTURES = {"x86_64": "amd64", "amd64": "amd64", "arm64": "arm64", "aarch64": "arm64"}
_LISTENING = re.compile(rb"Listening on [\d.]+:(\d+)")
_POLL_SECONDS = 0.05
# pid_t is a signed 32-bit int (Linux, macOS): a recorded pid outside 1.._MAX_PID names no single process, and
# os.kill(0 or -1, ...) would signal a whole process group
_MAX_PID = 2**31 - 1


class AnvilError(RuntimeError):
    """anvil is missing, would not start, or could not be stopped."""


def anvil_package_name(system: str = sys.platform, machine: str = platform.machine()) -> str:
    """The npm package holding anvil for this platform, e.g. `anvil-linux-amd64`."""
    os_name = _PLATFORMS.get(system)
    arch = _ARCHITECTURES.get(machine.lower())
    if os_name is None or arch is None:
        raise AnvilError(
            f"no anvil package for platform {system!r} / machine {machine!r}; "
            f"set {ANVIL_ENV} to the path of an anvil binary"
        )
    return f"anvil-{os_name}-{arch}"


def checkout_root() -> Path | None:
    """The checkout this code runs from (the directory holding package.json, which pins anvil), or None for
    a wheel installed outside any checkout: anvil is an npm package, never part of the wheel."""
    return next((d for d in Path(__file__).resolve().parents if (d / "package.json").is_file()), None)


def find_anvil(root: Path | None = None) -> Path:
    """$VAULTBOT_ANVIL if set, else the binary of the pinned npm package under the checkout (`root`)."""
    override = os.environ.get(ANVIL_ENV)
    if override:
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise AnvilError(f"{ANVIL_ENV}={override} is not an executable file")
        return path
    root = root if root is not None else checkout_root()
    if root is None:
        raise AnvilError(f"anvil not found: vaultbot is not running from its checkout (no node_modules with "
                         f"the pinned anvil); set {ANVIL_ENV} to the path of an anvil binary.")
    exe = "anvil.exe" if sys.platform == "win32" else "anvil"
    path = root / "node_modules" / "@foundry-rs" / anvil_package_name() / "bin" / exe
    if not path.is_file():
        raise AnvilError(
            f"anvil not found at {path}. Install the pinned anvil: run `npm ci --ignore-scripts` "
            f"in {root} (or `./run setup`), or set {ANVIL_ENV} to an anvil binary."
        )
    return path


@dataclass(frozen=True)
class AnvilConfig:
    """Command-line options for anvil; port 0 lets anvil pick a free port."""

    port: int = 0
    chain_id: int = 31337
    block_time: float | None = None
    timestamp: int | None = None
    fork_url: str | None = None
    fork_block_number: int | None = None
    extra_args: tuple[str, ...] = ()

    def args(self) -> list[str]:
        args = ["--host", HOST, "--port", str(self.port), "--chain-id", str(self.chain_id)]
        if self.block_time is not None:
            args += ["--block-time", str(self.block_time)]
        if self.timestamp is not None:
            args += ["--timestamp", str(self.timestamp)]
        if self.fork_url is not None:
            args += ["--fork-url", self.fork_url]
        if self.fork_block_number is not None:
            args += ["--fork-block-number", str(self.fork_block_number)]
        return args + list(self.extra_args)


def rpc_call(rpc_url: str, method: str, params: list[Any] | None = None, timeout: float = 2.0) -> object:
    """One JSON-RPC call; raises requests' errors when nothing answers, AnvilError on an RPC error."""
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}
    reply = requests.post(rpc_url, json=body, timeout=timeout).json()
    if "error" in reply:
        raise AnvilError(f"{method} at {rpc_url} failed: {reply['error']}")
    return reply["result"]


class AnvilProcess:
    """One anvil process: `start()` returns once it answers eth_chainId, `stop()` ends it."""

    def __init__(self, config: AnvilConfig = AnvilConfig(), *, log_path: Path | None = None,
                 startup_timeout: float = 30.0) -> None:
        self.config = config
        self.startup_timeout = startup_timeout
        self._log_path = log_path
        self._owns_log = log_path is None
        self._process: subprocess.Popen[bytes] | None = None
        self.port: int | None = None
        self.chain_id: int | None = None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise AnvilError("anvil is not running")
        return self._process.pid

    @property
    def rpc_url(self) -> str:
        if self.port is None:
            raise AnvilError("anvil is not running")
        return f"http://{HOST}:{self.port}"

    @property
    def log_path(self) -> Path:
        if self._log_path is None:
            raise AnvilError("anvil has not been started")
        return self._log_path

    def start(self, *, detached: bool = False) -> Self:
        """Launch anvil and wait until it answers; `detached` lets it outlive this Python process."""
        if self._process is not None:
            raise AnvilError(f"anvil is already running (pid {self._process.pid})")
        if self._log_path is None:
            handle, name = tempfile.mkstemp(prefix="vaultbot-anvil-", suffix=".log")
            os.close(handle)
            self._log_path = Path(name)
        command = [str(find_anvil()), *self.config.args()]
        if self._log_path.exists() and not self._log_path.is_file():  # a FIFO would block open() below
            raise AnvilError(f"cannot write anvil's log {self._log_path}: not a regular file")
        try:
            log = open(self._log_path, "wb")  # noqa: SIM115 - closed below; Popen's own OSErrors are not the log's
        except OSError as error:
            raise AnvilError(f"cannot write anvil's log {self._log_path}: {error.strerror or error}") from None
        with log:
            self._process = process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=detached,  # no Ctrl-C or hang-up from the launching terminal
            )
        try:
            self._wait_until_ready(process)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_ready(self, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            code = process.poll()
            if code is not None:
                raise AnvilError(f"anvil exited with code {code} before it answered:\n{self.log_tail()}")
            if self.port is None:
                # even with a fixed port, wait for anvil's own "Listening on": another node may already answer there
                self.port = self._port_from_log()
            if self.port is not None:
                try:
                    chain_id = rpc_call(self.rpc_url, "eth_chainId", timeout=1.0)
                except requests.RequestException:
                    pass  # not answering yet
                else:
                    if not isinstance(chain_id, str):
                        raise AnvilError(f"anvil answered eth_chainId with {chain_id!r}, not a hex quantity")
                    self.chain_id = int(chain_id, 16)
                    return
            time.sleep(_POLL_SECONDS)
        raise AnvilError(
            f"anvil did not answer eth_chainId within {self.startup_timeout:g}s:\n{self.log_tail()}"
        )

    def _port_from_log(self) -> int | None:
        match = _LISTENING.search(self.log_path.read_bytes())
        return int(match.group(1)) if match else None

    def log_tail(self, lines: int = 20) -> str:
        """The end of anvil's output, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except (OSError, AnvilError):
            return "(no anvil output)"
        return "\n".join(text.strip().splitlines()[-lines:]) or "(no anvil output)"

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate anvil, kill it if it lingers; removes the log file if it was a temporary one."""
        if self._process is not None:
            if self._process.poll() is None:
                self._process.terminate()
                try:
                    self._process.wait(timeout)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
            self._process = None
            self.port = None
        if self._owns_log and self._log_path is not None:
            self._log_path.unlink(missing_ok=True)
            self._log_path = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


@dataclass(frozen=True)
class BackgroundAnvil:
    """A detached anvil as recorded in its pidfile (JSON: pid, rpc_url, log)."""

    pid: int
    rpc_url: str
    log_path: Path


def _pidfile(state: Path) -> Path:
    return state / PIDFILE_NAME


def read_pidfile(state: Path) -> BackgroundAnvil | None:
    """The recorded background anvil, or None without a pidfile. Raises AnvilError if it is unreadable."""
    path = _pidfile(state)
    if not path.is_file():
        return None
    try:
        record = loads(path.read_text())
        pid = record["pid"]
        if type(pid) is not int or not _is_pid(pid):  # we write an int; not a bool, float or string of one
            raise ValueError(f"pid {pid!r} is not a process id")
        return BackgroundAnvil(pid, str(record["rpc_url"]), Path(record["log"]))
    except (ValueError, KeyError, TypeError) as error:
        raise AnvilError(f"unreadable pidfile {path} ({error!r}); delete it if no devnet is running") from error


def _is_pid(pid: int) -> bool:
    return 0 < pid <= _MAX_PID


def is_alive(pid: int) -> bool:
    """Whether process `pid` still runs (reaping it first if it is our own exited child); never for a pid that
    names no single process (0, negative, or beyond pid_t: waitpid/kill would mean a group, or overflow)."""
    if not _is_pid(pid):
        return False
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    except ChildProcessError:
        pass  # not our child: ask the OS instead
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    # an exited detached anvil waits for init to reap it; /proc (Linux) tells it is already dead
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] == "Z"


def answers_as_anvil(rpc_url: str) -> bool:
    """Whether an anvil answers at rpc_url (guards against signalling a recycled pid)."""
    try:
        version = rpc_call(rpc_url, "web3_clientVersion", timeout=1.0)
    except (requests.RequestException, AnvilError, ValueError):
        return False
    return isinstance(version, str) and version.startswith("anvil")


def running_background(state: Path) -> BackgroundAnvil | None:
    """The background anvil of this state dir if it is alive and answering, else None."""
    record = read_pidfile(state)
    if record is None or not is_alive(record.pid) or not answers_as_anvil(record.rpc_url):
        return None
    return record


def port_is_free(port: int) -> bool:
    """Whether a listener could bind `port` on HOST now (something may still take it before anvil does)."""
    with socket.socket() as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def start_background(state: Path, config: AnvilConfig = AnvilConfig(), startup_timeout: float = 30.0, *,
                     or_any_port: bool = False) -> BackgroundAnvil:
    """Start a detached anvil logging to <state>/anvil.log and record it in <state>/anvil.pid; with
    `or_any_port`, on a free port when `config.port` is taken (the record's `rpc_url` tells which)."""
    running = running_background(state)
    if running is not None:
        raise AnvilError(f"a devnet anvil is already running (pid {running.pid}, {running.rpc_url})")
    try:
        state.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # a file where a directory belongs, a read-only disk: before anvil starts
        raise AnvilError(f"cannot create the devnet state directory {state}: {error.strerror or error}") from None
    log_path = (state / LOGFILE_NAME).resolve()

    def launch(port: int) -> AnvilProcess:
        return AnvilProcess(replace(config, port=port), log_path=log_path,
                            startup_timeout=startup_timeout).start(detached=True)

    fallback = or_any_port and config.port != 0
    if fallback and not port_is_free(config.port):
        anvil = launch(0)
    else:
        try:
            anvil = launch(config.port)
        except AnvilError:
            if not fallback or port_is_free(config.port):
                raise  # not a port taken since the probe
            anvil = launch(0)
    record = BackgroundAnvil(anvil.pid, anvil.rpc_url, log_path)
    try:
        _pidfile(state).write_text(json.dumps({"pid": record.pid, "rpc_url": record.rpc_url, "log": str(log_path)}))
    except OSError as error:  # unrecorded, `devnet down` could never stop it: stop it now
        anvil.stop()
        raise AnvilError(f"cannot write the pidfile {_pidfile(state)}: {error.strerror or error}") from None
    return record


@dataclass(frozen=True)
class StopResult:
    """What stop_background found: the anvil it stopped, or why there was nothing to stop."""

    stopped: BackgroundAnvil | None
    message: str


def stop_background(state: Path, timeout: float = 10.0) -> StopResult:
    """Stop the background anvil of this state dir (SIGTERM, then SIGKILL) and remove its pidfile.

    A stale pidfile (process gone, or the pid now belongs to something that is not our anvil)
    is removed without signalling anything.
    """
    record = read_pidfile(state)
    if record is None:
        return StopResult(None, f"no devnet is running (no {_pidfile(state)})")
    if not is_alive(record.pid) or not answers_as_anvil(record.rpc_url):
        _remove_pidfile(state)
        return StopResult(None, f"no devnet is running (removed stale pidfile for pid {record.pid})")
    _signal_until_gone(record.pid, timeout)
    _remove_pidfile(state)
    return StopResult(record, f"stopped anvil (pid {record.pid}, {record.rpc_url})")


def _remove_pidfile(state: Path) -> None:
    try:
        _pidfile(state).unlink()
    except OSError as error:  # a read-only state directory
        raise AnvilError(f"cannot remove the pidfile {_pidfile(state)}: {error.strerror or error}") from None


def _signal_until_gone(pid: int, timeout: float) -> None:
    for sig in (signal.SIGTERM, getattr(signal, "SIGKILL", signal.SIGTERM)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not is_alive(pid):
                return
            time.sleep(_POLL_SECONDS)
    raise AnvilError(f"anvil (pid {pid}) did not exit after SIGTERM and SIGKILL")

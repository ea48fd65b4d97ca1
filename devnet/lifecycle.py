"""Starting a devnet and moving its clock: library steps under `vaultbot devnet` and the demo.

`start_devnet` compiles the contracts, starts anvil in the background next to the deployment JSON, deploys
and saves the deployment; any failure stops the anvil it started and raises `DevnetError` with the reason.
"""

import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from web3 import Web3
from web3.types import RPCEndpoint

from chain.artifacts import CompilationError, compile_contracts
from chain.deployment import Deployment
from devnet.anvil import FOUNDRY_PORT, AnvilConfig, AnvilError, start_background, stop_background
from devnet.deploy import DeploymentError, DevnetParams, deploy_devnet


class DevnetError(RuntimeError):
    """The devnet could not be started; the message says why (and where anvil's log is)."""


@dataclass(frozen=True)
class StartedDevnet:
    deployment: Deployment
    log_path: Path
    compiled_from_cache: bool
    compile_seconds: float
    deploy_seconds: float
    foundry_port_taken: bool = False  # FOUNDRY_PORT was wanted but in use: anvil listens on another port


def start_devnet(path: Path, params: DevnetParams | None = None, *, port: int | None = 0) -> StartedDevnet:
    """Start anvil in the background for `path` (its directory holds anvil.pid, anvil.log and abi/), deploy
    `params` and save the deployment JSON at `path`. `port` None: `FOUNDRY_PORT` when free, else a free one."""
    params = params or DevnetParams()
    home = path.parent
    try:
        compiled = compile_contracts()  # before anvil starts, so a compile error leaves no process behind
        started = time.perf_counter()
        anvil = start_background(home, AnvilConfig(port=FOUNDRY_PORT if port is None else port),
                                 or_any_port=port is None)
    except (AnvilError, CompilationError) as error:
        raise DevnetError(str(error)) from error
    try:
        deployment = deploy_devnet(Web3(Web3.HTTPProvider(anvil.rpc_url)), compiled, home / "abi",
                                   params, anvil_pid=anvil.pid)
        _save(deployment, path)
    except DeploymentError as error:
        stop_background(home)
        raise DevnetError(f"{error} (anvil stopped; its log is {anvil.log_path})") from error
    except BaseException:
        stop_background(home)
        raise
    return StartedDevnet(deployment, anvil.log_path, compiled.from_cache, compiled.seconds,
                         time.perf_counter() - started,
                         foundry_port_taken=port is None and urlsplit(anvil.rpc_url).port != FOUNDRY_PORT)


def _save(deployment: Deployment, path: Path) -> None:
    try:
        deployment.save(path)
    except OSError as error:  # a directory where the JSON belongs, a full disk
        raise DeploymentError(f"writing the deployment to {path} failed: {error.strerror or error}") from None


def advance_chain(w3: Web3, seconds: int) -> None:
    """anvil only: the devnet's chain clock jumps, so cooldowns pass and markets accrue."""
    w3.provider.make_request(RPCEndpoint("evm_increaseTime"), [seconds])
    w3.provider.make_request(RPCEndpoint("evm_mine"), [])

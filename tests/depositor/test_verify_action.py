"""The page's verify action (POST /api/verify) and `vault info`'s verification line on a real anvil: a keeper cycle
writes its decision bundle, and the page re-executes the decision the chain names from its own copy of the bundles;
a byte flipped after a first REPRODUCED is tampering; bad input and a page without bundles are one clear 4xx."""

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from web3 import Web3

from chain.deployment import Deployment
from chain.errors import RpcUnavailable
from cli.web import keeper_sources
from config import Config
from decisions.bundle import bundle_path
from depositor.keeper_health import KeeperSources
from depositor.vault import open_vault
from depositor.views import VaultViews
from depositor.web.server import serve
from journal.db import CycleStatus
from keeper.cycle import Keeper
from tests.cli import vaultbot
from tests.depositor.conftest import USDC, deposit_directly, vault_contract
from tests.keeper.keeper_world import (
    artifact_dir,
    funded,
    keeper,
    keeper_config,
    keeper_table,
    llama,
    rebalanced_hashes,
    transact,
)

pytestmark = pytest.mark.anvil

CHECK_TIMEOUT_S = 120  # a re-execution loads the model and replays the decision: about a second, more on a busy machine


@pytest.fixture
def rebalanced(keeper: Keeper, keeper_config: Config, keeper_table: dict[str, Any]) -> tuple[str, Path, Path]:
    """(tx hash, the keeper's bundle directory, the devnet JSON) after one rebalancing cycle."""
    outcome = keeper.run_cycle()
    assert outcome.status == CycleStatus.REBALANCED, outcome.reason
    return outcome.tx_hash, keeper_config.service.decisions_dir, Path(keeper_table["chain"]["deployment"])


@contextmanager
def page(deployment_json: Path, sources: KeeperSources) -> Iterator[str]:
    server = serve(VaultViews(open_vault(None, None, deployment_json), sources), "127.0.0.1", 0,
                   unavailable=(RpcUnavailable,))
    try:
        yield server.url
    finally:
        server.stop()


def verify(url: str, body: Any) -> requests.Response:
    return requests.post(f"{url}/api/verify", json=body, timeout=CHECK_TIMEOUT_S)


def flip_a_state_byte(bundle: Path) -> None:
    """One digit of the bundle's chain time changed in place: the file stays canonical JSON, its state does not
    hash to the record's state hash any more."""
    data = bytearray(bundle.read_bytes())
    at = data.index(b'"chain_time":"') + len(b'"chain_time":"')
    last = data.index(b'"', at) - 1  # the last digit: never a leading zero
    data[last] = ord("0") + (data[last] - ord("0") + 1) % 10
    bundle.write_bytes(bytes(data))


def test_the_page_reproduces_the_keepers_decision_and_then_sees_a_flipped_byte(
        rebalanced: tuple[str, Path, Path], w3: Web3, funded: Deployment) -> None:
    tx, bundles, deployment = rebalanced
    [decision_hash] = rebalanced_hashes(w3, funded)
    with page(deployment, KeeperSources(decisions_dir=bundles)) as url:
        started = time.monotonic()
        first = verify(url, {"tx": tx})
        checked_s = time.monotonic() - started
        assert first.status_code == 200, first.text
        reply = first.json()
        assert reply["verdict"] == "REPRODUCED" and reply["reproduced"] is True, reply
        assert (reply["tx"], reply["decision_hash"]) == (tx, decision_hash)  # the decision hash the chain holds
        assert reply["why"].startswith("re-running the model and the allocator on the bundle gives the same ")
        assert "inputs, config and state hash to the record's hashes" in reply["facts"]

        started = time.monotonic()
        again = verify(url, {"tx": tx.upper().replace("0X", "0x")})  # the same transaction, written otherwise
        cached_s = time.monotonic() - started
        assert again.json() == reply
        assert cached_s < checked_s / 3, f"not cached: {cached_s:.3f} s after {checked_s:.3f} s"

        flip_a_state_byte(bundle_path(bundles, decision_hash))
        tampered = verify(url, {"tx": tx})
        assert tampered.status_code == 200, tampered.text
        assert tampered.json()["verdict"] == "BUNDLE TAMPERED" and tampered.json()["reproduced"] is False
        assert tampered.json()["why"].startswith("state: it hashes to 0x"), tampered.json()


def test_vault_info_says_whether_the_last_decision_reproduces(
        rebalanced: tuple[str, Path, Path], w3: Web3, funded: Deployment, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """For the devnet's vault `vault info` finds the devnet keeper's bundles as it finds its journal; --decisions
    names another directory."""
    _, bundles, deployment = rebalanced
    [decision_hash] = rebalanced_hashes(w3, funded)
    # the devnet keeper's service.decisions_dir is decisions/ next to the deployment JSON, as keeper_table has it
    assert bundles == deployment.parent / "decisions"
    found = vaultbot("vault", "info", "--json", str(deployment))
    assert found.exit_code == 0, found.output
    assert re.fullmatch(rf"last rebalance's decision {decision_hash}: REPRODUCED: re-running the model and the "
                        rf"allocator on the bundle gives the same \d+ target\(s\) and the same decision hash "
                        rf"\(bundles in {re.escape(str(bundles))}\)", found.output.splitlines()[-1]), found.output

    (tmp_path / "empty").mkdir()
    missing = vaultbot("vault", "info", "--json", str(deployment), "--decisions", str(tmp_path / "empty"))
    assert missing.exit_code == 0, missing.output
    assert missing.output.splitlines()[-1].startswith(
        f"last rebalance's decision {decision_hash}: BUNDLE MISSING: no bundle {decision_hash}.json in "), \
        missing.output

    bundles.rename(tmp_path / "elsewhere")  # a devnet keeper that wrote no bundle
    unknown = vaultbot("vault", "info", "--json", str(deployment))
    assert unknown.exit_code == 0, unknown.output
    assert unknown.output.splitlines()[-1] == (f"last rebalance's decision {decision_hash}: not verified: no bundle "
                                               "directory known (the keeper's service.decisions_dir, or a copy of it)")


def test_vault_info_before_any_rebalance(devnet_json: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULTBOT_HOME", str(tmp_path))
    result = vaultbot("vault", "info", "--json", str(devnet_json))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "last rebalance: none yet, no decision to verify"


def test_a_bad_decisions_directory_is_one_line_before_any_connection(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    for command in ("web", "vault info"):
        for bad in (tmp_path / "none", tmp_path / "a-file"):
            result = vaultbot(*command.split(), "--decisions", str(bad), "--rpc", "http://127.0.0.1:1",
                              "--vault", "0x" + "11" * 20)
            assert result.exit_code == 2, result.output
            assert "--decisions" in result.output and "Traceback" not in result.output, result.output


@pytest.fixture
def direct_rebalance(w3: Web3, devnet: Deployment, chain_snapshot: None) -> str:
    """A rebalance the devnet's keeper account sent by hand, with a decision hash no keeper wrote a bundle for."""
    deposit_directly(w3, devnet, devnet.depositors[2], 2_000 * USDC)
    receipt = transact(w3, vault_contract(w3, devnet).functions.rebalance(
        [(devnet.markets[0].address, 500 * USDC)], b"\x06" * 32), devnet.keeper)
    return receipt["transactionHash"].to_0x_hex()


@pytest.mark.parametrize(("body", "message"), [
    ({}, "tx must be a transaction hash (0x + 64 hex digits), got None"),
    ({"tx": 5}, "tx must be a transaction hash (0x + 64 hex digits), got 5"),
    ({"tx": "0x12"}, "tx: not a transaction hash (0x + 64 hex digits, 32 bytes): it has 2 hex digits"),
    ({"tx": "0x" + "0" * 64}, f"tx: chain 31337 has no mined transaction 0x{'0' * 64}"),
])
def test_bad_requests_are_a_400_naming_the_problem(web_url: str, body: dict[str, Any], message: str) -> None:
    reply = verify(web_url, body)
    assert (reply.status_code, reply.json()) == (400, {"error": message})


def test_a_transaction_that_is_not_a_rebalance_is_a_400(web_url: str, w3: Web3, devnet: Deployment,
                                                       chain_snapshot: None) -> None:
    receipt = transact(w3, vault_contract(w3, devnet).functions.pause(), devnet.guardian)
    reply = verify(web_url, {"tx": receipt["transactionHash"].to_0x_hex()})
    assert reply.status_code == 400
    assert reply.json()["error"].endswith(f"emitted 0 Rebalanced events from vault {devnet.vault}, not one: it is "
                                          "not a rebalance of this vault")


def test_a_page_without_bundles_says_so_and_one_with_an_empty_copy_finds_the_bundle_missing(
        web_url: str, direct_rebalance: str, devnet_json: Path, tmp_path: Path) -> None:
    reply = verify(web_url, {"tx": direct_rebalance})  # the page of `vaultbot web` with no bundle directory known
    assert (reply.status_code, reply.json()) == (422, {"error": "cannot verify here: no bundle directory known (the "
                                                                "keeper's service.decisions_dir, or a copy of it)"})
    (tmp_path / "copy").mkdir()  # `vaultbot web --decisions DIR`, for a vault of its own (--vault)
    with page(devnet_json, keeper_sources(devnet_json, decisions=tmp_path / "copy", devnet=False)) as url:
        reply = verify(url, {"tx": direct_rebalance})
    assert reply.status_code == 200, reply.text
    assert reply.json()["verdict"] == "BUNDLE MISSING"
    assert reply.json()["why"].startswith(f"no bundle 0x{'06' * 32}.json in {tmp_path / 'copy'}")

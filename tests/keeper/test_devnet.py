"""devnet.deploy and `vaultbot devnet up|down|status` against real anvil processes."""

import math
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from web3 import Web3
from web3.logs import DISCARD

from chain.params import Param
from devnet.anvil import FOUNDRY_PORT, HOST, AnvilConfig, is_alive, start_background, stop_background
from devnet.deploy import (
    MARKET_PRESETS,
    SECONDS_PER_YEAR,
    USDC,
    WAD,
    Deployment,
    DeploymentError,
    DevnetParams,
    apy_to_rate_wad,
    deploy_devnet,
)
from tests.cli import vaultbot


def send(w3: Web3, call, sender: str) -> dict:
    receipt = w3.eth.wait_for_transaction_receipt(call.transact({"from": sender}))
    assert receipt["status"] == 1
    return receipt


@pytest.mark.parametrize("apy", [0.03, 0.05, 0.08])
def test_rate_compounds_to_the_apy_over_a_year(apy: float) -> None:
    assert math.expm1(apy_to_rate_wad(apy) / WAD * SECONDS_PER_YEAR) == pytest.approx(apy, rel=1e-9)


@pytest.mark.parametrize("markets", [0, len(MARKET_PRESETS) + 1])
def test_market_count_is_bounded(markets: int) -> None:
    with pytest.raises(ValueError, match=f"markets must be between 1 and {len(MARKET_PRESETS)}, got {markets}"):
        DevnetParams(markets=markets)


def test_loading_a_missing_deployment_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="vaultbot devnet up"):
        Deployment.load(tmp_path / "devnet.json")


def test_loading_a_bad_deployment_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "devnet.json"
    path.write_text('{"rpc_url": "http://127.0.0.1:8545", "chain_id": "not a number"}')
    with pytest.raises(ValueError, match=rf"{path} is not a valid devnet deployment(.|\n)*chain_id(.|\n)*vault"):
        Deployment.load(path)


@pytest.mark.anvil
def test_deployment_is_configured_as_specified(w3: Web3, devnet: Deployment) -> None:
    params = DevnetParams()
    vault = devnet.contract(w3, "Vault", devnet.vault)
    token = devnet.contract(w3, "MockToken", devnet.asset)
    assert (token.functions.decimals().call(), token.functions.symbol().call()) == (6, "USDC")
    assert vault.functions.asset().call() == devnet.asset
    assert [vault.functions.admin().call(), vault.functions.keeper().call(), vault.functions.guardian().call()] == \
        [devnet.admin, devnet.keeper, devnet.guardian] == w3.eth.accounts[:3]
    assert vault.functions.decimals().call() == 6 + params.decimals_offset
    assert vault.functions.min_rebalance_interval().call() == params.min_rebalance_interval
    assert vault.functions.max_turnover_bps().call() == params.max_turnover_bps
    assert vault.functions.max_loss_bps().call() == params.max_loss_bps
    assert vault.functions.min_idle_bps().call() == params.min_idle_bps
    assert vault.functions.timelock().call() == params.timelock
    # the devnet keeper's HTTP server, where `vaultbot verify TX` finds the bundles without being told
    assert vault.functions.decisions_uri().call() == "http://127.0.0.1:9464"

    addresses = [m.address for m in devnet.markets]
    assert vault.functions.markets().call() == addresses == vault.functions.withdraw_queue().call()
    assert [m.name for m in devnet.markets] == [p.name for p in MARKET_PRESETS[: params.markets]]
    assert len({m.apy for m in devnet.markets}) == params.markets
    for info in devnet.markets:
        market = devnet.contract(w3, "MockMarket", info.address)
        assert market.functions.name().call() == info.name
        assert market.functions.asset().call() == devnet.asset
        assert market.functions.rate_per_second().call() == apy_to_rate_wad(info.apy)
        assert vault.functions.market_config(info.address).call() == (
            True, params.market_cap_bps, params.market_cap_abs)

    assert devnet.depositors == w3.eth.accounts[3:6]
    for depositor in devnet.depositors:
        assert token.functions.balanceOf(depositor).call() == params.depositor_balance
    assert 0 < devnet.deployed_at <= w3.eth.block_number
    assert {p.stem for p in Path(devnet.abi_dir).glob("*.json")} >= {"MockToken", "MockMarket", "Vault"}


@pytest.mark.anvil
def test_timelock_is_raised_last_so_later_loosening_waits(w3: Web3, devnet: Deployment, chain_snapshot) -> None:
    vault = devnet.contract(w3, "Vault", devnet.vault)
    receipt = send(w3, vault.functions.submit_param(Param.MAX_LOSS_BPS, 50), devnet.admin)
    (queued,) = vault.events.ParamSubmitted().process_receipt(receipt, errors=DISCARD)
    assert queued["args"]["valid_at"] == w3.eth.get_block(receipt["blockNumber"])["timestamp"] + DevnetParams().timelock
    assert vault.functions.max_loss_bps().call() == DevnetParams().max_loss_bps


@pytest.mark.anvil
def test_reverting_step_is_named(w3: Web3, compiled_contracts, tmp_path: Path, chain_snapshot) -> None:
    with pytest.raises(DeploymentError, match=r"set max_turnover_bps=20000 \(submit\) failed: .*vault: bad value"):
        deploy_devnet(w3, compiled_contracts, tmp_path / "abi", DevnetParams(max_turnover_bps=20_000))


@pytest.mark.anvil
def test_devnet_end_to_end_deposit_rebalance_accrue_redeem(tmp_path: Path) -> None:
    path = tmp_path / "devnet.json"
    result = vaultbot("devnet", "up", "--json", str(path), "--markets", "3")
    assert result.exit_code == 0, result.output
    deployment = Deployment.load(path)
    assert "devnet up" in result.output and deployment.vault in result.output
    assert len(deployment.markets) == 3 and is_alive(deployment.anvil_pid)

    w3 = Web3(Web3.HTTPProvider(deployment.rpc_url))
    vault = deployment.contract(w3, "Vault", deployment.vault)
    token = deployment.contract(w3, "MockToken", deployment.asset)
    depositor, amount = deployment.depositors[0], 10_000 * USDC
    balance_before = token.functions.balanceOf(depositor).call()
    send(w3, token.functions.approve(vault.address, amount), depositor)
    send(w3, vault.functions.deposit(amount, depositor), depositor)
    assert vault.functions.totalAssets().call() == amount

    # 45 % moved (turnover cap 50 %), each market <= its 40 % cap, 55 % stays idle (floor 5 %)
    targets = [(deployment.markets[0].address, 2_500 * USDC), (deployment.markets[1].address, 2_000 * USDC)]
    decision = Web3.keccak(text="end-to-end decision")
    receipt = send(w3, vault.functions.rebalance(targets, decision), deployment.keeper)
    (event,) = vault.events.Rebalanced().process_receipt(receipt, errors=DISCARD)
    assert event["args"]["decision_hash"] == decision
    assert event["args"]["keeper"] == deployment.keeper
    assert (event["args"]["moved"], event["args"]["idle_after"]) == (4_500 * USDC, 5_500 * USDC)
    assert [vault.functions.position(m).call() for m, _ in targets] == [a for _, a in targets]

    w3.provider.make_request("evm_increaseTime", [30 * 24 * 3600])
    w3.provider.make_request("evm_mine", [])
    assert vault.functions.totalAssets().call() == amount  # stored accounting: gains count once reported
    assert sum(vault.functions.position(m).call() for m, _ in targets) > 4_500 * USDC  # what a report would accept
    send(w3, vault.functions.report(), deployment.keeper)
    assert vault.functions.totalAssets().call() > amount  # the markets accrued

    send(w3, vault.functions.redeem(vault.functions.balanceOf(depositor).call(), depositor, depositor), depositor)
    assert vault.functions.balanceOf(depositor).call() == 0
    assert token.functions.balanceOf(depositor).call() > balance_before

    status = vaultbot("devnet", "status", "--json", str(path))
    assert status.exit_code == 0, status.output
    assert f"devnet is up: {deployment.rpc_url}" in status.output
    assert f"vault {deployment.vault}: totalAssets" in status.output

    down = vaultbot("devnet", "down", "--json", str(path))
    assert down.exit_code == 0, down.output
    assert f"stopped anvil (pid {deployment.anvil_pid}" in down.output
    assert not is_alive(deployment.anvil_pid)
    assert not path.exists() and not (tmp_path / "anvil.pid").exists()
    assert (tmp_path / "abi" / "Vault.json").exists() and (tmp_path / "anvil.log").exists()


@pytest.mark.anvil
def test_up_twice_refuses_and_points_to_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULTBOT_HOME", str(tmp_path))  # the default location, no --json
    first = vaultbot("devnet", "up", "--markets", "1")
    assert first.exit_code == 0, first.output
    pid = Deployment.load(tmp_path / "devnet.json").anvil_pid
    try:
        second = vaultbot("devnet", "up")
        assert second.exit_code == 1
        assert f"a devnet is already running (pid {pid}" in second.output
        assert "vaultbot devnet down" in second.output
        assert is_alive(pid)
    finally:
        assert vaultbot("devnet", "down").exit_code == 0
    assert not is_alive(pid)


@pytest.mark.anvil
def test_json_option_may_name_a_directory(tmp_path: Path) -> None:
    result = vaultbot("devnet", "up", "--json", str(tmp_path), "--markets", "1")
    try:
        assert result.exit_code == 0, result.output
        assert Deployment.load(tmp_path / "devnet.json").markets[0].name == MARKET_PRESETS[0].name
    finally:
        vaultbot("devnet", "down", "--json", str(tmp_path))
    assert not (tmp_path / "anvil.pid").exists()


@contextmanager
def listening(port: int) -> Iterator[None]:
    """Something listens on `port` meanwhile: this socket, or whatever already held the port."""
    with socket.socket() as holder:
        try:
            holder.bind((HOST, port))
            holder.listen()
        except OSError:
            pass  # taken already: the same case
        yield


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@pytest.mark.anvil
def test_a_preferred_port_is_taken_when_free_and_gives_way_when_not(tmp_path: Path) -> None:
    port = free_port()
    record = start_background(tmp_path, AnvilConfig(port=port), or_any_port=True)
    try:
        assert record.rpc_url == f"http://{HOST}:{port}"
        with listening(port + 1):
            other = start_background(tmp_path / "other", AnvilConfig(port=port + 1), or_any_port=True)
            try:
                assert other.rpc_url not in (f"http://{HOST}:{port + 1}", record.rpc_url)
            finally:
                stop_background(tmp_path / "other")
    finally:
        stop_background(tmp_path)


@pytest.mark.anvil
def test_up_defaults_to_foundrys_port_and_says_when_it_is_taken(tmp_path: Path) -> None:
    assert FOUNDRY_PORT == 8545  # where Foundry's tools and keeper/example-config.toml expect a local node
    with listening(FOUNDRY_PORT):
        result = vaultbot("devnet", "up", "--json", str(tmp_path), "--markets", "1")
    try:
        assert result.exit_code == 0, result.output
        rpc_url = Deployment.load(tmp_path / "devnet.json").rpc_url
        assert rpc_url != f"http://{HOST}:{FOUNDRY_PORT}"
        assert f"port {FOUNDRY_PORT} is in use: anvil listens on {rpc_url} instead" in result.output
    finally:
        vaultbot("devnet", "down", "--json", str(tmp_path))


def test_bad_market_count_is_a_usage_error(tmp_path: Path) -> None:
    result = vaultbot("devnet", "up", "--json", str(tmp_path), "--markets", "9")
    assert result.exit_code == 2
    assert "--markets" in result.output and "markets must be between 1 and 8, got 9" in result.output
    assert not (tmp_path / "anvil.pid").exists()


def test_unreadable_pidfile_is_reported_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "anvil.pid").write_text("not json")
    result = vaultbot("devnet", "status", "--json", str(tmp_path))
    assert result.exit_code == 1
    assert f"unreadable pidfile {tmp_path / 'anvil.pid'}" in result.output


def test_down_with_nothing_running_says_so_and_succeeds(tmp_path: Path) -> None:
    result = vaultbot("devnet", "down", "--json", str(tmp_path / "devnet.json"))
    assert result.exit_code == 0
    assert "no devnet is running" in result.output


def test_status_with_nothing_running_fails(tmp_path: Path) -> None:
    result = vaultbot("devnet", "status", "--json", str(tmp_path / "devnet.json"))
    assert result.exit_code == 1
    assert f"no devnet is running for {tmp_path / 'devnet.json'}" in result.output
    assert "vaultbot devnet up --json" in result.output

"""`vaultbot vault ...` against the devnet on a real anvil: every command, and every refusal the vault can
give, found before anything is sent (the account's nonce does not move)."""

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import Result

from chain.params import Param
from chain.vault_reader import VaultReader
from strategy.guardrails import market_cap
from strategy.units import format_units
from tests.cli import vaultbot
from tests.depositor.conftest import (
    SHARE,
    USDC,
    deposit_directly,
    lock_in_markets,
    position_leaving_dust,
    propose_directly,
    token,
    transact,
    vault_contract,
)
from tests.keeper.decision_screens import assert_shows_the_decision, decision_table, table_rows
from tests.keeper.keeper_world import (
    artifact_dir,
    config_file,
    config_of,
    funded,
    keeper_table,
    llama,
    once_rebalancing,
)

if TYPE_CHECKING:
    from web3 import Web3

    from chain.deployment import Deployment

pytestmark = pytest.mark.anvil

DEPOSITOR_INDEX = 3  # anvil account 3 = devnet.depositors[0]


def vault_cli(devnet_json: Path, *args: str, input: str | None = None) -> Result:
    return vaultbot("vault", *args, "--json", str(devnet_json), input=input)


def act(devnet_json: Path, *args: str) -> Result:
    return vault_cli(devnet_json, *args, "--account", str(DEPOSITOR_INDEX), "--yes")


def test_info_shows_figures_allocation_and_guardrails(devnet_json: Path, devnet: "Deployment") -> None:
    result = vault_cli(devnet_json, "info")
    assert result.exit_code == 0, result.output
    for text in ("vaultbot USDC (vbUSD)", "total assets", "0.00 USDC", "1.00 USDC per share", "idle floor",
                 "5 % of total assets", "max turnover per rebalance", "50 %", "min time between rebalances",
                 "1 h", "timelock on loosening", "1 d", "deposit limit", "none", *[m.name for m in devnet.markets]):
        assert text in result.output, text


def test_info_shows_each_rebalance_with_whole_hashes(devnet_json: Path, w3: "Web3", devnet: "Deployment",
                                                     chain_snapshot: None) -> None:
    deposit_directly(w3, devnet, devnet.depositors[0], 10_000 * USDC)
    lock_in_markets(w3, devnet, 4_000 * USDC, 1_000 * USDC)  # a rebalance with decision hash 0x0101...01
    [event] = vault_contract(w3, devnet).events.Rebalanced().get_logs(from_block=devnet.deployed_at)
    tx_hash = event["transactionHash"].to_0x_hex()
    result = vault_cli(devnet_json, "info")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()  # each hash whole on one line, so that it can be copied
    assert "  vaultbot keeper verify " + tx_hash in lines, result.output
    assert any(line.endswith(f"moved 5,000.00 USDC, total after 10,000.00 USDC, decision 0x{'01' * 32}")
               for line in lines), result.output


def test_info_flags_the_limits_a_large_withdrawal_left_the_vault_outside_of_not_a_days_interest(
        devnet_json: Path, w3: "Web3", devnet: "Deployment", chain_snapshot: None) -> None:
    depositor = devnet.depositors[0]
    deposit_directly(w3, devnet, depositor, 10_000 * USDC)
    lock_in_markets(w3, devnet, 4_000 * USDC, 1_000 * USDC)  # the first market at its 40 % cap
    w3.provider.make_request("evm_increaseTime", [86_400])
    w3.provider.make_request("evm_mine", [])
    reader = VaultReader(w3, devnet.vault, devnet)
    rails, state = reader.guardrails_and_state()
    first = devnet.markets[0].address
    # a day of 4.2 % on 4,000 carried it past its cap (about 0.2 USDC, 0.2 bps): drift, not a breach
    assert state.position(first) > market_cap(state.total, rails.markets[first])
    before = vault_cli(devnet_json, "info")
    assert before.exit_code == 0 and "OUTSIDE" not in before.output, before.output
    # 4,900 of the 5,000 idle leave: 100 idle of 5,100 (floor 5 % = 255), the first market 4,000 (cap 40 % = 2,040)
    transact(w3, vault_contract(w3, devnet).functions.withdraw(4_900 * USDC, depositor, depositor), depositor)
    result = vault_cli(devnet_json, "info")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "OUTSIDE THE VAULT'S LIMITS" in text, result.output
    # plus the day's interest: a few tenths of a USDC more than the round figures
    assert re.search(r"idle is 155\.\d+ USDC below its floor of 255\.\d+ USDC", text), result.output
    assert re.search(f"{devnet.markets[0].name} is 1,960\\.\\d+ USDC over its cap of 2,040\\.\\d+ USDC",
                     text), result.output


def test_info_measures_the_apy_of_a_market_without_a_rate_from_its_share_price(
        devnet_json: Path, w3: "Web3", devnet: "Deployment", chain_snapshot: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plain ERC-4626 (tests/contracts/HostileMarket.vy, left honest: no `rate_per_second`) whose share price
    rises 1 bp over the last day: its APY is that growth, annualised, and the vault's current APY counts it."""
    from chain.artifacts import compile_contracts

    monkeypatch.setenv("COLUMNS", "240")  # wide enough that no table cell wraps
    artifact = compile_contracts(Path(__file__).parents[1] / "contracts")["HostileMarket"]
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    receipt = transact(w3, factory.constructor(devnet.asset, "Plain ERC-4626", "p4626", devnet.admin), devnet.admin)
    market = w3.eth.contract(address=receipt["contractAddress"], abi=artifact.abi)
    vault = vault_contract(w3, devnet)
    transact(w3, vault.functions.submit_market(market.address, 4_000, 10**15), devnet.admin)
    w3.provider.make_request("evm_increaseTime", [vault.functions.timelock().call()])  # listing is queued
    w3.provider.make_request("evm_mine", [])
    transact(w3, vault.functions.accept_market(market.address), devnet.admin)
    deposit_directly(w3, devnet, devnet.depositors[0], 10_000 * USDC)
    moved = transact(w3, vault.functions.rebalance([(market.address, 2_000 * USDC)], b"\x05" * 32), devnet.keeper)
    w3.provider.make_request("evm_increaseTime", [25 * 3_600])
    WAD = 10**18
    raised = transact(w3, market.functions.set_price_factor(WAD + WAD // 10_000), devnet.admin)

    span = (w3.eth.get_block(raised["blockNumber"])["timestamp"]
            - w3.eth.get_block(moved["blockNumber"])["timestamp"])  # the last block a day or more before: the move
    apy = 1.0001 ** (365 * 86_400 / span) - 1
    result = vault_cli(devnet_json, "info")
    assert result.exit_code == 0, result.output
    [row] = [cells for name, cells in table_rows(result.output, 6).items() if name == "Plain ERC-4626"]
    assert row[-1] == f"{apy * 100:.2f} %", (row, apy)
    position = vault.functions.position(market.address).call()
    held = token(w3, devnet).functions.balanceOf(devnet.vault).call() + position  # the other markets hold nothing
    assert f"│ {position * apy / held * 100:.2f} %" in result.output, result.output  # the current APY


def test_info_shows_the_devnet_keepers_forecasts_next_to_the_rates_on_chain_and_why(
        w3: "Web3", funded: "Deployment", keeper_table: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The devnet keeper's journal lies next to the deployment JSON (`keeper_table` puts both in tmp_path, as the
    devnet does): `vault info` finds it, with the devnet keeper's settings, without being told."""
    monkeypatch.setenv("COLUMNS", "240")  # wide enough that no table cell wraps
    once_rebalancing(w3, funded, config_file(keeper_table, tmp_path))
    result = vaultbot("vault", "info", "--json", str(tmp_path / "devnet.json"))
    assert result.exit_code == 0, result.output
    assert_shows_the_decision(decision_table(result.output), result.output.splitlines(), w3, funded,
                              config_of(keeper_table))


def test_balance(devnet_json: Path, devnet: "Deployment") -> None:
    result = vault_cli(devnet_json, "balance", "--account", devnet.depositors[0])
    assert result.exit_code == 0, result.output
    assert "100,000.00 USDC" in result.output and "0.00 vbUSD shares" in result.output


def test_deposit_approves_once_then_deposits(devnet_json: Path, w3: "Web3", devnet: "Deployment",
                                             chain_snapshot: None) -> None:
    account = devnet.depositors[0]
    first = act(devnet_json, "deposit", "1,000")
    assert first.exit_code == 0, first.output
    assert "approve the vault to take 1,000.00 USDC" in first.output
    assert "deposited 1,000.00 USDC for 1,000.00 vbUSD shares" in first.output
    assert vault_contract(w3, devnet).functions.balanceOf(account).call() == 1_000 * SHARE
    assert token(w3, devnet).functions.balanceOf(account).call() == 99_000 * USDC

    transact(w3, token(w3, devnet).functions.approve(devnet.vault, 10_000 * USDC), account)
    nonce = w3.eth.get_transaction_count(account)
    second = act(devnet_json, "deposit", "500")
    assert second.exit_code == 0, second.output
    assert "approve" not in second.output
    assert w3.eth.get_transaction_count(account) == nonce + 1, "enough allowance: one transaction"
    assert vault_contract(w3, devnet).functions.balanceOf(account).call() == 1_500 * SHARE


def test_deposit_asks_first_and_sends_nothing_on_no(devnet_json: Path, w3: "Web3", devnet: "Deployment") -> None:
    account = devnet.depositors[0]
    nonce = w3.eth.get_transaction_count(account)
    result = vault_cli(devnet_json, "deposit", "10", "--account", account, input="n\n")
    assert result.exit_code == 0, "declining is the user's choice, not a failure"
    assert "shares minted" in result.output
    assert result.output.strip().splitlines()[-1].endswith("cancelled, nothing sent")
    assert "error" not in result.output
    assert w3.eth.get_transaction_count(account) == nonce


def test_declining_to_answer_a_proposal_sends_nothing(devnet_json: Path, w3: "Web3", devnet: "Deployment",
                                                      chain_snapshot: None) -> None:
    proposal_id = propose_directly(w3, devnet, 1_000 * USDC)
    nonce = w3.eth.get_transaction_count(devnet.guardian)
    result = vault_cli(devnet_json, "approve", proposal_id, "--account", "2", input="n\n")  # anvil 2: the guardian
    assert result.exit_code == 0 and "error" not in result.output
    assert result.output.strip().splitlines()[-1].endswith("cancelled, nothing sent")
    assert w3.eth.get_transaction_count(devnet.guardian) == nonce
    assert vault_contract(w3, devnet).functions.proposals(proposal_id).call()[1] is False


def test_withdraw_and_redeem(devnet_json: Path, w3: "Web3", devnet: "Deployment", chain_snapshot: None) -> None:
    account = devnet.depositors[0]
    deposit_directly(w3, devnet, account, 2_000 * USDC)
    withdrawn = act(devnet_json, "withdraw", "750.5")
    assert withdrawn.exit_code == 0, withdrawn.output
    assert "withdrew 750.50 USDC, burning 750.50 vbUSD shares" in withdrawn.output
    assert token(w3, devnet).functions.balanceOf(account).call() == 98_750_500_000

    redeemed = act(devnet_json, "redeem", "all")
    assert redeemed.exit_code == 0, redeemed.output
    assert "withdrew 1,249.50 USDC, burning 1,249.50 vbUSD shares" in redeemed.output
    assert vault_contract(w3, devnet).functions.balanceOf(account).call() == 0
    assert token(w3, devnet).functions.balanceOf(account).call() == 100_000 * USDC


def test_withdraw_max_of_the_whole_position_redeems_every_share(devnet_json: Path, w3: "Web3", devnet: "Deployment",
                                                                chain_snapshot: None) -> None:
    account, shares, worth = position_leaving_dust(w3, devnet)
    vault = vault_contract(w3, devnet)

    result = act(devnet_json, "withdraw", "max")
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert f"withdrawing everything: redeeming all {format_units(shares, 18, 'vbUSD shares')}" in output
    assert f"burning {format_units(shares, 18, 'vbUSD shares')}" in output
    assert vault.functions.balanceOf(account).call() == 0, "no share dust left behind"
    assert token(w3, devnet).functions.balanceOf(account).call() == 98_000 * USDC + worth


def test_withdraw_max_keeps_a_max_shares_guard(devnet_json: Path, w3: "Web3", devnet: "Deployment",
                                               chain_snapshot: None) -> None:
    account = devnet.depositors[0]
    deposit_directly(w3, devnet, account, 100 * USDC)
    output = refused(devnet_json, w3, account, "withdraw", "max", "--max-shares", "99")
    assert ("withdrawing everything burns all 100.00 vbUSD shares, past the maximum of 99.00 vbUSD shares"
            in output) and "--max-shares" in output


def refused(devnet_json: Path, w3: "Web3", account: str, *args: str) -> str:
    """Runs an action that must be refused before sending; returns the error output."""
    nonce = w3.eth.get_transaction_count(account)
    result = act(devnet_json, *args)
    assert result.exit_code == 1, result.output
    assert w3.eth.get_transaction_count(account) == nonce, "a refusal sends nothing"
    return " ".join(result.output.split())  # rich wraps long lines


def test_refuses_deposit_while_paused(devnet_json: Path, w3: "Web3", devnet: "Deployment",
                                      chain_snapshot: None) -> None:
    transact(w3, vault_contract(w3, devnet).functions.pause(), devnet.guardian)
    output = refused(devnet_json, w3, devnet.depositors[0], "deposit", "10")
    assert "error: the vault is paused: deposits are stopped" in output


def test_refuses_deposit_over_the_limit(devnet_json: Path, w3: "Web3", devnet: "Deployment",
                                        chain_snapshot: None) -> None:
    vault_contract(w3, devnet).functions.submit_param(Param.DEPOSIT_LIMIT, 5_000 * USDC).transact(
        {"from": devnet.admin})  # lowering the limit is a tightening: it applies at once
    deposit_directly(w3, devnet, devnet.depositors[1], 4_000 * USDC)
    output = refused(devnet_json, w3, devnet.depositors[0], "deposit", "1000.01")
    assert ("over the deposit limit: the vault takes at most 1,000.00 USDC now (limit 5,000.00 USDC, "
            "total assets 4,000.00 USDC); asked to deposit 1,000.01 USDC") in output


def test_refuses_deposit_beyond_the_wallet(devnet_json: Path, w3: "Web3", devnet: "Deployment") -> None:
    output = refused(devnet_json, w3, devnet.depositors[0], "deposit", "100000.000001")
    assert (f"insufficient balance: {devnet.depositors[0]} holds 100,000.00 USDC, "
            f"the deposit needs 100,000.000001 USDC") in output


def test_refuses_withdraw_and_redeem_beyond_the_shares(devnet_json: Path, w3: "Web3", devnet: "Deployment",
                                                       chain_snapshot: None) -> None:
    account = devnet.depositors[0]
    deposit_directly(w3, devnet, account, 100 * USDC)
    assert "insufficient balance" in refused(devnet_json, w3, account, "withdraw", "100.01")
    assert (f"insufficient balance: {account} holds 100.00 vbUSD shares, asked to redeem 101.00 vbUSD shares"
            in refused(devnet_json, w3, account, "redeem", "101"))


def test_refuses_what_is_not_liquid(devnet_json: Path, w3: "Web3", devnet: "Deployment",
                                    chain_snapshot: None) -> None:
    account = devnet.depositors[0]
    deposit_directly(w3, devnet, account, 10_000 * USDC)
    lock_in_markets(w3, devnet, 4_000 * USDC, 1_000 * USDC)  # 5,000 stay idle; the markets pay nothing out
    output = refused(devnet_json, w3, account, "withdraw", "6000")
    assert "not enough liquidity: the vault can pay out only 5,000.00 USDC" in output
    assert "not enough liquidity: the vault can redeem only " in refused(
        devnet_json, w3, account, "redeem", "6000")
    partial = act(devnet_json, "withdraw", "max")
    assert partial.exit_code == 0, partial.output
    assert "withdrew 5,000.00 USDC" in partial.output


def test_guard_refuses_a_worse_outcome(devnet_json: Path, w3: "Web3", devnet: "Deployment") -> None:
    account = devnet.depositors[0]
    output = refused(devnet_json, w3, account, "deposit", "100", "--min-shares", "100.000001")
    assert "price moved past the guard: the deposit would mint 100.00 vbUSD shares" in output
    assert "--min-shares" in output


@pytest.mark.parametrize(("args", "message"), [
    (("deposit", "ten"), "AMOUNT: 'ten' is not a number"),
    (("deposit", "1.0000001"), "AMOUNT: '1.0000001' has more than 6 decimal places"),
    (("redeem", "0"), "SHARES: must be more than 0"),
    (("deposit", "1", "--slippage", "200%"), "--slippage: '200%' must be a whole number of basis points"),
    (("deposit", "1", "--min-shares", "x"), "--min-shares: 'x' is not a number"),
])
def test_bad_input_exits_2_naming_it(devnet_json: Path, args: tuple[str, ...], message: str) -> None:
    result = act(devnet_json, *args)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_bad_account(devnet_json: Path) -> None:
    result = vault_cli(devnet_json, "deposit", "1", "--account", "99", "--yes")
    assert result.exit_code == 2
    assert "--account 99: the node has 10 unlocked accounts (0..9)" in result.output
    stranger = vault_cli(devnet_json, "deposit", "1", "--account", "0x" + "ab" * 20, "--yes")
    assert stranger.exit_code == 2 and "does not hold" in stranger.output and "unlocked" in stranger.output
    for digit in ("\u00b3", "\u0663"):  # a superscript three (int() refuses it: a traceback), an Arabic-Indic one
        for command in (("deposit", "1", "--yes"), ("balance",)):
            result = vault_cli(devnet_json, *command, "--account", digit)
            assert result.exit_code == 2, result.output
            assert f"--account '{digit}': not an anvil account index" in result.output


def test_missing_deployment_names_the_way_out(tmp_path: Path) -> None:
    result = vaultbot("vault", "info", "--json", str(tmp_path / "none.json"))
    assert result.exit_code == 2
    assert "give --rpc and --vault, or start a devnet" in result.output


def test_keystore_account_signs_locally(devnet_json: Path, w3: "Web3", devnet: "Deployment", tmp_path: Path,
                                        chain_snapshot: None) -> None:
    from eth_account import Account

    owner = Account.create()
    keystore = tmp_path / "depositor.json"
    keystore.write_text(json.dumps(Account.encrypt(owner.key, "correct horse")))
    password = tmp_path / "password"
    password.write_text("correct horse")
    w3.eth.send_transaction({"from": devnet.admin, "to": owner.address, "value": 10**18})  # gas money
    transact(w3, token(w3, devnet).functions.mint(owner.address, 50 * USDC), devnet.admin)

    balance = vault_cli(devnet_json, "balance", "--account", str(keystore))  # the address needs no password
    assert balance.exit_code == 0, balance.output
    assert "50.00 USDC" in balance.output
    result = vault_cli(devnet_json, "deposit", "20", "--account", str(keystore), "--password-file", str(password),
                       "--yes")
    assert result.exit_code == 0, result.output
    assert "deposited 20.00 USDC for 20.00 vbUSD shares" in result.output
    assert vault_contract(w3, devnet).functions.balanceOf(owner.address).call() == 20 * SHARE
    assert w3.eth.get_transaction_count(owner.address) == 2, "approve + deposit, signed locally"


def test_a_keystore_nested_past_any_json_reader_is_one_line(devnet_json: Path, tmp_path: Path) -> None:
    keystore = tmp_path / "deep.json"
    keystore.write_text("[" * 200_000 + "]" * 200_000)  # json.loads would overflow the C stack
    result = vault_cli(devnet_json, "balance", "--account", str(keystore))
    assert result.exit_code != 0
    assert "not a readable keystore JSON" in result.output and "nested deeper than" in result.output
    assert "Traceback" not in result.output


def test_a_base_fee_above_the_fee_cap_sends_nothing_and_says_so(devnet_json: Path, w3: "Web3", devnet: "Deployment",
                                                                 tmp_path: Path, chain_snapshot: None) -> None:
    from eth_account import Account

    owner = Account.create()
    keystore = tmp_path / "depositor.json"
    keystore.write_text(json.dumps(Account.encrypt(owner.key, "pw")))
    (tmp_path / "password").write_text("pw")
    w3.eth.send_transaction({"from": devnet.admin, "to": owner.address, "value": 10**18})
    transact(w3, token(w3, devnet).functions.mint(owner.address, 50 * USDC), devnet.admin)
    w3.provider.make_request("anvil_setNextBlockBaseFeePerGas", [hex(500 * 10**9)])  # above the 100 gwei cap
    w3.provider.make_request("evm_mine", [])

    result = vault_cli(devnet_json, "deposit", "20", "--account", str(keystore), "--password-file",
                       str(tmp_path / "password"), "--yes")
    assert result.exit_code == 1, result.output
    assert "not sent:" in result.output and "Traceback" not in result.output
    assert w3.eth.get_transaction_count(owner.address) == 0


def test_the_guardian_approves_a_proposal_and_another_account_is_refused(
        devnet_json: Path, w3: "Web3", devnet: "Deployment", chain_snapshot: None) -> None:
    proposal_id = propose_directly(w3, devnet, 1_000 * USDC)
    vault = vault_contract(w3, devnet)
    nonce = w3.eth.get_transaction_count(devnet.depositors[0])
    stranger = vault_cli(devnet_json, "approve", proposal_id, "--account", str(DEPOSITOR_INDEX), "--yes")
    assert stranger.exit_code == 1
    [line] = stranger.output.strip().splitlines()
    assert line == (f"error: {devnet.depositors[0]} is not the vault's guardian ({devnet.guardian}): only the "
                    "guardian may approve a proposal")
    assert w3.eth.get_transaction_count(devnet.depositors[0]) == nonce
    assert vault.functions.proposals(proposal_id).call()[1] is False

    approved = vault_cli(devnet_json, "approve", proposal_id, "--account", "2", "--yes")  # anvil 2: the guardian
    assert approved.exit_code == 0, approved.output
    assert f"approved proposal {proposal_id} in block" in approved.output and "decision hash" in approved.output
    assert vault.functions.proposals(proposal_id).call()[1] is True
    info = " ".join(vault_cli(devnet_json, "info").output.split())
    assert f"proposal {proposal_id} (approved: the keeper runs it at its next cycle)" in info


def test_the_guardian_rejects_a_proposal_and_a_bad_or_gone_id_is_one_line(
        devnet_json: Path, w3: "Web3", devnet: "Deployment", chain_snapshot: None) -> None:
    proposal_id = propose_directly(w3, devnet, 1_000 * USDC)
    rejected = vault_cli(devnet_json, "reject", proposal_id, "--account", "2", "--yes")
    assert rejected.exit_code == 0, rejected.output
    assert vault_contract(w3, devnet).functions.proposals(proposal_id).call() == (0, False)
    gone = vault_cli(devnet_json, "approve", proposal_id, "--account", "2", "--yes")
    assert gone.exit_code == 1 and gone.output.strip().splitlines() == [
        f"error: no live proposal {proposal_id}: it ran, expired or was rejected (`vaultbot keeper status` lists the "
        "live ones)"]
    bad = vault_cli(devnet_json, "reject", "0x1234", "--account", "2", "--yes")
    assert bad.exit_code == 2 and "ID must be a proposal id (0x + 64 hex digits), got '0x1234'" in bad.output

"""The page's JSON API on the devnet: account figures, plans for the wallet, wallet errors explained
(a revert caught while estimating, a mined revert, a rejection), results of mined transactions, and
`vaultbot web` itself serving it."""

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import requests
from eth_abi import decode
from web3 import Web3

from tests.depositor.conftest import (
    USDC,
    deposit_directly,
    position_leaving_dust,
    propose_directly,
    token,
    transact,
    vault_contract,
)

if TYPE_CHECKING:
    from chain.deployment import Deployment

pytestmark = pytest.mark.anvil

APPROVE_SELECTOR = Web3.keccak(text="approve(address,uint256)")[:4].hex()


def test_account_figures(web_url: str, w3: Web3, devnet: "Deployment", chain_snapshot: None) -> None:
    account = devnet.depositors[0]
    deposit_directly(w3, devnet, account, 250 * USDC)
    reply = requests.get(f"{web_url}/api/account", params={"address": account.lower()}, timeout=10).json()
    def shown(text: str) -> dict[str, str]:  # a round amount: its exact text is the rounded one
        return {"text": text, "exact": text}

    assert reply == {
        "address": account, "asset_balance": shown("99,750.00 USDC"), "shares": shown("250.00 vbUSD shares"),
        "value": shown("250.00 USDC"), "max_deposit": shown("99,750.00 USDC"), "max_withdraw": shown("250.00 USDC"),
        "max_withdraw_amount": "250",
    }


def test_plan_gives_the_wallet_an_approval_then_the_deposit(web_url: str, w3: Web3, devnet: "Deployment") -> None:
    account = devnet.depositors[0]
    reply = requests.post(f"{web_url}/api/plan", json={"action": "deposit", "account": account, "amount": "12.5"},
                          timeout=10).json()
    assert reply["title"] == "deposit 12.50 USDC"
    assert ["shares minted", "12.50 vbUSD shares"] in reply["lines"]
    approve, deposit = reply["steps"]
    assert approve["to"] == devnet.asset and approve["data"].removeprefix("0x").startswith(APPROVE_SELECTOR)
    spender, amount = decode(["address", "uint256"], bytes.fromhex(approve["data"][10:]))
    assert (Web3.to_checksum_address(spender), amount) == (devnet.vault, 12_500_000)
    assert deposit["to"] == devnet.vault
    assert reply["guard"] == str(12_500_000 * 10**12 * 9_950 // 10_000)  # 0.5 % below the preview


def test_withdrawing_max_of_a_whole_position_redeems_every_share(web_url: str, w3: Web3, devnet: "Deployment",
                                                                 chain_snapshot: None) -> None:
    account, _, worth = position_leaving_dust(w3, devnet)
    request = {"action": "withdraw", "account": account, "amount": "max"}
    preview = requests.post(f"{web_url}/api/plan", json=request, timeout=30).json()
    # the page confirms by asking again with the guard it showed: the redemption's minimum of assets paid
    confirmed = requests.post(f"{web_url}/api/plan", json={**request, "guard": preview["guard"]}, timeout=30)
    assert confirmed.status_code == 200, confirmed.text
    [step] = confirmed.json()["steps"]
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_transaction({"from": account, "to": step["to"], "data": step["data"]}))
    assert receipt["status"] == 1
    assert vault_contract(w3, devnet).functions.balanceOf(account).call() == 0, "no share dust left behind"
    assert token(w3, devnet).functions.balanceOf(account).call() == 98_000 * USDC + worth


def test_withdrawing_max_keeps_the_guard_the_page_showed(web_url: str, w3: Web3, devnet: "Deployment",
                                                         chain_snapshot: None) -> None:
    account = devnet.depositors[0]
    deposit_directly(w3, devnet, account, 100 * USDC)
    request = {"action": "withdraw", "account": account, "amount": "max"}
    beyond = requests.post(f"{web_url}/api/plan", json={**request, "guard": str(100 * USDC + 1)}, timeout=30)
    assert beyond.status_code == 422  # more assets than the redemption pays
    assert "the redemption would pay 100.00 USDC, past the minimum of 100.000001 USDC" in beyond.json()["error"]


@pytest.mark.parametrize(("body", "message"), [
    ({"action": "mint", "account": "0x" + "1" * 40, "amount": "1"}, "action must be one of deposit, withdraw, redeem"),
    ({"action": "deposit", "account": "me", "amount": "1"}, "account must be an address"),
    ({"action": "deposit", "account": "0x" + "1" * 40, "amount": ""}, "AMOUNT: '' is not a number"),
    ({"action": "deposit", "account": "0x" + "1" * 40, "amount": "1", "guard": "-3"}, "guard must be a whole number"),
    # absurd values: each used to end in a 500 (Decimal's 28 digits, int() of a huge or non-ASCII string)
    ({"action": "deposit", "account": "0x" + "1" * 40, "amount": "1e400"}, "AMOUNT: '1e400' is more than any token"),
    ({"action": "deposit", "account": "0x" + "1" * 40, "amount": 1e308}, "AMOUNT: '1e+308' is more than any token"),
    ({"action": "redeem", "account": "0x" + "1" * 40, "amount": "1e-400"}, "SHARES: '1e-400' has more than 18 decimal"),
    ({"action": "deposit", "account": "0x" + "1" * 40, "amount": "9" * 500}, "AMOUNT: too long"),
    ({"action": "deposit", "account": "0x" + "1" * 40, "amount": "1", "guard": "²"}, "guard must be a whole number"),
    ({"action": "deposit", "account": "0x" + "1" * 40, "amount": "1", "guard": "9" * 5000},
     "guard must be a whole number"),
    ({"action": "deposit", "account": "0x" + "1" * 40_000, "amount": "1"}, "account must be an address"),
])
def test_plan_rejects_bad_requests(web_url: str, body: dict, message: str) -> None:
    reply = requests.post(f"{web_url}/api/plan", json=body, timeout=10)
    assert reply.status_code == 400
    assert reply.json()["error"].startswith(message)
    assert len(reply.json()["error"]) < 300  # a bad value is quoted, never echoed whole


@pytest.mark.parametrize(("action", "amount", "message"), [
    ("deposit", "1e30", "insufficient balance"), ("withdraw", "1e60", "insufficient balance"),
    ("redeem", "1e59", "insufficient balance"),
])
def test_amounts_beyond_any_supply_are_a_422_naming_the_limit(web_url: str, devnet: "Deployment", action: str,
                                                             amount: str, message: str) -> None:
    reply = requests.post(f"{web_url}/api/plan", timeout=10,
                          json={"action": action, "account": devnet.depositors[0], "amount": amount})
    assert reply.status_code == 422
    assert reply.json()["error"].startswith(message)


def test_plan_refusal_is_a_422(web_url: str, devnet: "Deployment") -> None:
    reply = requests.post(f"{web_url}/api/plan", timeout=10,
                          json={"action": "withdraw", "account": devnet.depositors[0], "amount": "1"})
    assert reply.status_code == 422
    assert reply.json()["error"].startswith("insufficient balance")


def test_explain_a_revert_the_wallet_reports(web_url: str, w3: Web3, devnet: "Deployment",
                                             chain_snapshot: None) -> None:
    vault = vault_contract(w3, devnet)
    transact(w3, vault.functions.pause(), devnet.guardian)
    call = {"from": devnet.depositors[0], "to": devnet.vault,
            "data": vault.encode_abi("deposit", args=[USDC, devnet.depositors[0]])}
    error = w3.provider.make_request("eth_estimateGas", [call])["error"]  # what a wallet hands the page
    reply = requests.post(f"{web_url}/api/explain", json={"message": error["message"], "data": error.get("data")},
                          timeout=10).json()
    assert reply["error"].startswith("the vault is paused: deposits are stopped")
    assert reply["error"].endswith("[vault: paused]")


def test_explain_a_mined_revert_by_replaying_it(web_url: str, w3: Web3, devnet: "Deployment",
                                                chain_snapshot: None) -> None:
    account = devnet.depositors[0]
    deposit_directly(w3, devnet, account, 10 * USDC)
    # a fixed gas limit skips estimation, so the node mines the failing transaction
    tx = vault_contract(w3, devnet).functions.withdraw(11 * USDC, account, account).transact(
        {"from": account, "gas": 500_000})
    # eth_sendTransaction answers once the transaction is in the pool; anvil mines it a moment later, so a receipt
    # asked at once may not be there yet (TransactionNotFound on a loaded machine)
    assert w3.eth.wait_for_transaction_receipt(tx, timeout=30)["status"] == 0
    reply = requests.post(f"{web_url}/api/explain", json={"message": "reverted", "data": {"txHash": tx.to_0x_hex()}},
                          timeout=10).json()
    assert reply["error"].startswith(f"transaction {tx.to_0x_hex()} reverted: not enough liquidity or shares")
    assert reply["error"].endswith("[vault: withdraw more than max]")


def test_explain_a_rejection_and_unknown_errors(web_url: str) -> None:
    rejected = requests.post(f"{web_url}/api/explain", json={"message": "User rejected", "code": 4001}, timeout=10)
    assert rejected.json() == {"error": "you rejected the transaction in the wallet; nothing was sent"}
    other = requests.post(f"{web_url}/api/explain", json={"message": "insufficient funds for gas"}, timeout=10)
    assert other.json() == {"error": "the wallet refused: insufficient funds for gas"}


def test_result_describes_a_mined_transaction(web_url: str, w3: Web3, devnet: "Deployment",
                                              chain_snapshot: None) -> None:
    account = devnet.depositors[0]
    deposit_directly(w3, devnet, account, 3 * USDC)
    tx = transact(w3, vault_contract(w3, devnet).functions.redeem(10**18, account, account), account)["transactionHash"]
    reply = requests.get(f"{web_url}/api/result", params={"tx": tx.to_0x_hex()}, timeout=10).json()
    assert reply == {"message": "withdrew 1.00 USDC, burning 1.00 vbUSD shares"}
    unknown = requests.get(f"{web_url}/api/result", params={"tx": "0x" + "0" * 64}, timeout=10)
    assert unknown.status_code == 400 and unknown.json()["error"].startswith("no mined transaction")


def test_vaultbot_web_serves_the_page(devnet_json: Path, tmp_path: Path) -> None:
    command = [str(Path(sys.executable).with_name("vaultbot")), "web", "--port", "0", "--json", str(devnet_json),
               "--allowed-host", "vault.example.com", "--timeout", "2"]
    # started as a background job of a shell starts it (`vaultbot web &`): with SIGINT ignored, which Python keeps
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "COLUMNS": "200"},
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        line = process.stdout.readline()  # printed once it listens
        assert "serving http://127.0.0.1:" in line, line + process.stdout.read()
        url = line.split("serving ", 1)[1].split("/ ", 1)[0]
        assert requests.get(url + "/", timeout=10).status_code == 200
        figures = requests.get(url + "/api/vault", timeout=30).json()
        assert figures["vault"]["address"] == Web3.to_checksum_address(figures["vault"]["address"])
        assert figures["keeper"]["summary"] == "no keeper data"
        assert requests.get(url + "/", headers={"Host": "vault.example.com"}, timeout=10).status_code == 200
        assert requests.get(url + "/", headers={"Host": "evil.example"}, timeout=10).status_code == 421
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0


def test_the_vault_figures_show_a_waiting_proposal_the_budgets_and_the_last_report(
        web_url: str, w3: Web3, devnet: "Deployment", chain_snapshot: None) -> None:
    proposal_id = propose_directly(w3, devnet, 1_000 * USDC)
    figures = requests.get(f"{web_url}/api/vault", timeout=30).json()
    [proposal] = figures["proposals"]
    deadline = vault_contract(w3, devnet).functions.proposals(proposal_id).call()[0]
    assert proposal == {
        "id": proposal_id, "decision_hash": "0x" + "02" * 32, "approved": False,
        "deadline": f"{datetime.fromtimestamp(deadline, UTC):%Y-%m-%d %H:%M:%S} UTC",
        "allocations": [{"market": devnet.markets[0].address,
                         "target": {"text": "1,000.00 USDC", "exact": "1,000.00 USDC"}}],
    }
    rows = dict(figures["guardrails"])
    assert rows["daily loss budget left"] == "0.1 % of 0.1 %" and rows["daily turnover budget left"] == "200 % of 200 %"
    last_report = vault_contract(w3, devnet).functions.last_report().call()
    assert figures["last_report"] == f"{datetime.fromtimestamp(last_report, UTC):%Y-%m-%d %H:%M:%S} UTC"
    page = requests.get(f"{web_url}/", timeout=10).text
    assert 'id="proposals"' in page and 'id="last-report"' in page

"""The depositor page in a real browser: Debian's headless chromium driven by Playwright, a test EIP-1193
wallet bridging to anvil for an unlocked depositor account, the devnet vault on a real anvil.

Chromium is not optional: `./run setup` installs it, so a missing /usr/bin/chromium fails these tests.
"""

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from werkzeug import Response

from tests.conftest import REPO_ROOT
from tests.depositor.conftest import SHARE, USDC, deposit_directly, vault_contract

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page
    from pytest_httpserver import HTTPServer
    from web3 import Web3

    from chain.deployment import Deployment
    from depositor.vault import DepositorVault
    from devnet.anvil import AnvilProcess

pytestmark = [pytest.mark.anvil, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WALLET_JS = Path(__file__).with_name("eip1193_provider.js")
ARTIFACTS = REPO_ROOT / "test-artifacts"
UI_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def browser() -> Iterator["Browser"]:
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: run `./run setup` (it installs Debian's chromium with apt-get)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: "Browser", anvil: "AnvilProcess", devnet: "Deployment") -> Iterator["Page"]:
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1100, "height": 1600})
    context.add_init_script(f"window.__vaultbotWallet = {{rpcUrl: {anvil.rpc_url!r}, "
                            f"account: {devnet.depositors[1]!r}}};")
    context.add_init_script(path=str(WALLET_JS))
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.set_default_timeout(UI_TIMEOUT_MS)
    expect.set_options(timeout=UI_TIMEOUT_MS)
    yield page
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def _shares(w3: "Web3", devnet: "Deployment", account: str) -> int:
    return vault_contract(w3, devnet).functions.balanceOf(account).call()


def _usdc(w3: "Web3", devnet: "Deployment", account: str) -> int:
    return devnet.contract(w3, "MockToken", devnet.asset).functions.balanceOf(account).call()


def _act(page: "Page", form: str, amount: str) -> None:
    page.fill(f"#{form}-amount", amount)
    page.click(f"#{form}-form button[type=submit]")
    page.wait_for_selector("#preview:not([hidden])")
    page.click("#confirm")


def test_deposit_and_withdraw_through_the_injected_wallet(
        page: "Page", web_url: str, w3: "Web3", devnet: "Deployment", chain_snapshot: None) -> None:
    from playwright.sync_api import expect

    account = devnet.depositors[1]
    usdc_before = _usdc(w3, devnet, account)
    assert _shares(w3, devnet, account) == 0

    page.goto(web_url)
    expect(page.locator("#vault-name")).to_have_text("vaultbot USDC (vbUSD)")
    expect(page.locator("#allocation tbody tr")).to_have_count(len(devnet.markets) + 1)  # markets + idle
    expect(page.locator("#keeper-health")).to_have_text("no keeper data")

    page.click("#connect")
    expect(page.locator("#account")).to_have_text(account)
    expect(page.locator("#asset-balance")).to_have_text("100,000.00 USDC")
    expect(page.locator("#share-balance")).to_have_text("0.00 vbUSD shares")

    _act(page, "deposit", "1,500")
    expect(page.locator("#action-status")).to_have_text("deposited 1,500.00 USDC for 1,500.00 vbUSD shares")
    expect(page.locator("#asset-balance")).to_have_text("98,500.00 USDC")
    expect(page.locator("#total-assets")).to_have_text("1,500.00 USDC")
    sent = page.evaluate("window.__sentTransactions.length")
    assert sent == 2, "a first deposit approves, then deposits"
    assert _usdc(w3, devnet, account) == usdc_before - 1_500 * USDC
    assert _shares(w3, devnet, account) == 1_500 * SHARE

    _act(page, "withdraw", "400")
    expect(page.locator("#action-status")).to_have_text("withdrew 400.00 USDC, burning 400.00 vbUSD shares")
    expect(page.locator("#asset-balance")).to_have_text("98,900.00 USDC")
    expect(page.locator("#share-value")).to_have_text("1,100.00 USDC")
    assert page.evaluate("window.__sentTransactions.length") == 3, "a withdrawal needs no approval"
    assert _usdc(w3, devnet, account) == usdc_before - 1_100 * USDC
    assert _shares(w3, devnet, account) == 1_100 * SHARE

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web.png"), full_page=True)


def test_refusals_show_the_vaults_reason_and_send_nothing(
        page: "Page", web_url: str, w3: "Web3", devnet: "Deployment", chain_snapshot: None) -> None:
    from playwright.sync_api import expect

    account = devnet.depositors[1]
    page.goto(web_url)
    page.click("#connect")
    expect(page.locator("#asset-balance")).to_have_text("100,000.00 USDC")

    page.fill("#deposit-amount", "100001")
    page.click("#deposit-form button[type=submit]")
    expect(page.locator("#action-error")).to_contain_text("insufficient balance")
    page.fill("#withdraw-amount", "5")
    page.click("#withdraw-form button[type=submit]")
    expect(page.locator("#action-error")).to_contain_text("insufficient balance")
    page.fill("#deposit-amount", "12abc")
    page.click("#deposit-form button[type=submit]")
    expect(page.locator("#action-error")).to_have_text("AMOUNT: '12abc' is not a number")

    vault_contract(w3, devnet).functions.pause().transact({"from": devnet.guardian})
    page.fill("#deposit-amount", "10")
    page.click("#deposit-form button[type=submit]")
    expect(page.locator("#action-error")).to_contain_text("the vault is paused")
    assert page.evaluate("window.__sentTransactions.length") == 0
    assert _shares(w3, devnet, account) == 0


def test_dashboard_shows_rebalances_history_apy_and_keeper_health(
        page: "Page", depositor_vault: "DepositorVault", w3: "Web3", devnet: "Deployment", chain_snapshot: None,
        httpserver: "HTTPServer") -> None:
    from playwright.sync_api import expect

    from depositor.keeper_health import KeeperSources
    from depositor.views import VaultViews
    from depositor.web.server import serve

    deposit_directly(w3, devnet, devnet.depositors[2], 20_000 * USDC)
    decision_hash = "0x" + "ab" * 32
    tx = vault_contract(w3, devnet).functions.rebalance(
        [(devnet.markets[0].address, 7_000 * USDC), (devnet.markets[1].address, 2_000 * USDC)],
        bytes.fromhex(decision_hash[2:])).transact({"from": devnet.keeper}).to_0x_hex()
    w3.provider.make_request("evm_increaseTime", [30 * 86_400])  # a month of interest for the history
    w3.provider.make_request("evm_mine", [])
    vault_contract(w3, devnet).functions.report().transact({"from": devnet.keeper})  # the share price takes it
    httpserver.expect_request("/health").respond_with_handler(  # 2.5 min before each request: "2 min ago"
        lambda _request: Response(json.dumps({"status": "ok", "last_success": time.time() - 150,
                                              "last_cycle_status": "rebalanced", "last_reason": None}),
                                  content_type="application/json"))
    server = serve(VaultViews(depositor_vault, KeeperSources(health_url=httpserver.url_for("/health"))),
                   "127.0.0.1", 0)
    try:
        page.goto(server.url)
        rows = page.locator("#rebalances tbody tr")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text(decision_hash)
        expect(rows.first).to_contain_text(f"vaultbot keeper verify {tx}")
        expect(rows.first).to_contain_text("9,000.00 USDC")  # moved
        expect(page.locator("#keeper-health")).to_have_text(
            "keeper healthy: last successful cycle 2 min ago; last cycle rebalanced")
        # 7,000 at 4.2 % and 2,000 at 5.1 % of ~20,000 (a month of interest on top), idle earns nothing
        expect(page.locator("#current-apy")).to_have_text("1.98 %")
        realised = float(page.locator("#realised-apy").inner_text().removesuffix(" %"))
        assert 1.5 < realised < 3.0, realised
        expect(page.locator("#price-chart polyline")).to_have_count(1)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "web-dashboard.png"), full_page=True)
    finally:
        server.stop()

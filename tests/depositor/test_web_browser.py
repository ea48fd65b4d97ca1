"""The depositor page in a real browser: Debian's headless chromium driven by Playwright, a test EIP-1193
wallet bridging to anvil for an unlocked depositor account, the devnet vault on a real anvil.

Chromium is not optional: `./run setup` installs it, so a missing /usr/bin/chromium fails these tests.
"""

import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import requests
from werkzeug import Response

from chain.events import emitted
from depositor.views import ROUNDED_PLACES
from strategy.units import format_units
from tests.conftest import REPO_ROOT
from tests.depositor.conftest import SHARE, USDC, deposit_directly, vault_contract
from tests.keeper.keeper_world import artifact_dir, funded, keeper_table, llama, transact

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

    transact(w3, vault_contract(w3, devnet).functions.pause(), devnet.guardian)
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
    # each transaction mined before the next step (anvil may answer a send before its block is mined: a page
    # read before the report was mined showed the share price without the month's interest)
    tx = transact(w3, vault_contract(w3, devnet).functions.rebalance(
        [(devnet.markets[0].address, 7_000 * USDC), (devnet.markets[1].address, 2_000 * USDC)],
        bytes.fromhex(decision_hash[2:])), devnet.keeper)["transactionHash"].to_0x_hex()
    w3.provider.make_request("evm_increaseTime", [30 * 86_400])  # a month of interest for the history
    w3.provider.make_request("evm_mine", [])
    transact(w3, vault_contract(w3, devnet).functions.report(), devnet.keeper)  # the share price takes it
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
        # moved: what the vault measured, 9,000 less up to a unit per market its ERC-4626 rounding keeps (the
        # seeded markets' share price is not exactly 1 once they have accrued a unit of interest)
        (rebalanced,) = emitted(vault_contract(w3, devnet), "Rebalanced", w3.eth.get_transaction_receipt(tx))
        moved = rebalanced["args"]["moved"]
        assert 9_000 * USDC - 2 <= moved <= 9_000 * USDC
        expect(rows.first).to_contain_text(format_units(moved, 6, "USDC", places=ROUNDED_PLACES))  # as the page rounds
        expect(page.locator("#keeper-health")).to_have_text(
            "keeper healthy: last successful cycle 2 min ago; last cycle rebalanced")
        # 7,000 at 4.2 % and 2,000 at 5.1 % of ~20,000 (a month of interest on top), idle earns nothing
        expect(page.locator("#current-apy")).to_have_text("1.98 %")
        realised = float(page.locator("#realised-apy").inner_text().removesuffix(" %"))
        assert 1.5 < realised < 3.0, realised
        expect(page.locator("#price-chart canvas")).to_have_count(1)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "web-dashboard.png"), full_page=True)
    finally:
        server.stop()


def test_a_withdrawal_through_the_markets_shows_the_chains_amount_and_the_breach_it_leaves(
        page: "Page", web_url: str, w3: "Web3", devnet: "Deployment", chain_snapshot: None) -> None:
    """The page's result is the vault's own Withdraw event, not a market's; the limits the withdrawal leaves the
    vault outside of are a banner; the page fits 1400 px and 390 px (screenshots kept as artifacts)."""
    from playwright.sync_api import expect

    account = devnet.depositors[1]
    page.goto(web_url)
    page.click("#connect")
    _act(page, "deposit", "10,000")
    expect(page.locator("#share-balance")).to_have_text("10,000.00 vbUSD shares")
    transact(w3, vault_contract(w3, devnet).functions.rebalance(
        [(devnet.markets[0].address, 2_500 * USDC), (devnet.markets[1].address, 2_500 * USDC)],
        b"\x03" * 32), devnet.keeper)  # the turnover limit: half the vault
    page.reload()
    page.click("#connect")
    expect(page.locator("#breach-banner")).to_be_hidden()

    usdc_before = _usdc(w3, devnet, account)
    _act(page, "withdraw", "7,000")  # 5,000 idle, then 2,000 from the first market in the withdraw queue
    expect(page.locator("#action-status")).to_contain_text("withdrew 7,000.00 USDC, burning ")
    assert _usdc(w3, devnet, account) - usdc_before == 7_000 * USDC
    expect(page.locator("#breach-banner")).to_be_visible()
    expect(page.locator("#breaches li")).to_have_count(2)  # idle below its floor, the second market over its cap
    expect(page.locator("#breaches")).to_contain_text("idle is ")
    expect(page.locator("#breaches")).to_contain_text(f"{devnet.markets[1].name} is ")
    expect(page.locator("#allocation .over-cap")).to_have_count(1)

    ARTIFACTS.mkdir(exist_ok=True)
    for width in (1400, 390):
        page.set_viewport_size({"width": width, "height": 1600})
        page.wait_for_timeout(300)  # the layout at the new width
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        page.screenshot(path=str(ARTIFACTS / f"web-breach-{width}.png"), full_page=True)
        assert overflow <= 0, f"the page is {overflow} px wider than a {width} px screen"

    page.set_viewport_size({"width": 1100, "height": 1600})
    page.click("#withdraw-max")  # the rest of the position: every share redeemed, no dust left
    page.click("#withdraw-form button[type=submit]")
    page.wait_for_selector("#preview:not([hidden])")
    page.click("#confirm")
    expect(page.locator("#share-balance")).to_have_text("0.00 vbUSD shares")
    assert _shares(w3, devnet, account) == 0


CHARTS = ("price-chart", "apy-chart", "tvl-chart")
# A canvas's count of painted pixels: 0 when nothing was drawn on it.
PAINTED = "canvas => { const d = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data; " \
          "let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n; }"


def _legend(page: "Page", chart: str) -> list[str]:
    """The chart's legend values: the time first, then each series' text."""
    return page.locator(f"#{chart} .u-legend .u-value").all_inner_texts()


def test_history_charts_run_on_chain_time_and_amounts_show_the_exact_value_on_hover(
        browser: "Browser", web_url: str, w3: "Web3", devnet: "Deployment", chain_snapshot: None) -> None:
    """The share price, APY and TVL charts (uPlot) draw on a UTC chain-time axis whatever the browser's time zone;
    their legends show the server's texts; an amount is shown to the cent with every digit in its title."""
    from playwright.sync_api import expect

    vault = vault_contract(w3, devnet)
    deposit_directly(w3, devnet, devnet.depositors[2], 1_234_567_891)  # 1,234.567891 USDC: not a round amount
    transact(w3, vault.functions.rebalance([(devnet.markets[0].address, 400 * USDC)], b"\x04" * 32), devnet.keeper)
    w3.provider.make_request("evm_increaseTime", [10 * 86_400])  # interest, and a span to annualise
    w3.provider.make_request("evm_mine", [])
    transact(w3, vault.functions.report(), devnet.keeper)
    total = vault.functions.totalAssets().call()
    history = requests.get(f"{web_url}/api/vault", timeout=30).json()["price_history"]

    context = browser.new_context(viewport={"width": 1100, "height": 1600}, timezone_id="Asia/Tokyo")  # UTC+9
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(web_url)
        shown = page.locator("#total-assets")
        expect(shown).to_have_text(format_units(total, 6, "USDC", places=2))
        assert shown.get_attribute("title") == format_units(total, 6, "USDC", places=6) != shown.inner_text()
        expect(page.locator("#allocation tbody tr").first.locator(".amount")).to_have_attribute(
            "title", format_units(vault.functions.position(devnet.markets[0].address).call(), 6, "USDC", places=6))

        last_minute = f"{datetime.fromtimestamp(history[-1]['time'], UTC):%Y-%m-%d %H:%M} UTC"
        first_day = datetime.fromtimestamp(history[0]["time"], UTC).date().isoformat()
        for chart in CHARTS:
            canvas = page.locator(f"#{chart} canvas")
            expect(canvas).to_have_count(1)
            assert canvas.evaluate(PAINTED) > 1_000, f"{chart} drew nothing"
            # the x axis' tick labels as uPlot drew them (its own copy of the texts painted on the canvas)
            ticks = page.evaluate("id => document.getElementById(id).chart.axes[0]._values", chart)
            assert ticks and all(re.fullmatch(r"\d{4}-\d{2}-\d{2}( \d{2}:\d{2})?", tick) for tick in ticks), ticks
            assert first_day <= min(ticks)[:10] and max(ticks)[:10] <= last_minute[:10], (ticks, first_day, last_minute)
            assert _legend(page, chart)[0] == last_minute  # the latest point, on the chain's clock in UTC
            low, high, values = page.evaluate("id => { const c = document.getElementById(id).chart; "
                                              "return [c.scales.y.min, c.scales.y.max, c.data[1]]; }", chart)
            assert all(low <= value <= high for value in values if value is not None), (chart, low, high, values)
        assert _legend(page, "tvl-chart")[1] == history[-1]["total_assets_text"] == format_units(total, 6, "USDC",
                                                                                                  places=2)
        assert _legend(page, "apy-chart")[1] == history[-1]["apy_text"] == page.locator("#realised-apy").inner_text()
        expect(page.locator("#history-range")).to_contain_text("(chain time")

        plot = page.locator("#price-chart .u-over").bounding_box()
        page.mouse.move(plot["x"] + 2, plot["y"] + plot["height"] / 2)  # among the first points
        expect(page.locator("#price-chart .u-legend .u-value").first).not_to_have_text(last_minute)
        hovered = history[page.evaluate("document.getElementById('price-chart').chart.legend.idx")]
        assert _legend(page, "price-chart") == [f"{datetime.fromtimestamp(hovered['time'], UTC):%Y-%m-%d %H:%M} UTC",
                                                 hovered["price_text"]]
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "web-charts.png"), full_page=True)
        assert not errors, f"uncaught errors in the page: {errors}"
    finally:
        context.close()


def test_the_allocation_shows_the_keepers_forecasts_next_to_the_rates_on_chain_and_why(
        page: "Page", w3: "Web3", funded: "Deployment", keeper_table: dict, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The page of the devnet's vault finds the devnet keeper's journal, settings and decision bundles as `vaultbot
    web` does, and shows its last decision in the allocation table: the keeper's forecasts next to the APY on chain,
    and why; its verify button re-executes the rebalance's decision from the bundle."""
    from playwright.sync_api import expect

    from cli.web import keeper_sources
    from depositor.vault import open_vault
    from depositor.views import VaultViews
    from depositor.web.server import serve
    from tests.keeper.decision_screens import DECISION_CELLS, assert_shows_the_decision
    from tests.keeper.keeper_world import config_file, config_of, once_rebalancing

    monkeypatch.setenv("VAULTBOT_HOME", str(tmp_path))  # the devnet keeper's bundles: where keeper_table puts them
    _, decision_hash = once_rebalancing(w3, funded, config_file(keeper_table, tmp_path))
    deployment_json = tmp_path / "devnet.json"  # where keeper_table put the deployment, its journal next to it
    server = serve(VaultViews(open_vault(None, None, deployment_json), keeper_sources(deployment_json, devnet=True)),
                   "127.0.0.1", 0)
    try:
        page.goto(server.url)
        expect(page.locator("#decision-why li").first).to_contain_text("the last decision (cycle 1) was made by")
        shown = {}
        for row in page.locator("#allocation tbody tr").all():  # market, position, share, cap, then the decision's
            cells = [cell.locator(".amount").get_attribute("title") if cell.locator(".amount").count()
                     else cell.inner_text() for cell in row.locator("td").all()]  # amounts: exact on hover
            shown[cells[0]] = dict(zip(DECISION_CELLS, cells[4:], strict=False))
        assert_shows_the_decision(shown, page.locator("#decision-why li").all_inner_texts(), w3, funded,
                                  config_of(keeper_table))
        expect(page.locator("#allocation th.decided:not([hidden])")).to_have_count(len(DECISION_CELLS) - 1)
        page.click("#rebalances button.verify")
        expect(page.locator("#rebalances .verdict")).to_have_text(
            re.compile(r"REPRODUCED: re-running the model and the allocator on the bundle "))
        page.click("#rebalances summary")
        expect(page.locator("#rebalances .facts li")).to_contain_text(
            ["the record hashes to the on-chain decision hash"])
        expect(page.locator("#rebalances tbody tr").first).to_contain_text(decision_hash)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "web-decision.png"), full_page=True)
    finally:
        server.stop()
    # `vaultbot web --keeper-db URL` alone: the journal without the keeper's settings, so the forecasts but no why
    from depositor.keeper_health import KeeperSources

    journal_only = KeeperSources(database_url=keeper_sources(deployment_json, devnet=True).database_url)
    figures = VaultViews(open_vault(None, None, deployment_json), journal_only).vault()
    assert figures["decision"][-1] == "why not shown: the keeper's settings are not known here (its [strategy] table)"
    assert all(m["decision"]["forecast_apy"] and m["decision"]["gain"] == "" for m in figures["markets"])

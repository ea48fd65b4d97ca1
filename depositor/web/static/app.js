// The depositor page: renders /api/vault, and sends deposits and withdrawals through the browser's
// EIP-1193 wallet (window.ethereum). The server builds every transaction (previews, refusals and the
// minimum-out guard are the CLI's own code); this script only shows them and asks the wallet to send.
"use strict";

const state = { vault: null, loading: null, account: null, pending: null };
const RECEIPT_POLL_MS = 500;
const RECEIPT_POLLS = 240;

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  for (const child of children) node.append(child instanceof Node ? child : String(child ?? ""));
  return node;
}

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const response = await fetch(path, options);
  const reply = await response.json().catch(() => ({ error: `${path}: HTTP ${response.status}` }));
  if (!response.ok) throw new Error(reply.error || `${path}: HTTP ${response.status}`);
  return reply;
}

function showError(id, error) {
  const node = $(id);
  node.textContent = error ? (error.message || String(error)) : "";
  node.hidden = !error;
}

function setStatus(text) { $("action-status").textContent = text; }

// ---- the vault ----------------------------------------------------------------------------------------

async function loadVault() {
  try {
    state.vault = await api("/api/vault");
    renderVault(state.vault);
    showError("load-error", null);
  } catch (error) {
    showError("load-error", error);
  }
}

function renderVault(v) {
  $("vault-name").textContent = `${v.vault.name} (${v.vault.symbol})`;
  $("vault-meta").textContent = `vault ${v.vault.address} on chain ${v.chain_id}; asset ${v.vault.asset.symbol} ${v.vault.asset.address}`;
  $("total-assets").textContent = v.total_assets;
  $("share-price").textContent = v.share_price;
  $("current-apy").textContent = v.current_apy ?? "n/a";
  $("realised-apy").textContent = v.realised_apy ?? "n/a";
  $("vault-status").textContent = v.paused ? "paused: deposits stopped, withdrawals open" : "open";
  $("block-number").textContent = v.block;
  for (const node of document.querySelectorAll(".asset-symbol")) node.textContent = v.vault.asset.symbol;
  renderChart(v.price_history);
  renderAllocation(v);
  renderRows($("guardrails").tBodies[0], v.guardrails.map(([name, value]) => [name, value]));
  $("last-report").textContent = v.last_report;
  renderProposals(v.proposals);
  renderRebalances(v.rebalances);
  renderKeeper(v.keeper);
}

function renderRows(tbody, rows) {
  tbody.replaceChildren(...rows.map((cells) => el("tr", {}, ...cells.map((c) => el("td", {}, c)))));
}

function renderAllocation(v) {
  const rows = v.markets.map((m) => {
    const bar = el("span", { class: "bar-cap", title: `${m.share} of the ${m.cap} cap` },
      el("span", { class: "bar", style: `width:${Math.min(100, m.cap_used_pct).toFixed(1)}%` }));
    return [m.name, m.position, m.share, el("span", {}, bar, m.cap), m.apy ?? "n/a"];
  });
  rows.push(["idle", v.idle.position, v.idle.share, "", "0.00 %"]);
  renderRows($("allocation").tBodies[0], rows);
}

function renderRebalances(rebalances) {
  $("no-rebalances").hidden = rebalances.length > 0;
  renderRows($("rebalances").tBodies[0], rebalances.map((r) => [
    r.time, r.moved, r.total_after, el("code", {}, r.decision_hash), el("code", {}, r.verify),
  ]));
}

function renderProposals(proposals) {
  $("no-proposals").hidden = proposals.length > 0;
  renderRows($("proposals").tBodies[0], proposals.map((p) => [
    el("code", {}, p.id), el("code", {}, p.decision_hash), p.deadline,
    p.approved ? "yes: the keeper runs it next" : "not yet",
    p.allocations.map((a) => `${a.market}: ${a.target}`).join("; "),
  ]));
}

function renderKeeper(keeper) {
  $("keeper-health").textContent = keeper.summary;
  renderRows($("keeper-cycles").tBodies[0], keeper.cycles.map((c) => [c.started, c.status, c.reason ?? ""]));
}

function renderChart(points) {
  const svg = $("price-chart");
  svg.replaceChildren();
  if (points.length < 2) {
    svg.append(svgEl("text", { x: 20, y: 100 }, "not enough history yet"));
    $("price-range").textContent = "";
    return;
  }
  const [width, height, pad] = [640, 200, 28];
  const times = points.map((p) => p.time), prices = points.map((p) => p.price);
  const [t0, t1] = [Math.min(...times), Math.max(...times)];
  let [p0, p1] = [Math.min(...prices), Math.max(...prices)];
  if (p1 - p0 < 1e-12) { p0 -= 1e-6; p1 += 1e-6; }  // a flat line still needs a scale
  const x = (t) => pad + (t1 === t0 ? 0 : (t - t0) / (t1 - t0)) * (width - 2 * pad);
  const y = (p) => height - pad - ((p - p0) / (p1 - p0)) * (height - 2 * pad);
  svg.append(svgEl("polyline", { points: points.map((p) => `${x(p.time).toFixed(1)},${y(p.price).toFixed(1)}`).join(" ") }));
  svg.append(svgEl("text", { x: 4, y: 14 }, p1.toPrecision(8)));
  svg.append(svgEl("text", { x: 4, y: height - 6 }, p0.toPrecision(8)));
  $("price-range").textContent = `${points.length} points from ${points[0].label} to ${points[points.length - 1].label}`;
}

function svgEl(tag, attrs, text) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

// ---- the wallet ---------------------------------------------------------------------------------------

function wallet() {
  if (!window.ethereum) throw new Error("no browser wallet found (window.ethereum): install or unlock one, e.g. MetaMask");
  return window.ethereum;
}

async function connect() {
  showError("action-error", null);
  try {
    await state.loading;
    if (!state.vault) throw new Error("the vault has not loaded; see the error above and refresh");
    const accounts = await wallet().request({ method: "eth_requestAccounts" });
    if (!accounts.length) throw new Error("the wallet shared no account");
    await ensureChain();
    state.account = accounts[0];
    $("account").textContent = state.account;
    $("connect").hidden = true;
    $("position").hidden = false;
    $("actions").hidden = false;
    await loadAccount();
  } catch (error) {
    showError("action-error", error);
  }
}

async function ensureChain() {
  const want = state.vault.chain_id;
  const have = parseInt(await wallet().request({ method: "eth_chainId" }), 16);
  if (have === want) return;
  try {
    await wallet().request({ method: "wallet_switchEthereumChain", params: [{ chainId: "0x" + want.toString(16) }] });
  } catch (error) {
    throw new Error(`the wallet is on chain ${have} but the vault is on chain ${want}; switch networks in the wallet`);
  }
}

async function loadAccount() {
  if (!state.account) return;
  const a = await api(`/api/account?address=${encodeURIComponent(state.account)}`);
  $("asset-balance").textContent = a.asset_balance;
  $("share-balance").textContent = a.shares;
  $("share-value").textContent = a.value;
  $("max-deposit").textContent = a.max_deposit;
  $("max-withdraw").textContent = a.max_withdraw;
  state.maxWithdraw = a.max_withdraw_amount;
}

// ---- deposit / withdraw -------------------------------------------------------------------------------

async function preview(event) {
  event.preventDefault();
  const form = event.currentTarget;
  showError("action-error", null);
  setStatus("");
  try {
    const request = { action: form.dataset.action, account: state.account, amount: form.elements.amount.value.trim() };
    const plan = await api("/api/plan", request);
    // the guard the user saw is sent again with every later step, so a worse price is refused
    state.pending = { ...request, guard: plan.guard };
    showPreview(plan);
  } catch (error) {
    hidePreview();
    showError("action-error", error);
  }
}

function showPreview(plan) {
  $("preview-title").textContent = plan.title;
  $("preview-lines").replaceChildren(...plan.lines.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  $("preview-steps").replaceChildren(...plan.steps.map((s) => el("li", {}, s.label)));
  $("preview").hidden = false;
  $("confirm").disabled = false;
}

function hidePreview() {
  state.pending = null;
  $("preview").hidden = true;
}

async function confirmPending() {
  const pending = state.pending;
  if (!pending) return;
  $("confirm").disabled = true;
  showError("action-error", null);
  try {
    let plan = await api("/api/plan", pending);
    for (;;) {
      const step = plan.steps[0];
      setStatus(`${step.label}: waiting for the wallet…`);
      const hash = await sendTransaction(step);
      setStatus(`${step.label}: sent ${hash}, waiting for it to be mined…`);
      await waitForReceipt(hash);
      if (plan.steps.length === 1) {
        const result = await api(`/api/result?tx=${hash}`);
        setStatus(result.message);
        break;
      }
      plan = await api("/api/plan", pending);  // fresh checks and simulation after the approval
    }
    hidePreview();
  } catch (error) {
    $("confirm").disabled = false;
    setStatus("");
    showError("action-error", error);
  }
  await Promise.all([loadVault(), loadAccount().catch((error) => showError("action-error", error))]);
}

async function sendTransaction(step) {
  try {
    return await wallet().request({ method: "eth_sendTransaction", params: [{ from: state.account, to: step.to, data: step.data }] });
  } catch (error) {
    throw await explain(error);
  }
}

async function waitForReceipt(hash) {
  for (let i = 0; i < RECEIPT_POLLS; i++) {
    const receipt = await wallet().request({ method: "eth_getTransactionReceipt", params: [hash] });
    if (receipt) {
      if (parseInt(receipt.status, 16) !== 1) {
        throw await explain({ message: `transaction ${hash} reverted`, data: { txHash: hash } });
      }
      return receipt;
    }
    await new Promise((resolve) => setTimeout(resolve, RECEIPT_POLL_MS));
  }
  throw new Error(`transaction ${hash} was not mined within ${RECEIPT_POLL_MS * RECEIPT_POLLS / 1000} s; check the wallet`);
}

// A wallet error (a revert while estimating gas, a rejection, a mined revert) as the server's message.
async function explain(error) {
  try {
    const reply = await api("/api/explain", { message: error.message || String(error), data: error.data ?? null, code: error.code ?? null });
    return new Error(reply.error);
  } catch (failure) {
    return error instanceof Error ? error : new Error(String(error.message || error));
  }
}

function fillMaxWithdraw() {
  if (state.maxWithdraw !== undefined) $("withdraw-amount").value = state.maxWithdraw;
}

document.addEventListener("DOMContentLoaded", () => {
  $("connect").addEventListener("click", connect);
  $("deposit-form").addEventListener("submit", preview);
  $("withdraw-form").addEventListener("submit", preview);
  $("withdraw-max").addEventListener("click", fillMaxWithdraw);
  $("confirm").addEventListener("click", confirmPending);
  $("cancel").addEventListener("click", hidePreview);
  $("refresh").addEventListener("click", () => { loadVault(); loadAccount(); });
  if (window.ethereum && window.ethereum.on) {
    window.ethereum.on("accountsChanged", (accounts) => {
      state.account = accounts[0] ?? null;
      $("account").textContent = state.account ?? "";
      hidePreview();
      loadAccount();
    });
  }
  state.loading = loadVault();
});

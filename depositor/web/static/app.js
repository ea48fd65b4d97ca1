// The depositor page: renders /api/vault, and sends deposits and withdrawals through the browser's
// EIP-1193 wallet (window.ethereum). The server builds every transaction (previews, refusals and the
// minimum-out guard are the CLI's own code); this script only shows them and asks the wallet to send.
"use strict";

const state = { vault: null, loading: null, account: null, pending: null, verdicts: {} };
const RECEIPT_POLL_MS = 500;
const RECEIPT_POLLS = 240;

const $ = (id) => document.getElementById(id);

// A child may be an amount from the server ({text, exact}): shown rounded, the exact amount on hover.
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  for (const child of children) {
    node.append(child instanceof Node ? child : isAmount(child) ? amountNode(child) : String(child ?? ""));
  }
  return node;
}

const isAmount = (value) => typeof value === "object" && value !== null && "exact" in value;
const amountNode = (amount) => el("span", { class: "amount", title: amount.exact }, amount.text);

function showAmount(id, amount) {
  const node = $(id);
  node.textContent = amount.text;
  node.title = amount.exact;
  node.classList.add("amount");
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
  showAmount("total-assets", v.total_assets);
  showAmount("share-price", v.share_price);
  $("current-apy").textContent = v.current_apy ?? "n/a";
  $("realised-apy").textContent = v.realised_apy ?? "n/a";
  $("vault-status").textContent = v.paused ? "paused: deposits stopped, withdrawals open" : "open";
  $("block-number").textContent = v.block;
  for (const node of document.querySelectorAll(".asset-symbol")) node.textContent = v.vault.asset.symbol;
  renderHistory(v.price_history, v.vault.asset.symbol);
  renderAllocation(v);
  renderRows($("guardrails").tBodies[0], v.guardrails.map(([name, value]) => [name, value]));
  $("last-report").textContent = v.last_report;
  renderProposals(v.proposals);
  renderBreaches(v.breaches);
  renderRebalances(v.rebalances);
  renderKeeper(v.keeper);
}

function renderRows(tbody, rows) {
  tbody.replaceChildren(...rows.map((cells) => el("tr", {}, ...cells.map((c) => el("td", {}, c)))));
}

function renderAllocation(v) {
  const rows = v.markets.map((m) => {
    const over = m.cap_used_pct > 100;
    const bar = el("span", { class: "bar-cap", title: `${m.share} of the ${m.cap} cap` },
      el("span", { class: over ? "bar over" : "bar", style: `width:${Math.min(100, m.cap_used_pct).toFixed(1)}%` }));
    const cap = over ? el("span", { class: "over-cap" }, `${m.cap}: over it (${m.cap_used_pct} % of the cap)`) : m.cap;
    // the keeper's last decision, when the server reads its journal: forecast, event probability, target, why
    const decided = m.decision ? [m.decision.forecast_apy, m.decision.p_event, m.decision.target, m.decision.gain,
      m.decision.limit] : [];
    return [m.name, m.position, m.share, el("span", {}, bar, cap), m.apy ?? "n/a", ...decided];
  });
  rows.push(["idle", v.idle.position, v.idle.share, "", "0.00 %"]);
  renderRows($("allocation").tBodies[0], rows);
  for (const th of document.querySelectorAll("#allocation th.decided")) th.hidden = !v.decision;
  $("decision-why").replaceChildren(...(v.decision ?? []).map((line) => el("li", {}, line)));
}

function renderRebalances(rebalances) {
  $("no-rebalances").hidden = rebalances.length > 0;
  renderRows($("rebalances").tBodies[0], rebalances.map((r) => [
    r.time, r.moved, r.total_after, el("code", {}, r.decision_hash), verifyCell(r),
  ]));
}

// The verify action: the server re-executes the decision the chain names for this transaction from its own copy
// of the bundles. A verdict stays shown when the figures reload.
function verifyCell(r) {
  const button = el("button", { type: "button", class: "verify" }, "verify");
  const result = el("div", { class: "verdict-box" });
  if (state.verdicts[r.tx]) showVerdict(result, state.verdicts[r.tx]);
  button.addEventListener("click", async () => {
    button.disabled = true;
    result.replaceChildren(el("span", { class: "muted" }, "re-executing the decision from its bundle…"));
    try {
      state.verdicts[r.tx] = await api("/api/verify", { tx: r.tx });
      showVerdict(result, state.verdicts[r.tx]);
    } catch (error) {
      result.replaceChildren(el("span", { class: "error" }, error.message || String(error)));
    }
    button.disabled = false;
  });
  return el("div", {}, button, " ", el("code", {}, r.verify), result);
}

function showVerdict(node, reply) {
  node.replaceChildren(
    el("span", { class: reply.reproduced ? "verdict good" : "verdict bad" }, `${reply.verdict}: ${reply.why}`),
    el("details", {}, el("summary", {}, "what was checked"),
      el("ul", { class: "facts" }, ...reply.facts.map((fact) => el("li", {}, fact)))));
}

function renderBreaches(breaches) {
  $("breach-banner").hidden = breaches.length === 0;
  $("breaches").replaceChildren(...breaches.map((line) => el("li", {}, line)));
}

function renderProposals(proposals) {
  $("no-proposals").hidden = proposals.length > 0;
  renderRows($("proposals").tBodies[0], proposals.map((p) => [
    el("code", {}, p.id), el("code", {}, p.decision_hash), p.deadline,
    p.approved ? "yes: the keeper runs it next" : "not yet",
    el("span", {}, ...p.allocations.flatMap((a, i) => [i ? "; " : "", `${a.market}: `, a.target])),
  ]));
}

function renderKeeper(keeper) {
  $("keeper-health").textContent = keeper.summary;
  $("keeper-cycles").hidden = keeper.cycles.length === 0;
  renderRows($("keeper-cycles").tBodies[0], keeper.cycles.map((c) => [c.started, c.status, c.reason ?? ""]));
}

// The share price, realised APY and total assets at the sampled blocks, on the chain's clock.
function renderHistory(points, symbol) {
  const enough = points.length >= 2;
  $("history-charts").hidden = !enough;
  $("history-range").textContent = enough
    ? `${points.length} blocks sampled from ${points[0].label} to ${points[points.length - 1].label} `
      + "(chain time: the blocks' timestamps)"
    : "not enough history yet: the charts start at the second sampled block";
  if (!enough) return;
  const chart = (id, label, unit, values, texts) => vaultbotCharts.draw($(id), {
    x: points.map((p) => p.time), time: "minute", xLabel: "chain time (UTC)", yLabel: `${label} (${unit})`,
    series: [{ label, values, texts, width: 2 }],
  });
  chart("price-chart", "share price", symbol, points.map((p) => p.price), points.map((p) => p.price_text));
  chart("apy-chart", "realised APY", "%", points.map((p) => p.apy_pct), points.map((p) => p.apy_text));
  chart("tvl-chart", "total assets", symbol, points.map((p) => p.total_assets),
    points.map((p) => p.total_assets_text));
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
  showAmount("asset-balance", a.asset_balance);
  showAmount("share-balance", a.shares);
  showAmount("share-value", a.value);
  showAmount("max-deposit", a.max_deposit);
  showAmount("max-withdraw", a.max_withdraw);
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
    const transaction = { from: state.account, to: step.to, data: step.data };
    if (step.gas) transaction.gas = step.gas;  // the server's estimate with the CLI's margin
    return await wallet().request({ method: "eth_sendTransaction", params: [transaction] });
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
  // "max", not the figure shown: the server redeems every share when that is the whole position (no dust)
  if (state.maxWithdraw !== undefined) $("withdraw-amount").value = "max";
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

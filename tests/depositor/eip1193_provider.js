// A test EIP-1193 wallet for the browser tests: window.ethereum forwards every request to anvil's JSON-RPC
// for one unlocked anvil account, so anvil itself signs eth_sendTransaction. Filled in by the test with
// the RPC URL and the account (window.__vaultbotWallet = {rpcUrl, account} before this runs).
(() => {
  const { rpcUrl, account } = window.__vaultbotWallet;
  const listeners = {};
  let nextId = 0;
  window.__sentTransactions = [];

  async function rpc(method, params) {
    const response = await fetch(rpcUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: ++nextId, method, params: params ?? [] }),
    });
    const reply = await response.json();
    if (reply.error) {
      // the shape wallets use: {code, message, data} on an Error (data: revert bytes, if any)
      const error = new Error(reply.error.message);
      error.code = reply.error.code;
      error.data = reply.error.data;
      throw error;
    }
    return reply.result;
  }

  window.ethereum = {
    isVaultbotTestWallet: true,
    async request({ method, params }) {
      if (method === "eth_requestAccounts" || method === "eth_accounts") return [account];
      if (method === "eth_sendTransaction") window.__sentTransactions.push(params[0]);
      return rpc(method, params);
    },
    on(event, listener) { (listeners[event] ??= []).push(listener); },
    removeListener(event, listener) { listeners[event] = (listeners[event] ?? []).filter((l) => l !== listener); },
  };
})();

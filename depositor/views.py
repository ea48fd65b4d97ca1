"""The JSON the web page reads: the dashboard, an account's position, plans to send through the browser's
wallet, a wallet error explained, a mined transaction described. Built from the same flows as the CLI,
so the page shows the CLI's previews and refusals word for word."""

from collections.abc import Callable
from typing import Any

from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import ContractLogicError, TransactionNotFound

from chain.errors import decode_revert
from depositor.amounts import parse_base_units, plain_units
from depositor.dashboard import Dashboard, percent_text, read_dashboard, realised_apy, utc_time
from depositor.errors import BadInput, Refusal, quoted
from depositor.flows import ACTIONS, describe_result, plan_action, plan_request
from depositor.keeper_health import KeeperSources, keeper_status, last_decision
from depositor.refusals import explain_reason
from depositor.vault import DepositorVault
from depositor.verification import Verifier, rebalance_of
from strategy.units import DISPLAY_PLACES, UINT256_DIGITS

Json = dict[str, Any]
VERIFY_COMMAND = "vaultbot keeper verify {tx}"
REJECTED_BY_USER = 4001  # EIP-1193
ROUNDED_PLACES = 2  # what the page shows of an amount: to the cent; the exact amount is its hover title
EXACT_PLACES = UINT256_DIGITS  # more places than any token has: format_units then drops no digit


def amount(text: Callable[..., str], units: int, *, places: int = ROUNDED_PLACES) -> Json:
    """An amount as the page shows it: written by `text` (DepositorVault.assets_text or .shares_text, i.e.
    format_units) rounded for reading, and exact, every base unit, for the hover title."""
    return {"text": text(units, places=places), "exact": text(units, places=EXACT_PLACES)}


class VaultViews:
    """Implements depositor.web.server.DepositorViews for one vault."""

    def __init__(self, vault: DepositorVault, keeper: KeeperSources, *, from_block: int = 0) -> None:
        self.served = vault  # the vault these views serve
        self.keeper = keeper
        self.from_block = from_block
        self.verifier = Verifier(keeper.decisions_dir)  # one per page: its verdicts are cached for every visitor

    def vault(self) -> Json:
        board = read_dashboard(self.served, from_block=self.from_block)
        decision = last_decision(self.keeper, self.served.reader, self.served.asset_decimals)
        names = {m.address: m.name for m in board.markets}
        return {
            "chain_id": self.served.chain_id,
            "block": board.block,
            "vault": {"address": self.served.address, "name": self.served.name, "symbol": self.served.symbol,
                      "decimals": self.served.decimals,
                      "asset": {"address": self.served.asset.address, "symbol": self.served.asset_symbol,
                                "decimals": self.served.asset_decimals}},
            "total_assets": self._assets(board.total_assets),
            "share_price": amount(self.served.assets_text, board.price_per_share, places=DISPLAY_PLACES),
            "paused": board.paused,
            "current_apy": percent_text(board.current_apy),
            "realised_apy": percent_text(board.realised_apy),
            "price_history": self._history(board),
            "markets": [{
                "name": m.name, "address": m.address, "position": self._assets(m.position),
                "share": percent_text(m.share), "cap": f"{m.cap_bps / 100:g} % / {self.served.assets_text(m.cap_abs)}",
                "cap_used_pct": round(m.cap_used * 100, 2), "apy": percent_text(m.apy),
                # the keeper's last decision for the market: forecast, event probability, target, gain, limit
                "decision": None if decision is None else decision.cells(m.address, self._assets),
            } for m in board.markets],
            "decision": None if decision is None else decision.lines(self.served.assets_text, names),
            "idle": {"position": self._assets(board.idle),
                     "share": percent_text(board.idle / board.total_assets if board.total_assets else 0.0)},
            "guardrails": board.guardrails,
            "last_report": utc_time(board.last_report),
            "breaches": list(board.breaches),
            "proposals": [{
                "id": p.id, "decision_hash": p.decision_hash, "deadline": utc_time(p.deadline), "approved": p.approved,
                "allocations": [{"market": market, "target": self._assets(target)}
                                for market, target in p.allocations],
            } for p in board.proposals],
            "rebalances": [{
                "time": utc_time(r.time), "block": r.block, "tx": r.tx_hash, "decision_hash": r.decision_hash,
                "moved": self._assets(r.moved), "total_after": self._assets(r.total_after),
                "verify": VERIFY_COMMAND.format(tx=r.tx_hash),
            } for r in board.rebalances],
            "keeper": keeper_status(self.keeper),
        }

    def _assets(self, units: int) -> Json:
        return amount(self.served.assets_text, units)

    def _history(self, board: Dashboard) -> list[Json]:
        """The sampled blocks for the charts: numbers to draw (asset units, APY in %) and the texts to show. Of
        blocks with one timestamp (a devnet, an L2) the last: a chart's time axis must increase."""
        unit, history = 10**self.served.asset_decimals, board.history
        points = []
        for point in {point.time: point for point in history}.values():
            apy = realised_apy([history[0], point])  # over the window so far: the last is the card's figure
            points.append({
                "block": point.block, "time": point.time, "label": utc_time(point.time),
                "price": point.price / unit, "price_text": self.served.assets_text(point.price),
                "total_assets": point.total_assets / unit,
                "total_assets_text": self.served.assets_text(point.total_assets, places=ROUNDED_PLACES),
                "apy_pct": None if apy is None else apy * 100, "apy_text": percent_text(apy),
            })
        return points

    def account(self, address: str) -> Json:
        account = _address(address, "address")
        reader = self.served.reader
        shares = reader.balance(account)
        liquid = reader.max_withdraw(account)
        return {
            "address": account,
            "asset_balance": self._assets(self.served.asset_balance(account)),
            "shares": amount(self.served.shares_text, shares),
            "value": self._assets(reader.preview_redeem(shares)),
            "max_deposit": self._assets(min(self.served.asset_balance(account), reader.max_deposit(account))),
            "max_withdraw": self._assets(liquid),
            "max_withdraw_amount": plain_units(liquid, self.served.asset_decimals),
        }

    def plan(self, request: Json) -> Json:
        action = request.get("action")
        if action not in ACTIONS:
            raise BadInput(f"action must be one of {', '.join(ACTIONS)}, got {quoted(action)}")
        account = _address(request.get("account"), "account")
        guard = request.get("guard")
        guard_bound = None if guard is None else parse_base_units(guard, what="guard")
        # the CLI's plan: withdrawing 'max' of a whole position redeems every share, leaving no share dust
        plan = plan_request(self.served, action, account, str(request.get("amount", "")))
        if guard_bound is not None:  # the guard the page showed bounds the plan it showed (a redemption's: assets)
            plan = plan_action(self.served, plan.action, account, plan.amount, guard_bound=guard_bound)
        return {
            "title": plan.title,
            "lines": [list(line) for line in plan.lines],
            # only the first step can be estimated now: the later ones wait for it (an approval)
            "steps": [{"label": step.label, **step.transaction(account if number == 0 else None)}
                      for number, step in enumerate(plan.steps)],
            "guard": str(plan.guard.bound),
        }

    def explain(self, request: Json) -> Json:
        """A wallet's error as the depositor should read it: a rejection, a decoded revert, or its own words."""
        message = str(request.get("message") or "the wallet refused")
        if request.get("code") == REJECTED_BY_USER:
            return {"error": "you rejected the transaction in the wallet; nothing was sent"}
        data = request.get("data")
        revert_data = data.get("data") if isinstance(data, dict) else data
        if isinstance(revert_data, str) and revert_data.startswith("0x"):
            return {"error": explain_reason(decode_revert(ContractLogicError(message, data=revert_data)))}
        if isinstance(data, dict) and isinstance(data.get("txHash"), str):
            return {"error": self._replay(data["txHash"])}
        return {"error": f"the wallet refused: {message}"}

    def _replay(self, tx_hash: str) -> str:
        """Why a mined transaction reverted: it is re-run with eth_call on the state its block started from."""
        eth = self.served.w3.eth
        try:
            tx = eth.get_transaction(HexBytes(tx_hash))
        except (TransactionNotFound, ValueError):
            return f"transaction {tx_hash} reverted (the node does not know it any more)"
        try:
            eth.call({"from": tx["from"], "to": tx["to"], "data": tx["input"]}, block_identifier=tx["blockNumber"] - 1)
        except ContractLogicError as error:
            return f"transaction {tx_hash} reverted: {explain_reason(decode_revert(error))}"
        return f"transaction {tx_hash} reverted (it succeeds when replayed: the chain changed in its block)"

    def verify(self, request: Json) -> Json:
        """A rebalance's decision re-executed from the page's bundles: the verdict, why, and the facts checked."""
        rebalance = rebalance_of(self.served, request.get("tx"))
        check = self.verifier.check(self.served, rebalance)
        return {"tx": rebalance.tx_hash, "block": rebalance.block, "decision_hash": rebalance.decision_hash,
                "verdict": str(check.verdict), "why": check.why, "facts": check.facts, "reproduced": check.ok}

    def result(self, tx_hash: str) -> Json:
        try:
            receipt = self.served.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
        except (TransactionNotFound, ValueError) as error:
            raise BadInput(f"no mined transaction {tx_hash}") from error
        if receipt["status"] != 1:
            raise Refusal(f"transaction {tx_hash} reverted")
        return {"message": describe_result(self.served, receipt)}


def _address(value: object, name: str) -> str:
    if not isinstance(value, str) or not Web3.is_address(value):
        raise BadInput(f"{name} must be an address (0x + 40 hex digits), got {quoted(value)}")
    return Web3.to_checksum_address(value)

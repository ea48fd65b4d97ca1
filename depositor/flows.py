"""Deposit, withdraw and redeem as checked plans: refusals found before anything is sent, a preview, the
minimum-out guard, and the calls to send (approve first only when the allowance is short).

Every refusal the vault can give (contracts/README.md) is checked from its max* views and the balances:
paused, over the deposit limit, not enough liquidity, not enough balance. When no approval is pending the
real call is simulated (eth_call from the account at the latest block), so the outcome shown is what the
vault would do now, and a revert is decoded into the same kind of message.

The minimum-out guard: ERC-4626 `deposit`/`withdraw`/`redeem` take no minimum, so the guard is checked on
that simulation right before each send (and the plan is rebuilt after an approval). It stops a price that
moved since the preview; it cannot stop a transaction reordered inside the block it lands in.
"""

from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError
from web3.types import TxReceipt

from chain.errors import decode_revert
from chain.events import emitted
from chain.tx import gas_with_margin
from depositor.amounts import at_least, at_most, parse_amount
from depositor.errors import BadInput, GuardRefusal, Refusal
from depositor.refusals import PAUSED, explain_reason
from depositor.vault import DepositorVault

if TYPE_CHECKING:
    from depositor.accounts import Sender

Action = Literal["deposit", "withdraw", "redeem"]
ACTIONS: tuple[Action, ...] = ("deposit", "withdraw", "redeem")
DEFAULT_TOLERANCE_BPS = 50  # 0.5 %: interest moves the price a little between preview and block
MAX_WORDS = ("max", "all")


@dataclass(frozen=True)
class _Outcome:
    """How an action's outcome is named and which way its guard points."""

    label: str
    would: str  # "the deposit would mint"
    in_shares: bool
    minimum: bool


_OUTCOMES: dict[Action, _Outcome] = {
    "deposit": _Outcome("shares minted", "the deposit would mint", in_shares=True, minimum=True),
    "withdraw": _Outcome("shares burned", "the withdrawal would burn", in_shares=True, minimum=False),
    "redeem": _Outcome("assets paid", "the redemption would pay", in_shares=False, minimum=True),
}


@dataclass(frozen=True)
class Guard:
    """deposit: at least `bound` shares minted; withdraw: at most `bound` shares burned; redeem: at least
    `bound` assets paid."""

    bound: int
    minimum: bool  # True: the outcome must be >= bound; False: <= bound

    def accepts(self, outcome: int) -> bool:
        return outcome >= self.bound if self.minimum else outcome <= self.bound


@dataclass(frozen=True)
class TxStep:
    label: str
    call: ContractFunction

    def transaction(self, sender: str | None = None) -> dict[str, str]:
        """{to, data}, and with `sender` a gas limit with the margin the CLI sends with: what a wallet needs (it
        fills in from and fees). A wallet's own estimate is exact at its block, and a withdrawal that pulls from
        a market can then run out of gas a block later, when the market accrues."""
        # the public encoder lives on the contract: rebuilt from the bound function's own ABI and arguments
        contract = self.call.w3.eth.contract(address=self.call.address, abi=self.call.contract_abi)
        data = contract.encode_abi(self.call.abi_element_identifier, args=list(self.call.args))
        transaction = {"to": self.call.address, "data": data}
        if sender is not None:
            with suppress(ContractLogicError):  # it would revert: the wallet's own estimate says so, in its words
                transaction["gas"] = hex(gas_with_margin(self.call.estimate_gas({"from": sender})))
        return transaction


@dataclass(frozen=True)
class Plan:
    action: Action
    account: str
    amount: int  # assets for deposit and withdraw, shares for redeem
    outcome: int  # shares minted (deposit), shares burned (withdraw), assets paid (redeem)
    simulated: bool  # the outcome came from simulating the call itself, not only from the preview
    guard: Guard
    steps: tuple[TxStep, ...]
    lines: tuple[tuple[str, str], ...]  # the preview, as label/value rows

    @property
    def title(self) -> str:
        return f"{self.action} {self.lines[0][1]}"


def parse_guard(text: str | None, action: Action, vault: DepositorVault, *, what: str) -> int | None:
    """A guard bound given as text (shares for deposit and withdraw, assets for redeem) in base units; None
    without one (the tolerance sets it). `what` names the field in an error."""
    if text is None:
        return None
    decimals = vault.decimals if _OUTCOMES[action].in_shares else vault.asset_decimals
    return parse_amount(text, decimals, what=what)


def resolve_amount(text: str, action: Action, vault: DepositorVault, account: str) -> int:
    """AMOUNT (assets) or SHARES (redeem) in base units; 'max'/'all' means as much as the vault allows now."""
    if _means_max(text):
        if action == "deposit":
            amount = min(vault.asset_balance(account), vault.reader.max_deposit(account))
        elif action == "withdraw":
            amount = vault.reader.max_withdraw(account)
        else:
            amount = vault.reader.max_redeem(account)
        if amount == 0:
            raise Refusal(f"nothing to {action}: " + _why_nothing(action, vault, account))
        return amount
    decimals = vault.decimals if action == "redeem" else vault.asset_decimals
    return parse_amount(text, decimals, what="SHARES" if action == "redeem" else "AMOUNT")


def _means_max(text: str) -> bool:
    return text.strip().lower() in MAX_WORDS


def plan_request(vault: DepositorVault, action: Action, account: str, text: str, *, guard_bound: int | None = None,
                 tolerance_bps: int = DEFAULT_TOLERANCE_BPS) -> Plan:
    """`plan_action` of TEXT (`resolve_amount`), except that withdrawing 'max' when it is the account's whole
    position redeems every share instead: withdrawing the position's worth burns the shares that worth costs,
    rounded, and can leave share dust behind. The withdrawal's guard (at most `guard_bound` shares burned) is
    then checked on all the shares; the assets they pay get the redemption's guard at `tolerance_bps`."""
    amount = resolve_amount(text, action, vault, account)
    shares = vault.reader.balance(account)
    if action != "withdraw" or not _means_max(text) or vault.reader.max_redeem(account) != shares:
        return plan_action(vault, action, account, amount, guard_bound=guard_bound, tolerance_bps=tolerance_bps)
    if guard_bound is not None and shares > guard_bound:
        raise GuardRefusal(f"withdrawing everything burns all {vault.shares_text(shares)}, past the maximum of "
                           f"{vault.shares_text(guard_bound)}; loosen the maximum", action)
    return plan_action(vault, "redeem", account, shares, tolerance_bps=tolerance_bps)


def _why_nothing(action: Action, vault: DepositorVault, account: str) -> str:
    if action == "deposit":
        if vault.reader.paused():
            return PAUSED
        if vault.asset_balance(account) == 0:
            return f"{account} holds no {vault.asset_symbol}"
        return "the vault is at its deposit limit"
    if vault.reader.balance(account) == 0:
        return f"{account} holds no {vault.symbol} shares"
    return "no liquidity: idle is empty and the markets pay nothing out now"


def plan_action(vault: DepositorVault, action: Action, account: str, amount: int, *,
                guard_bound: int | None = None, tolerance_bps: int = DEFAULT_TOLERANCE_BPS) -> Plan:
    """Check, preview and simulate one action; raises Refusal naming why the vault would say no."""
    builders: dict[Action, Callable[..., Plan]] = {"deposit": _plan_deposit, "withdraw": _plan_withdraw,
                                                   "redeem": _plan_redeem}
    if action not in builders:
        raise BadInput(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
    return builders[action](vault, account, amount, guard_bound, tolerance_bps)


def _plan_deposit(vault: DepositorVault, account: str, assets: int, guard_bound: int | None,
                  tolerance_bps: int) -> Plan:
    reader, assets_text = vault.reader, vault.assets_text(assets)
    if reader.paused():
        raise Refusal(PAUSED)
    room = reader.max_deposit(account)
    if assets > room:
        raise Refusal(f"over the deposit limit: the vault takes at most {vault.assets_text(room)} now "
                      f"(limit {vault.assets_text(reader.deposit_limit())}, total assets "
                      f"{vault.assets_text(reader.total_assets())}); asked to deposit {assets_text}")
    balance = vault.asset_balance(account)
    if assets > balance:
        raise Refusal(f"insufficient balance: {account} holds {vault.assets_text(balance)}, "
                      f"the deposit needs {assets_text}")
    allowance = vault.asset_allowance(account)
    approve = None
    if allowance < assets:  # exactly what this deposit needs: no standing unlimited approval
        approve = TxStep(f"approve the vault to take {assets_text} (allowance now {vault.assets_text(allowance)})",
                       vault.asset.functions.approve(vault.address, assets))
    return _finish(vault, "deposit", account, assets, vault.contract.functions.deposit(assets, account),
                   reader.preview_deposit(assets), guard_bound, tolerance_bps, approve=approve,
                   after=lambda minted: ("wallet after", vault.assets_text(balance - assets)))


def _plan_withdraw(vault: DepositorVault, account: str, assets: int, guard_bound: int | None,
                   tolerance_bps: int) -> Plan:
    reader, assets_text = vault.reader, vault.assets_text(assets)
    shares = reader.balance(account)
    worth = reader.preview_redeem(shares)
    if assets > worth:
        raise Refusal(f"insufficient balance: {account}'s {vault.shares_text(shares)} are worth "
                      f"{vault.assets_text(worth)}, less than the {assets_text} asked for")
    liquid = reader.max_withdraw(account)
    if assets > liquid:
        raise Refusal(f"not enough liquidity: the vault can pay out only {vault.assets_text(liquid)} to {account} now "
                      f"(idle plus what its markets pay out now); asked for {assets_text}")
    return _finish(vault, "withdraw", account, assets, vault.contract.functions.withdraw(assets, account, account),
                   reader.preview_withdraw(assets), guard_bound, tolerance_bps,
                   after=lambda burned: ("shares left", vault.shares_text(shares - burned)))


def _plan_redeem(vault: DepositorVault, account: str, shares: int, guard_bound: int | None,
                 tolerance_bps: int) -> Plan:
    reader, shares_text = vault.reader, vault.shares_text(shares)
    owned = reader.balance(account)
    if shares > owned:
        raise Refusal(f"insufficient balance: {account} holds {vault.shares_text(owned)}, "
                      f"asked to redeem {shares_text}")
    redeemable = reader.max_redeem(account)
    if shares > redeemable:
        raise Refusal(f"not enough liquidity: the vault can redeem only {vault.shares_text(redeemable)} "
                      f"(worth {vault.assets_text(reader.preview_redeem(redeemable))}) for {account} now; "
                      f"asked to redeem {shares_text}")
    return _finish(vault, "redeem", account, shares, vault.contract.functions.redeem(shares, account, account),
                   reader.preview_redeem(shares), guard_bound, tolerance_bps,
                   after=lambda paid: ("shares left", vault.shares_text(owned - shares)))


def _finish(vault: DepositorVault, action: Action, account: str, amount: int, call: ContractFunction, preview: int,
            guard_bound: int | None, tolerance_bps: int, *, after: Callable[[int], tuple[str, str]],
            approve: TxStep | None = None) -> Plan:
    """The guard, the outcome (simulated unless an approval must come first) and the preview lines."""
    kind = _OUTCOMES[action]
    show = vault.shares_text if kind.in_shares else vault.assets_text
    if guard_bound is None:
        guard_bound = at_least(preview, tolerance_bps) if kind.minimum else at_most(preview, tolerance_bps)
    guard = Guard(guard_bound, kind.minimum)
    amount_text = vault.shares_text(amount) if action == "redeem" else vault.assets_text(amount)
    if kind.minimum and preview == 0:  # the default guard, 0.5 % below nothing, would let it through
        raise Refusal(f"{kind.would} nothing for {amount_text} (less than one base unit at the share price): "
                      "give more")
    step = TxStep(f"{action} {amount_text}", call)
    outcome, simulated = (preview, False) if approve else (_simulate(call, account), True)
    if not guard.accepts(outcome):
        side = "minimum" if guard.minimum else "maximum"
        raise GuardRefusal(f"price moved past the guard: {kind.would} {show(outcome)}, past the {side} of "
                           f"{show(guard.bound)}; preview again, or loosen the {side} or the tolerance", action)
    lines = ((action, amount_text), (kind.label, show(outcome)),
             ("at least" if kind.minimum else "at most", show(guard.bound)),
             ("share price", vault.share_price_text()), after(outcome))
    steps = (approve, step) if approve else (step,)
    return Plan(action, account, amount, outcome, simulated, guard, steps, lines)


def _simulate(call: ContractFunction, account: str) -> int:
    """The call's return value if sent now from `account`; a revert becomes a Refusal."""
    try:
        return int(call.call({"from": account}))
    except ContractLogicError as error:
        raise Refusal(explain_reason(decode_revert(error))) from error


def execute(vault: DepositorVault, plan: Plan, sender: "Sender",
            on_mined: Callable[[TxStep, TxReceipt], None] = lambda step, receipt: None) -> TxReceipt:
    """Send the plan's steps; after an approval the plan is rebuilt (fresh checks and simulation) with the
    same guard bound, so the action itself is sent only if it still gives what the user accepted."""
    while True:
        step = plan.steps[0]
        receipt = sender.send(step.call)
        on_mined(step, receipt)
        if len(plan.steps) == 1:
            return receipt
        plan = plan_action(vault, plan.action, plan.account, plan.amount, guard_bound=plan.guard.bound)


def describe_result(vault: DepositorVault, receipt: TxReceipt) -> str:
    """What a mined deposit/withdraw/redeem did, from the vault's Deposit/Withdraw events in its receipt."""
    for event in emitted(vault.contract, "Deposit", receipt):
        args = event["args"]
        return f"deposited {vault.assets_text(args['assets'])} for {vault.shares_text(args['shares'])}"
    for event in emitted(vault.contract, "Withdraw", receipt):
        args = event["args"]
        return f"withdrew {vault.assets_text(args['assets'])}, burning {vault.shares_text(args['shares'])}"
    return f"transaction {receipt['transactionHash'].to_0x_hex()} mined without a vault Deposit or Withdraw event"

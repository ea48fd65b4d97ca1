"""The `vaultbot vault` commands' terminal output: rich tables of the dashboard, a balance and a plan."""

from rich.table import Table

from chain.vault_reader import Proposal
from depositor.dashboard import percent_text, read_dashboard, utc_time
from depositor.flows import Plan
from depositor.vault import DepositorVault
from depositor.views import VERIFY_COMMAND


def info_tables(vault: DepositorVault) -> list[Table]:
    board = read_dashboard(vault)
    summary = Table(title=f"{vault.name} ({vault.symbol}) {vault.address}, chain {vault.chain_id}, "
                          f"block {board.block}", show_header=False)
    for label, value in (
        ("total assets", vault.assets_text(board.total_assets)),
        ("share price", vault.share_price_text()),
        ("shares outstanding", vault.shares_text(board.total_supply)),
        ("current APY (market rates, after fee)", percent_text(board.current_apy) or "n/a"),
        ("realised APY (share price history)", percent_text(board.realised_apy) or "n/a"),
        ("status", "PAUSED: deposits stopped, withdrawals open" if board.paused else "open"),
        ("markets last reported", utc_time(board.last_report)),
        *board.guardrails,
    ):
        summary.add_row(label, value)

    allocation = Table(title="allocation")
    for column in ("market", "position", "share", "cap (bps / abs)", "cap used", "APY"):
        allocation.add_column(column)
    for m in board.markets:
        allocation.add_row(m.name, vault.assets_text(m.position), percent_text(m.share),
                           f"{m.cap_bps} / {vault.assets_text(m.cap_abs)}", percent_text(m.cap_used),
                           percent_text(m.apy) or "n/a")
    allocation.add_row("idle", vault.assets_text(board.idle),
                       percent_text(board.idle / board.total_assets if board.total_assets else 0.0), "", "", "0.00 %")
    tables = [summary, allocation, *(proposal_table(vault, proposal) for proposal in board.proposals)]
    if board.rebalances:
        rebalances = Table(title="last rebalances (check one with the command shown)")
        for column in ("block", "moved", "total after", "decision hash", "verify"):
            rebalances.add_column(column)
        for r in board.rebalances:
            rebalances.add_row(str(r.block), vault.assets_text(r.moved), vault.assets_text(r.total_after),
                               r.decision_hash, VERIFY_COMMAND.format(tx=r.tx_hash))
        tables.append(rebalances)
    return tables


def balance_table(vault: DepositorVault, account: str) -> Table:
    reader = vault.reader
    shares = reader.balance(account)
    table = Table(title=f"{account} in {vault.name}", show_header=False)
    for label, value in (
        ("wallet", vault.assets_text(vault.asset_balance(account))),
        ("shares", vault.shares_text(shares)),
        ("worth", vault.assets_text(reader.preview_redeem(shares))),
        ("can deposit now", vault.assets_text(min(vault.asset_balance(account), reader.max_deposit(account)))),
        ("can withdraw now", vault.assets_text(reader.max_withdraw(account))),
        ("can redeem now", vault.shares_text(reader.max_redeem(account))),
        ("vault allowance", vault.assets_text(vault.asset_allowance(account))),
    ):
        table.add_row(label, value)
    return table


def plan_table(plan: Plan) -> Table:
    source = "simulated now" if plan.simulated else "previewed (simulated again after the approval)"
    table = Table(title=f"{plan.title} from {plan.account} ({source})", show_header=False)
    for label, value in plan.lines:
        table.add_row(label, value)
    for number, step in enumerate(plan.steps, 1):
        table.add_row(f"transaction {number}", step.label)
    return table


def proposal_table(vault: DepositorVault, proposal: Proposal) -> Table:
    """A rebalance the keeper proposed beyond the daily budgets: what the guardian approves or rejects."""
    state = "approved: the keeper runs it at its next cycle" if proposal.approved else "waiting for the guardian"
    table = Table(title=f"proposal {proposal.id} ({state})", show_header=False)
    table.add_row("decision hash", proposal.decision_hash)
    table.add_row("deadline", utc_time(proposal.deadline))
    for market, target in proposal.allocations:
        table.add_row(f"target of {market}", vault.assets_text(target))
    return table

"""The `vaultbot vault` commands' terminal output: rich tables of the dashboard, a balance and a plan."""

from collections.abc import Callable, Mapping

from rich.table import Table
from rich.text import Text

from chain.vault_reader import Proposal
from depositor.dashboard import percent_text, read_dashboard, utc_time
from depositor.flows import Plan
from depositor.keeper_health import DECISION_COLUMNS, KeeperDecision, KeeperSources, last_decision
from depositor.vault import DepositorVault
from depositor.views import VERIFY_COMMAND


def info_tables(vault: DepositorVault, keeper: KeeperSources | None = None) -> list[Table | Text]:
    """The dashboard; with the keeper's journal, its last decision next to each market and why."""
    board = read_dashboard(vault)
    decision = None if keeper is None else last_decision(keeper, vault.reader, vault.asset_decimals)
    summary = Table(title=f"{vault.name} ({vault.symbol}) {vault.address}, chain {vault.chain_id}, "
                          f"block {board.block}", show_header=False)
    for label, value in (
        ("total assets", vault.assets_text(board.total_assets)),
        ("share price", vault.share_price_text()),
        ("shares outstanding", vault.shares_text(board.total_supply)),
        ("current APY (markets' rates on chain, after fee)", percent_text(board.current_apy) or "n/a"),
        ("realised APY (share price history)", percent_text(board.realised_apy) or "n/a"),
        ("status", "PAUSED: deposits stopped, withdrawals open" if board.paused else "open"),
        ("markets last reported", utc_time(board.last_report)),
        *board.guardrails,
    ):
        summary.add_row(label, value)

    allocation = Table(title="allocation")
    for column in ("market", "position", "share", "cap (bps / abs)", "cap used", "APY on chain"):
        allocation.add_column(column)
    for m in board.markets:
        allocation.add_row(m.name, vault.assets_text(m.position), percent_text(m.share),
                           f"{m.cap_bps} / {vault.assets_text(m.cap_abs)}", percent_text(m.cap_used),
                           percent_text(m.apy) or "n/a")
    allocation.add_row("idle", vault.assets_text(board.idle),
                       percent_text(board.idle / board.total_assets if board.total_assets else 0.0), "", "", "0.00 %")
    tables: list[Table | Text] = [summary, allocation,
                                  *(proposal_table(vault, proposal) for proposal in board.proposals)]
    if decision is not None:
        names = {m.address: m.name for m in board.markets}
        tables[2:2] = decision_tables(decision, names, {m.address: m.apy for m in board.markets}, vault.assets_text)
    if board.breaches:
        tables.insert(0, Text("\n".join(["OUTSIDE THE VAULT'S LIMITS (the keeper moves back as fast as its limits "
                                          "allow):", *(f"  {line}" for line in board.breaches)]), style="bold red"))
    if board.rebalances:  # lines, not a table: a column cuts a hash to fit, and a cut hash cannot be copied
        lines = ["last rebalances (check one with the command shown):"]
        for r in board.rebalances:
            lines += [f"block {r.block}: moved {vault.assets_text(r.moved)}, total after "
                      f"{vault.assets_text(r.total_after)}, decision {r.decision_hash}",
                      f"  {VERIFY_COMMAND.format(tx=r.tx_hash)}"]
        tables.append(Text("\n".join(lines)))
    return tables


def decision_tables(decision: KeeperDecision, names: Mapping[str, str], apys: Mapping[str, float | None],
                    assets: Callable[[int], str]) -> list[Table | Text]:
    """The keeper's last decision (`vault info`, `keeper status`): why, then per market (`names`, by address) its
    APY on chain (`apys`) next to the keeper's forecast, event probability, target, gain and the limit it met."""
    table = Table(title="the keeper's forecasts next to the markets' APY on chain, and what it decided")
    for column in ("market", "APY on chain", *DECISION_COLUMNS.values()):
        table.add_column(column, justify="left" if column in ("market", "limit") else "right")
    for market, name in names.items():
        cells = decision.cells(market, assets)
        table.add_row(name, percent_text(apys.get(market)) or "n/a", *(cells[key] for key in DECISION_COLUMNS))
    return [Text("\n".join(decision.lines(assets, names))), table]


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

"""`vaultbot vault info|balance|deposit|withdraw|redeem`: a depositor's commands; `vault approve|reject`: the
guardian's answer to a rebalance the keeper proposed beyond the daily budgets.

Without --rpc/--vault the devnet deployment JSON (as `vaultbot devnet up` wrote it) names the chain and
the vault. Every action previews first (what it will mint, burn or pay, and the guard), refuses early with
the reason the vault would give, asks before sending (unless --yes), approves only when the allowance is
short, and is re-simulated against the guard right before it is sent.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

# the devnet group's default deployment path and error line, so every group finds and fails alike
from cli.common import JsonOption, as_flags, deployment_path, fail

if TYPE_CHECKING:
    from depositor.flows import Action
    from depositor.guardian import Answer
    from depositor.vault import DepositorVault

app = typer.Typer(help="A depositor's view of the vault: figures, balances, deposit, withdraw, redeem; the "
                       "guardian's approve and reject of the keeper's proposals.",
                  no_args_is_help=True)

RpcOption = Annotated[str | None, typer.Option("--rpc", help="JSON-RPC URL. Default: the devnet JSON's.")]
VaultOption = Annotated[str | None, typer.Option("--vault", help="Vault address. Default: the devnet JSON's.")]
DecisionsOption = Annotated[Path | None, typer.Option(
    "--decisions", exists=True, file_okay=False, help="Directory of the keeper's decision bundles (its "
    "service.decisions_dir, or a copy of it) to verify its rebalances with. Default: for the devnet's vault, the "
    "devnet keeper's, once it has written one.")]
AccountOption = Annotated[str, typer.Option(
    "--account", help="Who acts: an anvil account index (3) or an address the node holds unlocked, "
                      "or a keystore JSON file (signed locally).")]
PasswordFileOption = Annotated[Path | None, typer.Option("--password-file", help="Keystore password file.")]
PasswordEnvOption = Annotated[str | None, typer.Option(
    "--password-env", help="Variable holding the keystore password.")]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Send without asking for confirmation.")]
SlippageOption = Annotated[str, typer.Option(
    "--slippage", help="How much worse than the preview the outcome may be before the send is refused "
                       "(used when no explicit bound is given), e.g. 0.5% or 50bps.")]


# The option that sets each action's guard (`depositor.flows.Guard`).
GUARD_FLAGS: dict["Action", str] = {"deposit": "--min-shares", "withdraw": "--max-shares", "redeem": "--min-assets"}


@contextmanager
def _one_line_errors() -> Iterator[None]:
    """Refusals and bad input as one line and exit code 1 (2 for bad input), never a traceback."""
    from chain.errors import RpcUnavailable
    from depositor.errors import BadInput, DepositorError, GuardRefusal

    try:
        yield
    except BadInput as error:
        fail(as_flags(error), 2)
    except GuardRefusal as error:  # the library says "loosen the guard"; here it is a flag
        fail(f"{error} ({GUARD_FLAGS[error.action]} or --slippage)")
    except (DepositorError, RpcUnavailable) as error:
        fail(str(error))


def _open(rpc: str | None, vault: str | None, json_path: Path | None) -> "DepositorVault":
    from depositor.vault import open_vault

    return open_vault(rpc, vault, deployment_path(json_path))


@app.command()
def info(rpc: RpcOption = None, vault: VaultOption = None, json_path: JsonOption = None,
         decisions: DecisionsOption = None) -> None:
    """The vault's figures: total assets, share price, APY, allocation against caps, guardrails; for the devnet's
    vault, the devnet keeper's last decision next to each market (its forecasts, targets and why); last, whether
    the last rebalance's decision re-executes from its bundle (as `vaultbot verify` checks it)."""
    from rich.console import Console

    from cli.web import keeper_sources
    from depositor.report import info_tables
    from depositor.verification import Verifier

    with _one_line_errors():
        opened = _open(rpc, vault, json_path)
        sources = keeper_sources(deployment_path(json_path), decisions=decisions, devnet=vault is None)
        tables = info_tables(opened, sources)
        status = Verifier(sources.decisions_dir).status(opened)
    console = Console(soft_wrap=True)  # lines longer than the terminal are left whole: hashes stay copyable
    for table in tables:
        console.print(table)
    typer.echo(status)  # not through rich: its markup would take a [bracket] of a path for a style


@app.command()
def balance(account: AccountOption, rpc: RpcOption = None, vault: VaultOption = None,
            json_path: JsonOption = None) -> None:
    """An account's asset balance, shares, what they are worth, and what it can deposit or withdraw now."""
    from rich.console import Console

    from depositor.accounts import resolve_address
    from depositor.report import balance_table

    with _one_line_errors():
        opened = _open(rpc, vault, json_path)
        table = balance_table(opened, resolve_address(opened.w3, account))
    Console().print(table)


@app.command()
def deposit(
    amount: Annotated[str, typer.Argument(
        help="Assets to deposit, e.g. 1000 or 1,000.50; 'max' for all the vault takes.")],
    account: AccountOption,
    min_shares: Annotated[str | None, typer.Option(
        "--min-shares", help="Refuse if fewer shares would be minted.")] = None,
    slippage: SlippageOption = "0.5%", yes: YesOption = False, rpc: RpcOption = None, vault: VaultOption = None,
    json_path: JsonOption = None, password_file: PasswordFileOption = None, password_env: PasswordEnvOption = None,
) -> None:
    """Deposit AMOUNT of the asset (approving the vault first if the allowance is short)."""
    _act("deposit", amount, min_shares, account, slippage, yes, rpc, vault, json_path, password_file, password_env)


@app.command()
def withdraw(
    amount: Annotated[str, typer.Argument(help="Assets to receive, e.g. 250; 'max' for all that is liquid now.")],
    account: AccountOption,
    max_shares: Annotated[str | None, typer.Option(
        "--max-shares", help="Refuse if more shares would be burned.")] = None,
    slippage: SlippageOption = "0.5%", yes: YesOption = False, rpc: RpcOption = None, vault: VaultOption = None,
    json_path: JsonOption = None, password_file: PasswordFileOption = None, password_env: PasswordEnvOption = None,
) -> None:
    """Withdraw exactly AMOUNT of the asset, burning the shares it costs."""
    _act("withdraw", amount, max_shares, account, slippage, yes, rpc, vault, json_path, password_file, password_env)


@app.command()
def redeem(
    shares: Annotated[str, typer.Argument(
        help="Vault shares to burn, e.g. 100.5; 'all' for every share redeemable now.")],
    account: AccountOption,
    min_assets: Annotated[str | None, typer.Option(
        "--min-assets", help="Refuse if fewer assets would be paid.")] = None,
    slippage: SlippageOption = "0.5%", yes: YesOption = False, rpc: RpcOption = None, vault: VaultOption = None,
    json_path: JsonOption = None, password_file: PasswordFileOption = None, password_env: PasswordEnvOption = None,
) -> None:
    """Redeem exactly SHARES for the assets they are worth."""
    _act("redeem", shares, min_assets, account, slippage, yes, rpc, vault, json_path, password_file, password_env)


def _act(action: "Action", amount_text: str, guard_text: str | None, account: str, slippage: str, yes: bool,
         rpc: str | None, vault: str | None, json_path: Path | None, password_file: Path | None,
         password_env: str | None) -> None:
    from rich.console import Console

    from depositor.accounts import open_sender
    from depositor.amounts import parse_bps
    from depositor.flows import describe_result, execute, parse_guard, plan_request
    from depositor.report import plan_table

    console = Console()
    with _one_line_errors():
        tolerance = parse_bps(slippage, what="--slippage")
        opened = _open(rpc, vault, json_path)
        sender = open_sender(opened.w3, account, password_file=password_file, password_env=password_env)
        plan = plan_request(opened, action, sender.address, amount_text,
                            guard_bound=parse_guard(guard_text, action, opened, what=GUARD_FLAGS[action]),
                            tolerance_bps=tolerance)
        if plan.action != action:  # withdrawing everything
            typer.echo(f"withdrawing everything: redeeming all {opened.shares_text(plan.amount)}, so that no share "
                       "dust is left")
        console.print(plan_table(plan))
        _confirm(yes, f"Send {len(plan.steps)} transaction(s) from {sender.address}?")
        receipt = execute(opened, plan, sender, on_mined=lambda step, mined: typer.echo(
            f"{step.label}: mined in block {mined['blockNumber']} ({mined['transactionHash'].to_0x_hex()})"))
        typer.echo(describe_result(opened, receipt))


def _confirm(yes: bool, question: str) -> None:
    """Ask `question` unless --yes; a no is the user's choice, not a failure: exit 0 with nothing sent."""
    if not yes and not typer.confirm(question):
        typer.echo("cancelled, nothing sent")
        raise typer.Exit(0)


ProposalArgument = Annotated[str, typer.Argument(help="The proposal id (`vaultbot keeper status` lists them).")]


@app.command()
def approve(proposal: ProposalArgument, account: AccountOption, yes: YesOption = False, rpc: RpcOption = None,
            vault: VaultOption = None, json_path: JsonOption = None, password_file: PasswordFileOption = None,
            password_env: PasswordEnvOption = None) -> None:
    """Approve, as the guardian, the keeper's proposal PROPOSAL: the keeper runs it at its next cycle."""
    _answer("approve", proposal, account, yes, rpc, vault, json_path, password_file, password_env)


@app.command()
def reject(proposal: ProposalArgument, account: AccountOption, yes: YesOption = False, rpc: RpcOption = None,
           vault: VaultOption = None, json_path: JsonOption = None, password_file: PasswordFileOption = None,
           password_env: PasswordEnvOption = None) -> None:
    """Reject, as the guardian, the keeper's proposal PROPOSAL: it never runs."""
    _answer("reject", proposal, account, yes, rpc, vault, json_path, password_file, password_env)


def _answer(answer: "Answer", proposal_id: str, account: str, yes: bool, rpc: str | None, vault: str | None,
            json_path: Path | None, password_file: Path | None, password_env: str | None) -> None:
    from rich.console import Console

    from depositor.accounts import open_sender
    from depositor.guardian import answer_proposal, check_guardian, live_proposal
    from depositor.report import proposal_table

    with _one_line_errors():
        opened = _open(rpc, vault, json_path)
        proposal = live_proposal(opened, proposal_id)
        sender = open_sender(opened.w3, account, password_file=password_file, password_env=password_env)
        check_guardian(opened, sender.address, answer)
        Console().print(proposal_table(opened, proposal))
        _confirm(yes, f"{answer.capitalize()} it from {sender.address}?")
        receipt = answer_proposal(opened, sender, proposal, answer)
    then = "the keeper runs it at its next cycle" if answer == "approve" else "it never runs"
    typer.echo(f"{answer}d proposal {proposal.id} in block {receipt['blockNumber']} "
               f"({receipt['transactionHash'].to_0x_hex()}): {then}")

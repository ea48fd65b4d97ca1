"""`vaultbot verify TX --bundle DIR`: anyone re-executes a rebalance's decision from its bundle and the chain,
without the keeper's journal or keys (`decisions.check`)."""

from pathlib import Path
from typing import Annotated

import typer

from cli.common import JsonOption, deployment_path, exit_on, fail


def verify(
    tx: Annotated[str, typer.Argument(help="Hash of a rebalance transaction (0x + 64 hex digits).")],
    bundle: Annotated[Path, typer.Option("--bundle", help="Directory of decision bundles (the keeper's "
                                                          "service.decisions_dir, or a copy of it).")],
    rpc: Annotated[str | None, typer.Option("--rpc", help="JSON-RPC URL. Default: the devnet JSON's.")] = None,
    vault: Annotated[str | None, typer.Option("--vault", help="Vault address. Default: the devnet JSON's.")] = None,
    json_path: JsonOption = None,
) -> None:
    """Re-run the model and the allocator on the decision bundle a rebalance's hash names and check every hash.
    Ends in one verdict line: REPRODUCED (exit 0), BUNDLE TAMPERED (which part), DIFFERENT TARGETS (per market)
    or BUNDLE MISSING (exit 1); exit 2 for a TX that is not a hash."""
    from chain.errors import RpcUnavailable
    from journal.audit import NotAHash, transaction_hash

    try:
        tx = transaction_hash(tx)  # before any connection: a mistyped hash needs no chain to be told
    except NotAHash as error:
        fail(f"TX: {error}", 2)
    if not bundle.is_dir():
        fail(f"--bundle {bundle}: not a directory")
    from web3.exceptions import TransactionNotFound

    from chain.events import emitted
    from decisions.check import check_decision
    from depositor.errors import BadInput
    from depositor.vault import open_vault

    with exit_on(BadInput, RpcUnavailable):
        opened = open_vault(rpc, vault, deployment_path(json_path))  # the vault named as `vault info` names it
        w3, contract, address = opened.w3, opened.contract, opened.address
        try:
            receipt = w3.eth.get_transaction_receipt(tx)
        except TransactionNotFound:
            fail(f"TX: chain {w3.eth.chain_id} has no mined transaction {tx}")
        events = emitted(contract, "Rebalanced", receipt)
        if len(events) != 1:
            fail(f"TX: transaction {tx} emitted {len(events)} Rebalanced events from vault {address}, not one")
        decision_hash = "0x" + bytes(events[0]["args"]["decision_hash"]).hex()
        check = check_decision(bundle, decision_hash, chain_id=opened.chain_id, vault=address)
    typer.echo(f"transaction {tx}, block {receipt['blockNumber']}")
    for line in check.lines():
        typer.echo(line)
    raise typer.Exit(0 if check.ok else 1)

"""`vaultbot verify TX --bundle URL|DIR`: anyone re-executes a rebalance's decision from its bundle and the chain,
without the keeper's journal or keys (`decisions.check`; a bundle published over HTTP: `decisions.fetch`)."""

from pathlib import Path
from typing import Annotated

import typer

from cli.common import JsonOption, deployment_path, exit_on, fail


def verify(
    tx: Annotated[str, typer.Argument(help="Hash of a rebalance transaction (0x + 64 hex digits).")],
    bundle: Annotated[str | None, typer.Option("--bundle", help="Directory of decision bundles (the keeper's "
                                                                "service.decisions_dir, or a copy of it), or the "
                                                                "base URL of a server publishing them (the "
                                                                "keeper's own, http://HOST:PORT of "
                                                                "service.metrics_port). Default: the vault's "
                                                                "decisions_uri.")] = None,
    rpc: Annotated[str | None, typer.Option("--rpc", help="JSON-RPC URL. Default: the devnet JSON's.")] = None,
    vault: Annotated[str | None, typer.Option("--vault", help="Vault address. Default: the devnet JSON's.")] = None,
    json_path: JsonOption = None,
) -> None:
    """Re-run the model and the allocator on the decision bundle a rebalance's hash names (in DIR, or downloaded
    from URL, by default the one the vault publishes, into a temporary directory) and check every hash. Ends in
    one verdict line: REPRODUCED (exit 0), BUNDLE TAMPERED (which part), DIFFERENT TARGETS (per market) or BUNDLE
    MISSING (exit 1); exit 2 for a TX that is not a hash."""
    from chain.errors import RpcUnavailable
    from journal.audit import NotAHash, transaction_hash

    try:
        tx = transaction_hash(tx)  # before any connection: a mistyped hash needs no chain to be told
    except NotAHash as error:
        fail(f"TX: {error}", 2)
    from decisions.fetch import FetchError, check_published, is_url

    if bundle is not None and not is_url(bundle) and not Path(bundle).is_dir():
        fail(f"--bundle {bundle}: not a directory, nor an http(s) URL")
    from decisions.check import check_decision
    from depositor.errors import BadInput
    from depositor.vault import open_vault
    from depositor.verification import published_at, rebalance_of

    with exit_on(BadInput, RpcUnavailable, FetchError):
        opened = open_vault(rpc, vault, deployment_path(json_path))  # the vault named as `vault info` names it
        rebalance = rebalance_of(opened, tx)
        if bundle is None:
            bundle = published_at(opened)
            if bundle is None or not is_url(bundle):
                fail(f"no --bundle given, and vault {opened.address} publishes "
                     f"{'no decisions_uri' if bundle is None else f'decisions_uri {bundle!r}, not an http(s) URL'}: "
                     "pass --bundle DIR|URL")
        chain_id, address = opened.chain_id, opened.address
        check = (check_published(bundle, rebalance.decision_hash, chain_id=chain_id, vault=address)
                 if is_url(bundle) else
                 check_decision(Path(bundle), rebalance.decision_hash, chain_id=chain_id, vault=address))
    typer.echo(f"transaction {tx}, block {rebalance.block}")
    for line in check.lines():
        typer.echo(line)
    raise typer.Exit(0 if check.ok else 1)

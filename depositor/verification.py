"""Whether a rebalance's decision re-executes from its bundle (`decisions.check`): the page's verify action and
`vault info`'s status line.

The decision hash is the one the chain holds (the vault's own `Rebalanced` event in the transaction's receipt),
never one a client sends; the bundles are a local directory (`bundle_directory`). A verdict depends only on the
bundle and its model artifact, so it is cached per decision hash while those files are unchanged on disk: a
re-run costs about a second of LightGBM, and a copy changed after a first check (tampered with, or restored) is
checked again.
"""

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hexbytes import HexBytes
from web3.exceptions import BadFunctionCallOutput, ContractLogicError, TransactionNotFound

from chain.events import emitted
from depositor.errors import BadInput, Refusal, quoted
from depositor.vault import DepositorVault
from journal.audit import NotAHash, transaction_hash

if TYPE_CHECKING:
    from decisions.check import Check

NO_DIRECTORY = "no bundle directory known (the keeper's service.decisions_dir, or a copy of it)"

# A file as last seen: its path and (size, mtime, ctime, inode), which any write or replacement changes; None when
# absent.
FileSeen = tuple[str, tuple[int, int, int, int] | None]


@dataclass(frozen=True)
class Rebalance:
    """A rebalance transaction and the decision hash its `Rebalanced` event carries."""

    tx_hash: str
    block: int
    decision_hash: str


def bundle_directory(given: Path | None, keepers: Path | None) -> Path | None:
    """The bundles to verify with: `given`, else the keeper's own `service.decisions_dir` once it has written there."""
    if given is not None:
        return given
    return keepers if keepers is not None and keepers.is_dir() else None


def rebalance_of(vault: DepositorVault, tx: object) -> Rebalance:
    """The rebalance `tx` (a transaction hash) of `vault`, read from the chain; BadInput naming what is wrong."""
    if not isinstance(tx, str):
        raise BadInput(f"tx must be a transaction hash (0x + 64 hex digits), got {quoted(tx)}")
    try:
        tx_hash = transaction_hash(tx)
    except NotAHash as error:
        raise BadInput(f"tx: {error}") from None
    try:
        receipt = vault.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
    except TransactionNotFound:
        raise BadInput(f"tx: chain {vault.chain_id} has no mined transaction {tx_hash}") from None
    events = emitted(vault.contract, "Rebalanced", receipt)
    if len(events) != 1:
        raise BadInput(f"tx: transaction {tx_hash} emitted {len(events)} Rebalanced events from vault "
                       f"{vault.address}, not one: it is not a rebalance of this vault")
    return Rebalance(tx_hash, receipt["blockNumber"], HexBytes(events[0]["args"]["decision_hash"]).to_0x_hex())


def published_at(vault: DepositorVault) -> str | None:
    """The base URL the vault says its decision bundles are published under (`decisions_uri`), None when it
    names none (empty, or a vault from before the view)."""
    try:
        uri = vault.contract.functions.decisions_uri().call()
    except (ContractLogicError, BadFunctionCallOutput):
        return None
    return uri or None


def last_rebalance(vault: DepositorVault) -> Rebalance | None:
    """The vault's latest rebalance (None before the first)."""
    events = vault.reader.rebalance_events()
    return None if not events else Rebalance(events[-1].tx_hash, events[-1].block, events[-1].decision_hash)


class Verifier:
    """Checks decisions against the bundles in `directory` (None: none known), one at a time, caching verdicts."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._lock = threading.Lock()  # one check at a time: each takes a core for about a second
        self._verdicts: dict[tuple[str, int, str], tuple[tuple[FileSeen, ...], Check]] = {}

    def check(self, vault: DepositorVault, rebalance: Rebalance) -> "Check":
        """The verdict on `rebalance`'s decision; Refusal when no bundle directory is known."""
        # decisions (LightGBM, pandas) load here, not with every `vault` command that imports this module
        from decisions.check import check_decision

        if self.directory is None:
            raise Refusal(f"cannot verify here: {NO_DIRECTORY}")
        key = (rebalance.decision_hash, vault.chain_id, vault.address)
        with self._lock:
            seen = _files_seen(self.directory, rebalance.decision_hash)
            cached = self._verdicts.get(key)
            if cached is not None and cached[0] == seen:
                return cached[1]
            check = check_decision(self.directory, rebalance.decision_hash, chain_id=vault.chain_id,
                                   vault=vault.address)
            self._verdicts[key] = (seen, check)
            return check

    def status(self, vault: DepositorVault) -> str:
        """One line on the vault's last rebalance: its decision hash and verdict, or why there is none."""
        last = last_rebalance(vault)
        if last is None:
            return "last rebalance: none yet, no decision to verify"
        if self.directory is None:
            return f"last rebalance's decision {last.decision_hash}: not verified: {NO_DIRECTORY}"
        check = self.check(vault, last)
        return (f"last rebalance's decision {last.decision_hash}: {check.verdict}: {check.why} "
                f"(bundles in {self.directory})")


def _files_seen(directory: Path, decision_hash: str) -> tuple[FileSeen, ...]:
    """The decision's bundle and every model artifact file, as they are now."""
    from decisions.bundle import MODELS_DIR, bundle_path

    files = [bundle_path(directory, decision_hash)]
    files += sorted(Path(root) / name for root, _, names in os.walk(directory / MODELS_DIR) for name in names)
    return tuple((str(path), _stat(path)) for path in files)


def _stat(path: Path) -> tuple[int, int, int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino

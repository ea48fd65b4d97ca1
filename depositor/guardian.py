"""The guardian's answer to a rebalance the keeper proposed beyond the daily budgets: approve or reject it.

Checked before anything is sent: the id names a live proposal of the vault (not run, rejected or past its
deadline), and the account is the vault's guardian. An approved proposal runs at the keeper's next cycle.
"""

from typing import Literal

from hexbytes import HexBytes
from web3.types import TxReceipt

from chain.vault_reader import Proposal
from depositor.accounts import Sender
from depositor.errors import BadInput, Refusal, quoted
from depositor.vault import DepositorVault

Answer = Literal["approve", "reject"]
_ID_DIGITS = 64


def live_proposal(vault: DepositorVault, proposal_id: str) -> Proposal:
    """The vault's live proposal `proposal_id` (0x + 64 hex digits)."""
    text = proposal_id.strip().lower()
    digits = text.removeprefix("0x")
    if not text.startswith("0x") or len(digits) != _ID_DIGITS or any(c not in "0123456789abcdef" for c in digits):
        raise BadInput(f"ID must be a proposal id (0x + 64 hex digits), got {quoted(proposal_id)}")
    for proposal in vault.reader.proposals():
        if proposal.id == text:
            return proposal
    raise Refusal(f"no live proposal {text}: it ran, expired or was rejected (`vaultbot keeper status` lists the live "
                  "ones)")


def check_guardian(vault: DepositorVault, account: str, answer: Answer) -> None:
    """Refuses unless `account` is the vault's guardian, the only one who may answer a proposal."""
    guardian = vault.reader.snapshot().guardian
    if account != guardian:
        raise Refusal(f"{account} is not the vault's guardian ({guardian}): only the guardian may {answer} a proposal")


def answer_proposal(vault: DepositorVault, sender: Sender, proposal: Proposal, answer: Answer) -> TxReceipt:
    """Sends the approval or rejection of `proposal` from `sender` (the guardian: `check_guardian`); a refusal by
    the vault (the proposal gone meanwhile) raises Refusal."""
    functions = vault.contract.functions
    call = functions.approve_rebalance if answer == "approve" else functions.reject_rebalance
    return sender.send(call(HexBytes(proposal.id)))

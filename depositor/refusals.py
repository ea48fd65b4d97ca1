"""The vault's and the token's revert reasons, as sentences a depositor can act on.

The plans check every one of these before sending (contracts/README.md says when each applies); these
texts are for a revert that still happens, e.g. when the chain moved between the check and the block.
"""

PAUSED = "the vault is paused: deposits are stopped (withdrawals and redemptions stay open)"

_REASONS = {
    "vault: paused": PAUSED,
    "vault: deposit more than max": (
        "over the deposit limit: the vault takes less than that now (see `vaultbot vault info`)"
    ),
    "vault: mint more than max": (
        "over the deposit limit: the vault takes less than that now (see `vaultbot vault info`)"
    ),
    "vault: withdraw more than max": (
        "not enough liquidity or shares: the vault pays out less than that to this account now"
    ),
    "vault: redeem more than max": (
        "not enough liquidity or shares: the vault redeems fewer shares than that for this account now"
    ),
    "erc20: transfer amount exceeds balance": "insufficient balance: the account holds less of the asset than that",
    "erc20: burn amount exceeds balance": "insufficient balance: the account holds fewer vault shares than that",
    "erc20: insufficient allowance": "the vault may not take that much of the account's asset: approve it first",
    "vault: transferFrom failed": "the asset token refused the transfer into the vault",
    "vault: not guardian": "only the vault's guardian may approve or reject a proposal",
    "vault: no live proposal": "the proposal ran, expired or was rejected meanwhile",
}


def explain_reason(reason: str | None) -> str:
    """A depositor-facing sentence for a revert reason (the raw reason is kept in the text)."""
    if reason is None:
        return "the transaction would revert without a reason (out of gas, or a contract without messages)"
    known = _REASONS.get(reason)
    return f"{known} [{reason}]" if known else f"the vault refused: {reason}"

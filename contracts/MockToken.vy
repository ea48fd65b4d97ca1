# pragma version ~=0.4.3
# SPDX-License-Identifier: AGPL-3.0-only
"""
@title MockToken
@custom:contract-name MockToken
@license GNU Affero General Public License v3.0 only
@notice The devnet asset: snekmate's ERC-20 + EIP-2612 with a public,
        unrestricted `mint` (a faucet). Never deploy it where the token
        is meant to be worth anything.
"""

from snekmate.auth import ownable
from snekmate.tokens import erc20

initializes: ownable
initializes: erc20[ownable := ownable]

# The plain ERC-20 + EIP-2612 surface; snekmate's role-gated `mint`,
# `set_minter` and the ownership functions are left out on purpose.
exports: (
    erc20.totalSupply,
    erc20.balanceOf,
    erc20.transfer,
    erc20.transferFrom,
    erc20.approve,
    erc20.allowance,
    erc20.name,
    erc20.symbol,
    erc20.decimals,
    erc20.burn,
    erc20.permit,
    erc20.nonces,
    erc20.DOMAIN_SEPARATOR,
    erc20.eip712Domain,
)


@deploy
def __init__(name: String[25], symbol: String[5], decimals: uint8):
    """
    @param name The token name, also the EIP-712 domain name.
    @param symbol The token symbol.
    @param decimals The token's decimal places.
    """
    ownable.__init__()
    erc20.__init__(name, symbol, decimals, name, "1")


@external
def mint(to: address, amount: uint256):
    """
    @notice Creates `amount` tokens for `to`. Anyone may call it (devnet faucet).
    @param to The receiver; not the zero address.
    @param amount The amount in base units.
    """
    erc20._mint(to, amount)

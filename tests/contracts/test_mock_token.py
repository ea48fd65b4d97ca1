"""MockToken: the devnet asset with a public faucet `mint`."""

import boa

from tests.contracts.world import events


def test_metadata(token):
    assert (token.name(), token.symbol(), token.decimals()) == ("USD Coin", "USDC", 6)


def test_anyone_can_mint_to_anyone(token):
    stranger, receiver = boa.env.generate_address(), boa.env.generate_address()
    supply = token.totalSupply()
    with boa.env.prank(stranger):
        token.mint(receiver, 123)
    (transfer,) = events(token, "Transfer")
    assert token.balanceOf(receiver) == 123
    assert token.totalSupply() == supply + 123
    assert (transfer.sender, transfer.receiver, transfer.value) == (boa.eval("empty(address)"), receiver, 123)


def test_mint_to_zero_address_reverts(token):
    with boa.reverts("erc20: mint to the zero address"):
        token.mint("0x0000000000000000000000000000000000000000", 1)


def test_role_gated_snekmate_functions_are_not_exposed(token):
    for name in ("set_minter", "is_minter", "transfer_ownership", "owner"):
        assert not hasattr(token, name)


def test_transfer_moves_balance(token, accounts):
    before = token.balanceOf(accounts.bob)
    with boa.env.prank(accounts.alice):
        token.transfer(accounts.bob, 5)
    assert token.balanceOf(accounts.bob) == before + 5


def test_holders_can_burn_their_own_tokens(token, accounts):
    supply, before = token.totalSupply(), token.balanceOf(accounts.alice)
    with boa.env.prank(accounts.alice):
        token.burn(7)
    assert token.balanceOf(accounts.alice) == before - 7
    assert token.totalSupply() == supply - 7

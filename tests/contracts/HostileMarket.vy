# pragma version ~=0.4.3
# SPDX-License-Identifier: AGPL-3.0-only
"""
@title HostileMarket
@custom:contract-name HostileMarket
@license GNU Affero General Public License v3.0 only
@notice A test-only ERC-4626 market over a `MockToken` that can be switched
        into misbehaving: revert on any of its views or actions, lie in its
        previews, have its share price moved up or down (for a block, or for
        as long as the operator likes), pull only part of a deposit's
        allowance, or charge an entry fee on every deposit. Without any
        switch it behaves as an honest market (no interest).
@dev Built on snekmate's `erc20` as contracts/MockMarket.vy is. Conversions
     use one virtual share and one virtual asset; the price factor scales the
     assets conversions see (views and actions alike), so a moved price is
     really paid out, up to the market's balance (the operator can top it up).
     No reentrancy lock: the market calls nothing but the asset.
"""

from ethereum.ercs import IERC20
from ethereum.ercs import IERC4626

from snekmate.auth import ownable
from snekmate.tokens import erc20
from snekmate.utils import math

initializes: ownable
initializes: erc20[ownable := ownable]

exports: (
    erc20.totalSupply,
    erc20.transfer,
    erc20.transferFrom,
    erc20.approve,
    erc20.allowance,
    erc20.name,
    erc20.symbol,
    erc20.decimals,
)


interface IDecimals:
    def decimals() -> uint8: view


WAD: constant(uint256) = 10**18
BPS: constant(uint256) = 10_000

# Switches for `set_reverts`, one bit per function that then reverts.
REVERT_PREVIEW_REDEEM: public(constant(uint256)) = 1
REVERT_BALANCE_OF: public(constant(uint256)) = 2
REVERT_MAX_WITHDRAW: public(constant(uint256)) = 4
REVERT_WITHDRAW: public(constant(uint256)) = 8
REVERT_REDEEM: public(constant(uint256)) = 16
REVERT_DEPOSIT: public(constant(uint256)) = 32
REVERT_CONVERT_TO_ASSETS: public(constant(uint256)) = 64
REVERT_MAX_REDEEM: public(constant(uint256)) = 128
REVERT_ALL: public(constant(uint256)) = 255

asset: public(immutable(address))
operator: public(immutable(address))

reverts: public(uint256)
# previewRedeem and convertToAssets answer this multiple of the truth (WAD = honest).
preview_lie: public(uint256)
# The assets conversions see are the balance times this (WAD = the balance).
price_factor: public(uint256)
# A deposit pulls only this share of the amount it was given (BPS = all of it).
pull_bps: public(uint256)
# Share of every deposit sent to the operator as an entry fee (WAD = 100 %).
deposit_fee: public(uint256)


@deploy
def __init__(asset_: address, name: String[25], symbol: String[5], operator_: address):
    asset = asset_
    operator = operator_
    self.preview_lie = WAD
    self.price_factor = WAD
    self.pull_bps = BPS
    ownable.__init__()
    erc20.__init__(name, symbol, staticcall IDecimals(asset_).decimals(), name, "1")


# ---------------------------------------------------------------- operator


@external
def set_reverts(flags: uint256):
    """
    @notice The REVERT_* bits of the functions that revert from now on (0 = none).
    """
    self._check_operator()
    self.reverts = flags


@external
def set_preview_lie(multiplier: uint256):
    self._check_operator()
    self.preview_lie = multiplier


@external
def set_price_factor(factor: uint256):
    self._check_operator()
    self.price_factor = factor


@external
def set_pull_bps(pull_bps: uint256):
    self._check_operator()
    assert pull_bps <= BPS, "market: bad bps"
    self.pull_bps = pull_bps


@external
def set_deposit_fee(fee: uint256):
    self._check_operator()
    assert fee < WAD, "market: fee too high"
    self.deposit_fee = fee


@external
def inject_loss(bps: uint256):
    """
    @notice A real loss: `bps` of the market's balance goes to the operator.
    """
    self._check_operator()
    lost: uint256 = staticcall IERC20(asset).balanceOf(self) * bps // BPS
    assert extcall IERC20(asset).transfer(operator, lost, default_return_value=True), "market: transfer failed"


# ---------------------------------------------------------------- ERC-4626 views


@external
@view
def balanceOf(owner: address) -> uint256:
    self._check_up(REVERT_BALANCE_OF)
    return erc20.balanceOf[owner]


@external
@view
def totalAssets() -> uint256:
    return self._total_assets()


@external
@view
def convertToShares(assets: uint256) -> uint256:
    return self._to_shares(assets, False)


@external
@view
def convertToAssets(shares: uint256) -> uint256:
    self._check_up(REVERT_CONVERT_TO_ASSETS)
    return self._to_assets(shares, False) * self.preview_lie // WAD


@external
@view
def maxDeposit(receiver: address) -> uint256:
    return max_value(uint256)


@external
@view
def maxMint(receiver: address) -> uint256:
    return max_value(uint256)


@external
@view
def maxWithdraw(owner: address) -> uint256:
    self._check_up(REVERT_MAX_WITHDRAW)
    return self._to_assets(erc20.balanceOf[owner], False)


@external
@view
def maxRedeem(owner: address) -> uint256:
    self._check_up(REVERT_MAX_REDEEM)
    return erc20.balanceOf[owner]


@external
@view
def previewDeposit(assets: uint256) -> uint256:
    return self._to_shares(self._pulled(assets) - self._fee_on(self._pulled(assets)), False)


@external
@view
def previewMint(shares: uint256) -> uint256:
    return self._to_assets(shares, True)


@external
@view
def previewWithdraw(assets: uint256) -> uint256:
    return self._to_shares(assets, True)


@external
@view
def previewRedeem(shares: uint256) -> uint256:
    self._check_up(REVERT_PREVIEW_REDEEM)
    return self._to_assets(shares, False) * self.preview_lie // WAD


@external
@view
def real_balance(owner: address) -> uint256:
    """
    @return `owner`'s shares, whatever the switches (for test oracles).
    """
    return erc20.balanceOf[owner]


@external
@view
def real_assets(shares: uint256) -> uint256:
    """
    @return What `redeem(shares)` pays now, whatever the switches (for test oracles).
    """
    return self._to_assets(shares, False)


# ---------------------------------------------------------------- ERC-4626 actions


@external
def deposit(assets: uint256, receiver: address) -> uint256:
    """
    @notice Pulls `pull_bps` of `assets`, sends the entry fee on it to the operator and
            mints shares for the rest.
    """
    self._check_up(REVERT_DEPOSIT)
    pulled: uint256 = self._pulled(assets)
    fee: uint256 = self._fee_on(pulled)
    shares: uint256 = self._to_shares(pulled - fee, False)
    assert extcall IERC20(asset).transferFrom(msg.sender, self, pulled - fee, default_return_value=True), "market: transferFrom failed"
    if fee != 0:
        assert extcall IERC20(asset).transferFrom(msg.sender, operator, fee, default_return_value=True), "market: transferFrom failed"
    erc20._mint(receiver, shares)
    log IERC4626.Deposit(sender=msg.sender, owner=receiver, assets=pulled, shares=shares)
    return shares


@external
def mint(shares: uint256, receiver: address) -> uint256:
    assets: uint256 = self._to_assets(shares, True)
    assert extcall IERC20(asset).transferFrom(msg.sender, self, assets, default_return_value=True), "market: transferFrom failed"
    erc20._mint(receiver, shares)
    log IERC4626.Deposit(sender=msg.sender, owner=receiver, assets=assets, shares=shares)
    return assets


@external
def withdraw(assets: uint256, receiver: address, owner: address) -> uint256:
    self._check_up(REVERT_WITHDRAW)
    shares: uint256 = self._to_shares(assets, True)
    self._exit(receiver, owner, assets, shares)
    return shares


@external
def redeem(shares: uint256, receiver: address, owner: address) -> uint256:
    self._check_up(REVERT_REDEEM)
    assets: uint256 = self._to_assets(shares, False)
    self._exit(receiver, owner, assets, shares)
    return assets


# ---------------------------------------------------------------- internals


@internal
@view
def _check_operator():
    assert msg.sender == operator, "market: not operator"


@internal
@view
def _check_up(flag: uint256):
    assert self.reverts & flag == 0, "market: broken"


@internal
@view
def _total_assets() -> uint256:
    return staticcall IERC20(asset).balanceOf(self) * self.price_factor // WAD


@internal
@view
def _to_shares(assets: uint256, roundup: bool) -> uint256:
    return math._mul_div(assets, erc20.totalSupply + 1, self._total_assets() + 1, roundup)


@internal
@view
def _to_assets(shares: uint256, roundup: bool) -> uint256:
    return math._mul_div(shares, self._total_assets() + 1, erc20.totalSupply + 1, roundup)


@internal
@view
def _pulled(assets: uint256) -> uint256:
    return assets * self.pull_bps // BPS


@internal
@view
def _fee_on(assets: uint256) -> uint256:
    return math._mul_div(assets, self.deposit_fee, WAD, True)


@internal
def _exit(receiver: address, owner: address, assets: uint256, shares: uint256):
    if msg.sender != owner:
        erc20._spend_allowance(owner, msg.sender, shares)
    erc20._burn(owner, shares)
    assert extcall IERC20(asset).transfer(receiver, assets, default_return_value=True), "market: transfer failed"
    log IERC4626.Withdraw(sender=msg.sender, receiver=receiver, owner=owner, assets=assets, shares=shares)

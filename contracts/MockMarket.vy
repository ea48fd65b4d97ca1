# pragma version ~=0.4.3
# pragma nonreentrancy on
# SPDX-License-Identifier: AGPL-3.0-only
"""
@title MockMarket
@custom:contract-name MockMarket
@license GNU Affero General Public License v3.0 only
@notice An ERC-4626 lending "market" for devnets and backtests. Its value
        grows by simple interest at an operator-set rate per second, its
        withdrawals can be capped to model scarce liquidity, the operator
        can inject a loss, and an operator-set deposit fee models the cost of
        entering (slippage): it is taken from every deposit and mint and sent
        to the operator, so it leaves the market. Accrued interest is minted through the
        asset's public `mint` (a `MockToken`) on every state change and is
        counted in every view in between, so reads never lag.
@dev Built on snekmate's `erc20` rather than its `erc4626` extension,
     because that one's `totalAssets` is the plain asset balance and
     cannot include interest that has not been minted yet.
     Conversions use one virtual share and one virtual asset
     (OpenZeppelin style, decimals offset 0). With a fee f, deposit(a)
     mints shares for a - ceil(a·f) and mint(s) costs the smallest a with
     a - ceil(a·f) >= the shares' worth; the previews include the fee (EIP-4626).
"""

from ethereum.ercs import IERC20
from ethereum.ercs import IERC4626

from snekmate.auth import ownable
from snekmate.tokens import erc20
from snekmate.utils import math

implements: IERC4626

initializes: ownable
initializes: erc20[ownable := ownable]

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
    erc20.permit,
    erc20.nonces,
    erc20.DOMAIN_SEPARATOR,
    erc20.eip712Domain,
)


interface IMintable:
    def mint(to: address, amount: uint256): nonpayable


interface IDecimals:
    def decimals() -> uint8: view


WAD: constant(uint256) = 10**18
BPS: constant(uint256) = 10_000

asset: public(immutable(address))
operator: public(immutable(address))

# Simple interest per second on totalAssets, 1e18 = 100 % per second.
rate_per_second: public(uint256)
# Cap on what one maxWithdraw/maxRedeem allows; max_value(uint256) = unlimited.
liquidity: public(uint256)
last_accrual: public(uint256)
# Share of every deposit taken as an entry fee, 1e18 = 100 %: fine enough for fractional basis points.
deposit_fee: public(uint256)
MAX_DEPOSIT_FEE: public(constant(uint256)) = WAD // 10  # 10 %


event RateSet:
    rate_per_second: uint256


event LiquiditySet:
    max_assets: uint256


event LossInjected:
    bps: uint256
    assets: uint256


event DepositFeeSet:
    fee: uint256


event DepositFeePaid:
    sender: indexed(address)
    assets: uint256


@deploy
def __init__(asset_: address, name: String[25], symbol: String[5], operator_: address):
    """
    @param asset_ The underlying token; must expose a public `mint(to, amount)`.
    @param name The share token name, also the EIP-712 domain name.
    @param symbol The share token symbol.
    @param operator_ The account allowed to set the rate, liquidity and deposit fee, to inject
           losses, and that receives the deposit fees.
    """
    asset = asset_
    operator = operator_
    self.liquidity = max_value(uint256)
    self.last_accrual = block.timestamp
    ownable.__init__()
    erc20.__init__(name, symbol, staticcall IDecimals(asset_).decimals(), name, "1")


# ---------------------------------------------------------------- operator


@external
def set_rate(rate_per_second: uint256):
    """
    @notice Accrues interest at the old rate, then sets the new one.
    @param rate_per_second Simple interest per second, 1e18 = 100 %.
    """
    self._check_operator()
    self._accrue()
    self.rate_per_second = rate_per_second
    log RateSet(rate_per_second=rate_per_second)


@external
def set_liquidity(max_assets: uint256):
    """
    @notice Caps what any one owner may withdraw (`max_value(uint256)` = unlimited).
    @param max_assets The cap in assets.
    """
    self._check_operator()
    self.liquidity = max_assets
    log LiquiditySet(max_assets=max_assets)


@external
def set_deposit_fee(fee: uint256):
    """
    @notice Sets the share of every later deposit (and mint) taken as an entry fee.
    @param fee 1e18 = 100 %, at most MAX_DEPOSIT_FEE; 1 bp is 1e14.
    """
    self._check_operator()
    assert fee <= MAX_DEPOSIT_FEE, "market: fee too high"
    self.deposit_fee = fee
    log DepositFeeSet(fee=fee)


@external
def inject_loss(bps: uint256):
    """
    @notice The market loses `bps` of its assets; they are sent to the operator.
    @param bps The share of totalAssets lost, in basis points (<= 10000).
    """
    self._check_operator()
    assert bps <= BPS, "market: bad bps"
    self._accrue()
    lost: uint256 = staticcall IERC20(asset).balanceOf(self) * bps // BPS
    assert extcall IERC20(asset).transfer(operator, lost, default_return_value=True), "market: transfer failed"
    log LossInjected(bps=bps, assets=lost)


# ---------------------------------------------------------------- ERC-4626 views


@external
@view
def totalAssets() -> uint256:
    """
    @return The asset balance plus interest accrued since the last state change.
    """
    return self._total_assets()


@external
@view
def pending_interest() -> uint256:
    """
    @return Interest accrued but not minted yet.
    """
    return self._pending_interest()


@external
@view
def convertToShares(assets: uint256) -> uint256:
    return self._to_shares(assets, False)


@external
@view
def convertToAssets(shares: uint256) -> uint256:
    return self._to_assets(shares, False)


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
    """
    @return What `owner`'s shares are worth, capped by the liquidity limit.
    """
    return self._max_withdraw(owner)


@external
@view
def maxRedeem(owner: address) -> uint256:
    """
    @return `owner`'s whole balance if its worth is within the liquidity
            limit, else the shares the limit pays for (rounded down).
    """
    return self._max_redeem(owner)


@external
@view
def previewDeposit(assets: uint256) -> uint256:
    """
    @return The shares `deposit(assets)` mints, net of the deposit fee.
    """
    return self._to_shares(assets - self._fee_on(assets), False)


@external
@view
def previewMint(shares: uint256) -> uint256:
    """
    @return The assets `mint(shares)` takes, the deposit fee included.
    """
    return self._gross_of(self._to_assets(shares, True))


@external
@view
def previewWithdraw(assets: uint256) -> uint256:
    return self._to_shares(assets, True)


@external
@view
def previewRedeem(shares: uint256) -> uint256:
    return self._to_assets(shares, False)


# ---------------------------------------------------------------- ERC-4626 actions


@external
def deposit(assets: uint256, receiver: address) -> uint256:
    """
    @notice Takes exactly `assets`, of which the deposit fee (rounded up) goes to the
            operator, and mints shares for the rest (rounded down) to `receiver`.
    """
    self._accrue()
    fee: uint256 = self._fee_on(assets)
    shares: uint256 = self._to_shares(assets - fee, False)
    self._enter(receiver, assets, fee, shares)
    return shares


@external
def mint(shares: uint256, receiver: address) -> uint256:
    """
    @notice Mints exactly `shares` to `receiver` for the assets they cost (rounded up)
            plus the deposit fee on the whole amount taken.
    """
    self._accrue()
    worth: uint256 = self._to_assets(shares, True)
    assets: uint256 = self._gross_of(worth)
    self._enter(receiver, assets, assets - worth, shares)
    return assets


@external
def withdraw(assets: uint256, receiver: address, owner: address) -> uint256:
    """
    @notice Sends exactly `assets` to `receiver`, burning `owner`'s shares (rounded up).
    """
    self._accrue()
    assert assets <= self._max_withdraw(owner), "market: withdraw more than max"
    shares: uint256 = self._to_shares(assets, True)
    self._exit(receiver, owner, assets, shares)
    return shares


@external
def redeem(shares: uint256, receiver: address, owner: address) -> uint256:
    """
    @notice Burns exactly `shares` of `owner`, sending their worth (rounded down) to `receiver`.
    """
    self._accrue()
    assert shares <= self._max_redeem(owner), "market: redeem more than max"
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
def _interest_on(balance: uint256) -> uint256:
    elapsed: uint256 = block.timestamp - self.last_accrual
    return math._mul_div(balance, self.rate_per_second * elapsed, WAD, False)


@internal
@view
def _pending_interest() -> uint256:
    return self._interest_on(staticcall IERC20(asset).balanceOf(self))


@internal
@view
def _total_assets() -> uint256:
    balance: uint256 = staticcall IERC20(asset).balanceOf(self)
    return balance + self._interest_on(balance)


@internal
def _accrue():
    interest: uint256 = self._pending_interest()
    self.last_accrual = block.timestamp
    if interest != 0:
        extcall IMintable(asset).mint(self, interest)


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
def _fee_on(assets: uint256) -> uint256:
    return math._mul_div(assets, self.deposit_fee, WAD, True)


@internal
@view
def _gross_of(net: uint256) -> uint256:
    """
    @dev The smallest `a` with a - _fee_on(a) >= net: a = ceil(net / (1 - f)). For it,
         a - _fee_on(a) = floor(a·(1 - f)) is exactly `net`, so its fee is a - net.
    """
    return math._mul_div(net, WAD, WAD - self.deposit_fee, True)


@internal
@view
def _max_withdraw(owner: address) -> uint256:
    return min(self._to_assets(erc20.balanceOf[owner], False), self.liquidity)


@internal
@view
def _max_redeem(owner: address) -> uint256:
    balance: uint256 = erc20.balanceOf[owner]
    if self._to_assets(balance, False) <= self.liquidity:
        return balance
    return self._to_shares(self.liquidity, False)


@internal
def _enter(receiver: address, assets: uint256, fee: uint256, shares: uint256):
    assert extcall IERC20(asset).transferFrom(msg.sender, self, assets - fee, default_return_value=True), "market: transferFrom failed"
    if fee != 0:
        # straight to the operator: a fee left in the market would come back to its shareholders
        assert extcall IERC20(asset).transferFrom(msg.sender, operator, fee, default_return_value=True), "market: transferFrom failed"
        log DepositFeePaid(sender=msg.sender, assets=fee)
    erc20._mint(receiver, shares)
    log IERC4626.Deposit(sender=msg.sender, owner=receiver, assets=assets, shares=shares)


@internal
def _exit(receiver: address, owner: address, assets: uint256, shares: uint256):
    if msg.sender != owner:
        erc20._spend_allowance(owner, msg.sender, shares)
    erc20._burn(owner, shares)
    assert extcall IERC20(asset).transfer(receiver, assets, default_return_value=True), "market: transfer failed"
    log IERC4626.Withdraw(sender=msg.sender, receiver=receiver, owner=owner, assets=assets, shares=shares)

# pragma version ~=0.4.3
# pragma nonreentrancy on
# SPDX-License-Identifier: AGPL-3.0-only
"""
@title Vault
@custom:contract-name Vault
@license GNU Affero General Public License v3.0 only
@notice An allocator vault: ERC-4626 + ERC-20 + EIP-2612 over one asset,
        spread by a keeper over allow-listed ERC-4626 markets. Every keeper
        move is checked on-chain against caps, an idle floor, a turnover
        limit and a loss limit; loosening any limit waits for a timelock.
        The semantics are specified in contracts/README.md.
@dev EIP-4626 is implemented here on snekmate's `erc20` (not its `erc4626`
     extension, whose `totalAssets` is the vault's own balance). Conversions
     use virtual shares and assets (OpenZeppelin style) with a decimals
     offset, and include the performance-fee shares that would be minted now,
     so previews equal actions. `# pragma nonreentrancy on` locks every
     external function of this module, views included (read-only reentrancy).
"""

from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed
from ethereum.ercs import IERC4626

from snekmate.auth import ownable
from snekmate.tokens import erc20
from snekmate.utils import math

implements: IERC20
implements: IERC4626

# `ownable` only initialises `erc20`; none of its functions are exported.
initializes: ownable
initializes: erc20[ownable := ownable]

# The ERC-20 + EIP-2612 surface. erc20's `mint`, `burn`, `set_minter` and
# the ownership functions are left out: they would break the accounting.
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


MAX_MARKETS: public(constant(uint256)) = 16
MAX_PERFORMANCE_FEE_BPS: public(constant(uint256)) = 3_000
MAX_TIMELOCK: public(constant(uint256)) = 30 * 86_400
BPS: constant(uint256) = 10_000

PARAM_MIN_REBALANCE_INTERVAL: public(constant(uint8)) = 0
PARAM_MAX_TURNOVER_BPS: public(constant(uint8)) = 1
PARAM_MAX_LOSS_BPS: public(constant(uint8)) = 2
PARAM_MIN_IDLE_BPS: public(constant(uint8)) = 3
PARAM_DEPOSIT_LIMIT: public(constant(uint8)) = 4
PARAM_PERFORMANCE_FEE_BPS: public(constant(uint8)) = 5
PARAM_TIMELOCK: public(constant(uint8)) = 6


struct Allocation:
    market: address
    assets: uint256


struct MarketConfig:
    enabled: bool
    cap_bps: uint256
    cap_abs: uint256


event AdminTransferStarted:
    admin: indexed(address)
    pending_admin: indexed(address)


event AdminTransferred:
    previous_admin: indexed(address)
    new_admin: indexed(address)


event KeeperSet:
    keeper: indexed(address)


event GuardianSet:
    guardian: indexed(address)


event FeeRecipientSet:
    fee_recipient: indexed(address)


event Paused:
    account: indexed(address)


event Unpaused:
    account: indexed(address)


event ParamSet:
    param: indexed(uint8)
    value: uint256


event ChangeQueued:
    id: indexed(bytes32)
    valid_at: uint256


event ChangeRevoked:
    id: indexed(bytes32)


event MarketCapSet:
    market: indexed(address)
    cap_bps: uint256
    cap_abs: uint256


event MarketRemoved:
    market: indexed(address)


event WithdrawQueueSet:
    markets: DynArray[address, MAX_MARKETS]


event MarketAllocated:
    market: indexed(address)
    assets_before: uint256
    assets_after: uint256


event Rebalanced:
    keeper: address
    decision_hash: indexed(bytes32)
    total_before: uint256
    total_after: uint256
    idle_after: uint256
    moved: uint256


event EmergencyWithdrawal:
    market: indexed(address)
    assets: uint256


event FeeAccrued:
    fee_recipient: indexed(address)
    shares: uint256
    high_water_mark: uint256


asset: public(immutable(address))
# 10**decimals_offset virtual shares against one virtual asset.
_VIRTUAL_SHARES: immutable(uint256)
# 10**decimals of the vault: the share amount the high-water mark is priced in.
_SHARE_UNIT: immutable(uint256)

admin: public(address)
pending_admin: public(address)
keeper: public(address)
guardian: public(address)
fee_recipient: public(address)
paused: public(bool)

min_rebalance_interval: public(uint256)
max_turnover_bps: public(uint256)
max_loss_bps: public(uint256)
min_idle_bps: public(uint256)
deposit_limit: public(uint256)
performance_fee_bps: public(uint256)
timelock: public(uint256)

# Assets per 10**decimals shares; only goes up.
high_water_mark: public(uint256)
last_rebalance: public(uint256)

market_config: public(HashMap[address, MarketConfig])
# Change id => timestamp from which it may be accepted (0 = nothing queued).
pending_changes: public(HashMap[bytes32, uint256])
_markets: DynArray[address, MAX_MARKETS]
_withdraw_queue: DynArray[address, MAX_MARKETS]


@deploy
def __init__(
    asset_: address,
    name: String[25],
    symbol: String[5],
    decimals_offset: uint8,
    admin_: address,
    keeper_: address,
    guardian_: address,
    timelock_: uint256,
):
    """
    @param asset_ The ERC-20 the vault holds and accounts in.
    @param name The share token name, also the EIP-712 domain name.
    @param symbol The share token symbol.
    @param decimals_offset Vault decimals minus asset decimals; 10**offset virtual
           shares make a donation (inflation) attack on early depositors unprofitable.
    @param admin_ The admin (parameters, markets, roles, unpause).
    @param keeper_ The only account allowed to rebalance.
    @param guardian_ May pause, emergency-withdraw and revoke queued changes.
    @param timelock_ Seconds a loosening change waits (<= MAX_TIMELOCK).
    """
    assert timelock_ <= MAX_TIMELOCK, "vault: bad value"
    asset_decimals: uint8 = staticcall IERC20Detailed(asset_).decimals()
    asset = asset_
    _VIRTUAL_SHARES = 10 ** convert(decimals_offset, uint256)
    _SHARE_UNIT = 10 ** convert(asset_decimals + decimals_offset, uint256)

    self.admin = admin_
    self.keeper = keeper_
    self.guardian = guardian_
    self.max_turnover_bps = BPS
    self.deposit_limit = max_value(uint256)
    self.timelock = timelock_
    # The empty vault's share price: one whole share is worth one whole asset.
    self.high_water_mark = 10 ** convert(asset_decimals, uint256)

    ownable.__init__()
    erc20.__init__(name, symbol, asset_decimals + decimals_offset, name, "1")


# ---------------------------------------------------------------- roles


@external
def transfer_admin(new_admin: address):
    """
    @notice Starts a two-step admin transfer; `new_admin` must call `accept_admin`.
    @param new_admin The proposed admin (the zero address cancels a pending transfer).
    """
    self._check_admin()
    self.pending_admin = new_admin
    log AdminTransferStarted(admin=msg.sender, pending_admin=new_admin)


@external
def accept_admin():
    """
    @notice Completes the admin transfer; only the pending admin may call it.
    """
    assert msg.sender == self.pending_admin, "vault: not pending admin"
    log AdminTransferred(previous_admin=self.admin, new_admin=msg.sender)
    self.admin = msg.sender
    self.pending_admin = empty(address)


@external
def set_keeper(new_keeper: address):
    """
    @notice Sets the keeper (admin only).
    """
    self._check_admin()
    self.keeper = new_keeper
    log KeeperSet(keeper=new_keeper)


@external
def set_guardian(new_guardian: address):
    """
    @notice Sets the guardian (admin only).
    """
    self._check_admin()
    self.guardian = new_guardian
    log GuardianSet(guardian=new_guardian)


@external
def set_fee_recipient(new_fee_recipient: address):
    """
    @notice Sets who receives performance-fee shares (admin only). Fees earned
            so far are minted to the old recipient first.
    """
    self._check_admin()
    assert new_fee_recipient != empty(address), "vault: zero address"
    self._accrue_fee()
    self.fee_recipient = new_fee_recipient
    log FeeRecipientSet(fee_recipient=new_fee_recipient)


@external
def pause():
    """
    @notice Stops deposits, mints and rebalances (guardian or admin).
            Withdrawals and redemptions stay open.
    """
    self._check_guardian_or_admin()
    self._pause()


@external
def unpause():
    """
    @notice Lifts the pause (admin only).
    """
    self._check_admin()
    self.paused = False
    log Unpaused(account=msg.sender)


@external
def emergency_withdraw_all():
    """
    @notice Pauses, then redeems from every listed market whatever it pays now
            (guardian or admin). Emits `EmergencyWithdrawal` per market.
    """
    self._check_guardian_or_admin()
    self._pause()
    for market: address in self._markets:
        shares: uint256 = staticcall IERC4626(market).maxRedeem(self)
        assets: uint256 = 0
        if shares != 0:
            assets = extcall IERC4626(market).redeem(shares, self, self)
        log EmergencyWithdrawal(market=market, assets=assets)


# ---------------------------------------------------------------- ERC-4626 views


@external
@view
def totalAssets() -> uint256:
    """
    @return Idle assets plus what every listed market would pay back now.
    """
    return self._total_assets()


@external
@view
def convertToShares(assets: uint256) -> uint256:
    total: uint256 = 0
    supply: uint256 = 0
    total, supply = self._preview_state()
    return self._to_shares(assets, total, supply, False)


@external
@view
def convertToAssets(shares: uint256) -> uint256:
    total: uint256 = 0
    supply: uint256 = 0
    total, supply = self._preview_state()
    return self._to_assets(shares, total, supply, False)


@external
@view
def maxDeposit(receiver: address) -> uint256:
    """
    @return 0 when paused, else the room left under the deposit limit.
    """
    return self._max_deposit(self._total_assets())


@external
@view
def maxMint(receiver: address) -> uint256:
    """
    @return 0 when paused, else the shares the room under the deposit limit buys.
    """
    total: uint256 = 0
    supply: uint256 = 0
    total, supply = self._preview_state()
    return self._max_mint(total, supply)


@external
@view
def maxWithdraw(owner: address) -> uint256:
    """
    @return What `owner`'s shares are worth, capped by what idle and the markets pay now.
    """
    total: uint256 = 0
    supply: uint256 = 0
    total, supply = self._preview_state()
    return self._max_withdraw(owner, total, supply)


@external
@view
def maxRedeem(owner: address) -> uint256:
    """
    @return `owner`'s balance if all it is worth is liquid, else the shares
            the liquid amount pays for (rounded down).
    """
    total: uint256 = 0
    supply: uint256 = 0
    total, supply = self._preview_state()
    return self._max_redeem(owner, total, supply)


@external
@view
def previewDeposit(assets: uint256) -> uint256:
    total: uint256 = 0
    supply: uint256 = 0
    total, supply = self._preview_state()
    return self._to_shares(assets, total, supply, False)


@external
@view
def previewMint(shares: uint256) -> uint256:
    total: uint256 = 0
    supply: uint256 = 0
    total, supply = self._preview_state()
    return self._to_assets(shares, total, supply, True)


@external
@view
def previewWithdraw(assets: uint256) -> uint256:
    total: uint256 = 0
    supply: uint256 = 0
    total, supply = self._preview_state()
    return self._to_shares(assets, total, supply, True)


@external
@view
def previewRedeem(shares: uint256) -> uint256:
    total: uint256 = 0
    supply: uint256 = 0
    total, supply = self._preview_state()
    return self._to_assets(shares, total, supply, False)


@external
@view
def markets() -> DynArray[address, MAX_MARKETS]:
    """
    @return The listed markets, in listing order.
    """
    return self._markets


@external
@view
def withdraw_queue() -> DynArray[address, MAX_MARKETS]:
    """
    @return The order in which withdrawals draw on markets once idle is spent.
    """
    return self._withdraw_queue


@external
@view
def position(market: address) -> uint256:
    """
    @return What `market` would pay back now for the vault's shares in it.
    """
    return self._position(market)


# ---------------------------------------------------------------- ERC-4626 actions


@external
def deposit(assets: uint256, receiver: address) -> uint256:
    """
    @notice Deposits exactly `assets` (kept idle until the next rebalance),
            minting shares rounded down to `receiver`.
    """
    self._check_not_paused()
    total: uint256 = self._accrue_fee()
    assert assets <= self._max_deposit(total), "vault: deposit more than max"
    shares: uint256 = self._to_shares(assets, total, erc20.totalSupply, False)
    self._enter(receiver, assets, shares)
    return shares


@external
def mint(shares: uint256, receiver: address) -> uint256:
    """
    @notice Mints exactly `shares` to `receiver` for their cost in assets (rounded up).
    """
    self._check_not_paused()
    total: uint256 = self._accrue_fee()
    supply: uint256 = erc20.totalSupply
    assert shares <= self._max_mint(total, supply), "vault: mint more than max"
    assets: uint256 = self._to_assets(shares, total, supply, True)
    self._enter(receiver, assets, shares)
    return assets


@external
def withdraw(assets: uint256, receiver: address, owner: address) -> uint256:
    """
    @notice Sends exactly `assets` to `receiver`, burning `owner`'s shares
            (rounded up). Served from idle, then the withdraw queue. Never paused.
    """
    total: uint256 = self._accrue_fee()
    supply: uint256 = erc20.totalSupply
    assert assets <= self._max_withdraw(owner, total, supply), "vault: withdraw more than max"
    shares: uint256 = self._to_shares(assets, total, supply, True)
    self._exit(receiver, owner, assets, shares)
    return shares


@external
def redeem(shares: uint256, receiver: address, owner: address) -> uint256:
    """
    @notice Burns exactly `shares` of `owner`, sending their worth (rounded down)
            to `receiver`. Served from idle, then the withdraw queue. Never paused.
    """
    total: uint256 = self._accrue_fee()
    supply: uint256 = erc20.totalSupply
    assert shares <= self._max_redeem(owner, total, supply), "vault: redeem more than max"
    assets: uint256 = self._to_assets(shares, total, supply, False)
    self._exit(receiver, owner, assets, shares)
    return assets


# ---------------------------------------------------------------- keeper


@external
def rebalance(allocations: DynArray[Allocation, MAX_MARKETS], decision_hash: bytes32):
    """
    @notice Moves the named markets to their target positions (withdrawals
            first, then supplies from idle) and reverts unless every guardrail
            of contracts/README.md holds on the before/after state.
    @param allocations Target positions in assets; markets not named keep theirs.
    @param decision_hash The keeper's record of the decision behind this move.
    """
    assert msg.sender == self.keeper, "vault: not keeper"
    self._check_not_paused()
    assert block.timestamp >= self.last_rebalance + self.min_rebalance_interval, "vault: cooldown"
    named: DynArray[address, MAX_MARKETS] = []
    for allocation: Allocation in allocations:
        named.append(allocation.market)
    self._check_listed_once(named)

    total_before: uint256 = self._accrue_fee()
    idle_before: uint256 = self._idle()
    before: DynArray[uint256, MAX_MARKETS] = self._positions(named)
    self._move_funds(allocations, before)
    after: DynArray[uint256, MAX_MARKETS] = self._positions(named)
    total_after: uint256 = self._total_assets()
    idle_after: uint256 = self._idle()

    self._check_caps(named, before, after, total_after)
    if idle_after < idle_before:
        assert idle_after * BPS >= self.min_idle_bps * total_after, "vault: idle below floor"
    moved: uint256 = self._turnover(before, after)
    assert moved * BPS <= self.max_turnover_bps * total_before, "vault: turnover exceeded"
    assert total_after * BPS >= total_before * (BPS - self.max_loss_bps), "vault: loss exceeded"

    self.last_rebalance = block.timestamp
    for i: uint256 in range(len(named), bound=MAX_MARKETS):
        log MarketAllocated(market=named[i], assets_before=before[i], assets_after=after[i])
    log Rebalanced(
        keeper=msg.sender,
        decision_hash=decision_hash,
        total_before=total_before,
        total_after=total_after,
        idle_after=idle_after,
        moved=moved,
    )


# ---------------------------------------------------------------- parameters and markets


@external
def submit_param(param: uint8, new_value: uint256):
    """
    @notice Sets a parameter now if the change tightens (or keeps) it, else
            queues it for `accept_param` after the timelock (admin only).
    @param param One of the PARAM_* ids.
    @param new_value The new value.
    """
    self._check_admin()
    self._check_param_value(param, new_value)
    if self._loosens(param, new_value):
        self._queue(keccak256(abi_encode(param, new_value)))
    else:
        self._set_param(param, new_value)


@external
def accept_param(param: uint8, new_value: uint256):
    """
    @notice Applies a queued parameter change once its timelock has passed (anyone).
    """
    self._take_queued(keccak256(abi_encode(param, new_value)))
    self._set_param(param, new_value)


@external
def submit_market(market: address, cap_bps: uint256, cap_abs: uint256):
    """
    @notice Lowers a listed market's caps now; listing a market or raising a
            cap is queued for `accept_market` after the timelock (admin only).
    @param market An ERC-4626 market over the vault's asset.
    @param cap_bps Cap as a share of totalAssets, in bps.
    @param cap_abs Cap in assets.
    """
    self._check_admin()
    assert cap_bps <= BPS, "vault: bad value"
    config: MarketConfig = self.market_config[market]
    if not config.enabled:
        assert staticcall IERC4626(market).asset() == asset, "vault: wrong asset"
        assert len(self._markets) < MAX_MARKETS, "vault: too many markets"
        self._queue(keccak256(abi_encode(market, cap_bps, cap_abs)))
    elif cap_bps > config.cap_bps or cap_abs > config.cap_abs:
        self._queue(keccak256(abi_encode(market, cap_bps, cap_abs)))
    else:
        self._set_caps(market, cap_bps, cap_abs)


@external
def accept_market(market: address, cap_bps: uint256, cap_abs: uint256):
    """
    @notice Applies a queued market change once its timelock has passed (anyone);
            a newly listed market goes to the end of the withdraw queue.
    """
    self._take_queued(keccak256(abi_encode(market, cap_bps, cap_abs)))
    if not self.market_config[market].enabled:
        assert len(self._markets) < MAX_MARKETS, "vault: too many markets"
        self._markets.append(market)
        self._withdraw_queue.append(market)
    self._set_caps(market, cap_bps, cap_abs)


@external
def remove_market(market: address):
    """
    @notice Delists a market whose position is zero (admin only, immediate).
    """
    self._check_admin()
    assert self.market_config[market].enabled, "vault: market not allowed"
    assert self._position(market) == 0, "vault: position not empty"
    self.market_config[market] = empty(MarketConfig)
    self._markets = self._without(self._markets, market)
    self._withdraw_queue = self._without(self._withdraw_queue, market)
    log MarketRemoved(market=market)


@external
def set_withdraw_queue(queue: DynArray[address, MAX_MARKETS]):
    """
    @notice Reorders the withdraw queue; it must be a permutation of the listed markets (admin only).
    """
    self._check_admin()
    assert len(queue) == len(self._markets), "vault: bad queue"
    self._check_listed_once(queue)
    self._withdraw_queue = queue
    log WithdrawQueueSet(markets=queue)


@external
def revoke_pending(id: bytes32):
    """
    @notice Cancels a queued change (guardian or admin).
    """
    self._check_guardian_or_admin()
    assert self.pending_changes[id] != 0, "vault: not queued"
    self.pending_changes[id] = 0
    log ChangeRevoked(id=id)


# ---------------------------------------------------------------- internals: access


@internal
@view
def _check_admin():
    assert msg.sender == self.admin, "vault: not admin"


@internal
@view
def _check_guardian_or_admin():
    assert msg.sender == self.guardian or msg.sender == self.admin, "vault: not guardian"


@internal
@view
def _check_not_paused():
    assert not self.paused, "vault: paused"


@internal
def _pause():
    self.paused = True
    log Paused(account=msg.sender)


# ---------------------------------------------------------------- internals: accounting


@internal
@view
def _idle() -> uint256:
    return staticcall IERC20(asset).balanceOf(self)


@internal
@view
def _position(market: address) -> uint256:
    return staticcall IERC4626(market).previewRedeem(staticcall IERC20(market).balanceOf(self))


@internal
@view
def _positions(markets: DynArray[address, MAX_MARKETS]) -> DynArray[uint256, MAX_MARKETS]:
    result: DynArray[uint256, MAX_MARKETS] = []
    for market: address in markets:
        result.append(self._position(market))
    return result


@internal
@view
def _total_assets() -> uint256:
    total: uint256 = self._idle()
    for market: address in self._markets:
        total += self._position(market)
    return total


@internal
@view
def _to_shares(assets: uint256, total: uint256, supply: uint256, roundup: bool) -> uint256:
    return math._mul_div(assets, supply + _VIRTUAL_SHARES, total + 1, roundup)


@internal
@view
def _to_assets(shares: uint256, total: uint256, supply: uint256, roundup: bool) -> uint256:
    return math._mul_div(shares, total + 1, supply + _VIRTUAL_SHARES, roundup)


@internal
@view
def _preview_state() -> (uint256, uint256):
    """
    @dev totalAssets and the total supply as they will be once the pending fee is minted.
    """
    total: uint256 = self._total_assets()
    supply: uint256 = erc20.totalSupply
    fee_shares: uint256 = 0
    high_water_mark: uint256 = 0
    fee_shares, high_water_mark = self._fee_shares(total, supply)
    return (total, supply + fee_shares)


@internal
@view
def _max_deposit(total: uint256) -> uint256:
    if self.paused:
        return 0
    limit: uint256 = self.deposit_limit
    if total >= limit:
        return 0
    return limit - total


@internal
@view
def _max_mint(total: uint256, supply: uint256) -> uint256:
    room: uint256 = self._max_deposit(total)
    if room != 0 and self.deposit_limit == max_value(uint256):
        return max_value(uint256)
    return self._to_shares(room, total, supply, False)


@internal
@view
def _liquid_up_to(amount: uint256) -> uint256:
    """
    @dev min(amount, idle + what each market in the withdraw queue pays now),
         asking markets only until `amount` is covered.
    """
    liquid: uint256 = self._idle()
    for market: address in self._withdraw_queue:
        if liquid >= amount:
            return amount
        liquid += staticcall IERC4626(market).maxWithdraw(self)
    return min(liquid, amount)


@internal
@view
def _max_withdraw(owner: address, total: uint256, supply: uint256) -> uint256:
    return self._liquid_up_to(self._to_assets(erc20.balanceOf[owner], total, supply, False))


@internal
@view
def _max_redeem(owner: address, total: uint256, supply: uint256) -> uint256:
    balance: uint256 = erc20.balanceOf[owner]
    owed: uint256 = self._to_assets(balance, total, supply, False)
    liquid: uint256 = self._liquid_up_to(owed)
    if liquid == owed:
        return balance
    return self._to_shares(liquid, total, supply, False)


# ---------------------------------------------------------------- internals: fee


@internal
@view
def _share_price(total: uint256, supply: uint256) -> uint256:
    return math._mul_div(total + 1, _SHARE_UNIT, supply + _VIRTUAL_SHARES, False)


@internal
@view
def _fee_shares(total: uint256, supply: uint256) -> (uint256, uint256):
    """
    @dev The fee shares due now and the high-water mark once they are minted:
         `performance_fee_bps` of the holders' gain above the mark, as shares
         worth that much after the dilution they cause.
    """
    price: uint256 = self._share_price(total, supply)
    mark: uint256 = self.high_water_mark
    if price <= mark:
        return (0, mark)
    fee_bps: uint256 = self.performance_fee_bps
    if fee_bps == 0 or supply == 0 or self.fee_recipient == empty(address):
        return (0, price)
    gain: uint256 = math._mul_div(price - mark, supply, _SHARE_UNIT, False)
    fee_assets: uint256 = gain * fee_bps // BPS
    shares: uint256 = math._mul_div(fee_assets, supply + _VIRTUAL_SHARES, total + 1 - fee_assets, False)
    return (shares, max(mark, self._share_price(total, supply + shares)))


@internal
def _accrue_fee() -> uint256:
    """
    @dev Mints the pending fee shares, raises the high-water mark, returns totalAssets.
    """
    total: uint256 = self._total_assets()
    shares: uint256 = 0
    mark: uint256 = 0
    shares, mark = self._fee_shares(total, erc20.totalSupply)
    if mark != self.high_water_mark:
        self.high_water_mark = mark
    if shares != 0:
        erc20._mint(self.fee_recipient, shares)
        log FeeAccrued(fee_recipient=self.fee_recipient, shares=shares, high_water_mark=mark)
    return total


# ---------------------------------------------------------------- internals: moving funds


@internal
def _enter(receiver: address, assets: uint256, shares: uint256):
    assert extcall IERC20(asset).transferFrom(msg.sender, self, assets, default_return_value=True), "vault: transferFrom failed"
    erc20._mint(receiver, shares)
    log IERC4626.Deposit(sender=msg.sender, owner=receiver, assets=assets, shares=shares)


@internal
def _exit(receiver: address, owner: address, assets: uint256, shares: uint256):
    if msg.sender != owner:
        erc20._spend_allowance(owner, msg.sender, shares)
    erc20._burn(owner, shares)
    self._free_funds(assets)
    assert extcall IERC20(asset).transfer(receiver, assets, default_return_value=True), "vault: transfer failed"
    log IERC4626.Withdraw(sender=msg.sender, receiver=receiver, owner=owner, assets=assets, shares=shares)


@internal
def _free_funds(assets: uint256):
    """
    @dev Withdraws from markets in withdraw-queue order until idle covers `assets`.
    """
    idle: uint256 = self._idle()
    for market: address in self._withdraw_queue:
        if idle >= assets:
            return
        take: uint256 = min(assets - idle, staticcall IERC4626(market).maxWithdraw(self))
        if take != 0:
            extcall IERC4626(market).withdraw(take, self, self)
            idle += take


@internal
def _move_funds(allocations: DynArray[Allocation, MAX_MARKETS], before: DynArray[uint256, MAX_MARKETS]):
    """
    @dev Withdraws every market above its target first, then supplies every
         market below its target from idle.
    """
    for i: uint256 in range(len(allocations), bound=MAX_MARKETS):
        target: Allocation = allocations[i]
        if target.assets == 0 and before[i] != 0:
            extcall IERC4626(target.market).redeem(staticcall IERC20(target.market).balanceOf(self), self, self)
        elif target.assets < before[i]:
            extcall IERC4626(target.market).withdraw(before[i] - target.assets, self, self)
    for i: uint256 in range(len(allocations), bound=MAX_MARKETS):
        target: Allocation = allocations[i]
        if target.assets > before[i]:
            amount: uint256 = target.assets - before[i]
            assert amount <= self._idle(), "vault: insufficient idle"
            assert extcall IERC20(asset).approve(target.market, amount, default_return_value=True), "vault: approve failed"
            extcall IERC4626(target.market).deposit(amount, self)


@internal
@view
def _check_listed_once(markets: DynArray[address, MAX_MARKETS]):
    for i: uint256 in range(len(markets), bound=MAX_MARKETS):
        assert self.market_config[markets[i]].enabled, "vault: market not allowed"
        for j: uint256 in range(i, bound=MAX_MARKETS):
            assert markets[j] != markets[i], "vault: duplicate market"


@internal
@view
def _check_caps(
    markets: DynArray[address, MAX_MARKETS],
    before: DynArray[uint256, MAX_MARKETS],
    after: DynArray[uint256, MAX_MARKETS],
    total_after: uint256,
):
    for i: uint256 in range(len(markets), bound=MAX_MARKETS):
        if after[i] > before[i]:
            config: MarketConfig = self.market_config[markets[i]]
            assert after[i] <= config.cap_abs and after[i] * BPS <= config.cap_bps * total_after, "vault: cap exceeded"


@internal
@pure
def _turnover(before: DynArray[uint256, MAX_MARKETS], after: DynArray[uint256, MAX_MARKETS]) -> uint256:
    moved: uint256 = 0
    for i: uint256 in range(len(before), bound=MAX_MARKETS):
        if after[i] > before[i]:
            moved += after[i] - before[i]
        else:
            moved += before[i] - after[i]
    return moved


@internal
@pure
def _without(markets: DynArray[address, MAX_MARKETS], market: address) -> DynArray[address, MAX_MARKETS]:
    result: DynArray[address, MAX_MARKETS] = []
    for item: address in markets:
        if item != market:
            result.append(item)
    return result


# ---------------------------------------------------------------- internals: parameters


@internal
def _queue(id: bytes32):
    valid_at: uint256 = block.timestamp + self.timelock
    self.pending_changes[id] = valid_at
    log ChangeQueued(id=id, valid_at=valid_at)


@internal
def _take_queued(id: bytes32):
    valid_at: uint256 = self.pending_changes[id]
    assert valid_at != 0, "vault: not queued"
    assert block.timestamp >= valid_at, "vault: timelock"
    self.pending_changes[id] = 0


@internal
def _set_caps(market: address, cap_bps: uint256, cap_abs: uint256):
    self.market_config[market] = MarketConfig(enabled=True, cap_bps=cap_bps, cap_abs=cap_abs)
    log MarketCapSet(market=market, cap_bps=cap_bps, cap_abs=cap_abs)


@internal
@pure
def _check_param_value(param: uint8, new_value: uint256):
    assert param <= PARAM_TIMELOCK, "vault: bad param"
    if param == PARAM_MAX_TURNOVER_BPS or param == PARAM_MAX_LOSS_BPS or param == PARAM_MIN_IDLE_BPS:
        assert new_value <= BPS, "vault: bad value"
    elif param == PARAM_PERFORMANCE_FEE_BPS:
        assert new_value <= MAX_PERFORMANCE_FEE_BPS, "vault: bad value"
    elif param == PARAM_TIMELOCK:
        assert new_value <= MAX_TIMELOCK, "vault: bad value"


@internal
@view
def _loosens(param: uint8, new_value: uint256) -> bool:
    """
    @dev Loosening: interval, idle floor or timelock lower; any other parameter higher.
    """
    if param == PARAM_MIN_REBALANCE_INTERVAL:
        return new_value < self.min_rebalance_interval
    if param == PARAM_MIN_IDLE_BPS:
        return new_value < self.min_idle_bps
    if param == PARAM_TIMELOCK:
        return new_value < self.timelock
    if param == PARAM_MAX_TURNOVER_BPS:
        return new_value > self.max_turnover_bps
    if param == PARAM_MAX_LOSS_BPS:
        return new_value > self.max_loss_bps
    if param == PARAM_DEPOSIT_LIMIT:
        return new_value > self.deposit_limit
    return new_value > self.performance_fee_bps


@internal
def _set_param(param: uint8, new_value: uint256):
    if param == PARAM_MIN_REBALANCE_INTERVAL:
        self.min_rebalance_interval = new_value
    elif param == PARAM_MAX_TURNOVER_BPS:
        self.max_turnover_bps = new_value
    elif param == PARAM_MAX_LOSS_BPS:
        self.max_loss_bps = new_value
    elif param == PARAM_MIN_IDLE_BPS:
        self.min_idle_bps = new_value
    elif param == PARAM_DEPOSIT_LIMIT:
        self.deposit_limit = new_value
    elif param == PARAM_PERFORMANCE_FEE_BPS:
        # Gains so far are charged at the old rate.
        self._accrue_fee()
        self.performance_fee_bps = new_value
    else:
        self.timelock = new_value
    log ParamSet(param=param, value=new_value)

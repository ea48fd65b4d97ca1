# pragma version ~=0.4.3
# pragma nonreentrancy on
# pragma experimental-codegen
# pragma optimize codesize
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
MAX_REBALANCE_INTERVAL: public(constant(uint256)) = 365 * 86_400
MAX_URI_LENGTH: constant(uint256) = 256
# A queued change not accepted within this long after it became valid lapses: an old
# loosening cannot be applied months later without a fresh delay.
PENDING_EXPIRY: public(constant(uint256)) = 7 * 86_400
# How long the guardian has to approve a rebalance the keeper proposed beyond the daily budgets.
PROPOSAL_TTL: public(constant(uint256)) = 86_400
# Upper bound of the daily budgets (10x the vault a day) and of the accepted price growth (1000 % a year).
MAX_RATE_BPS: public(constant(uint256)) = 100_000
BPS: constant(uint256) = 10_000
DAY: constant(uint256) = 86_400
YEAR: constant(uint256) = 365 * 86_400
# Accepted prices are assets per share scaled by 1e27: exact enough for shares with 18 decimals
# over a 6-decimal asset (a price of 1e-12 per base unit keeps 15 digits).
PRICE_SCALE: constant(uint256) = 10**27
# The share amount a market is priced with while the vault holds none of it.
PRICE_PROBE: constant(uint256) = 10**18
# A holding is stored in one slot, shares in the high half and the price in the low half.
HALF: constant(uint256) = 2**128 - 1
# The low 64 bits of a packed slot that ends in a timestamp.
TIMESTAMP_MASK: constant(uint256) = 2**64 - 1
# Budgets are kept as fractions of totalAssets scaled by 1e18, finer than a basis point.
FRACTION: constant(uint256) = 10**18

PARAM_MIN_REBALANCE_INTERVAL: public(constant(uint8)) = 0
PARAM_MAX_TURNOVER_BPS: public(constant(uint8)) = 1
PARAM_MAX_LOSS_BPS: public(constant(uint8)) = 2
PARAM_MIN_IDLE_BPS: public(constant(uint8)) = 3
PARAM_DEPOSIT_LIMIT: public(constant(uint8)) = 4
PARAM_PERFORMANCE_FEE_BPS: public(constant(uint8)) = 5
PARAM_TIMELOCK: public(constant(uint8)) = 6
PARAM_DAILY_LOSS_BPS: public(constant(uint8)) = 7
PARAM_DAILY_TURNOVER_BPS: public(constant(uint8)) = 8
PARAM_MAX_PRICE_GROWTH_BPS: public(constant(uint8)) = 9
# Each parameter but deposit_limit is a field of `_limits`, this wide, at bit FIELD_BITS x its
# id: wide enough for MAX_RATE_BPS and MAX_REBALANCE_INTERVAL (2**25 is 388 days of seconds).
FIELD_BITS: constant(uint256) = 25
FIELD_MASK: constant(uint256) = 2**25 - 1


struct Allocation:
    market: address
    assets: uint256


struct MarketConfig:
    enabled: bool
    cap_bps: uint256
    cap_abs: uint256


struct Holding:
    # The vault's shares in the market, as counted after its last move or report.
    shares: uint256
    # Accepted assets per share (x PRICE_SCALE): set at listing, moved only by reports,
    # upwards at most `max_price_growth_bps` a year.
    price: uint256


struct PendingValue:
    value: uint256
    # 0 = nothing pending; acceptable from valid_at until valid_at + PENDING_EXPIRY.
    valid_at: uint256


struct PendingCaps:
    cap_bps: uint256
    cap_abs: uint256
    valid_at: uint256


struct Proposal:
    # The last second the proposal can be approved and executed; 0 = none.
    deadline: uint256
    approved: bool


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


event DecisionsUriSet:
    uri: String[MAX_URI_LENGTH]


event Paused:
    account: indexed(address)


event Unpaused:
    account: indexed(address)


event ParamSet:
    param: indexed(uint8)
    value: uint256


event ParamSubmitted:
    param: indexed(uint8)
    value: uint256
    valid_at: uint256


event ParamRevoked:
    param: indexed(uint8)


event CapsSubmitted:
    market: indexed(address)
    cap_bps: uint256
    cap_abs: uint256
    valid_at: uint256


event CapsRevoked:
    market: indexed(address)


event MarketCapSet:
    market: indexed(address)
    cap_bps: uint256
    cap_abs: uint256


event MarketRemovalSubmitted:
    market: indexed(address)
    valid_at: uint256


event MarketRemovalRevoked:
    market: indexed(address)


event MarketRemoved:
    market: indexed(address)
    written_off: uint256


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


event RebalanceProposed:
    id: indexed(bytes32)
    decision_hash: indexed(bytes32)
    deadline: uint256
    allocations: DynArray[Allocation, MAX_MARKETS]


event RebalanceApproved:
    id: indexed(bytes32)


event RebalanceRejected:
    id: indexed(bytes32)


event EmergencyWithdrawal:
    market: indexed(address)
    assets: uint256
    ok: bool


event FeeAccrued:
    fee_recipient: indexed(address)
    shares: uint256
    high_water_mark: uint256


asset: public(immutable(address))
# 10**decimals_offset virtual shares against one virtual asset.
_VIRTUAL_SHARES: immutable(uint256)
# 10**decimals of the vault: the share amount the high-water mark is priced in.
_SHARE_UNIT: immutable(uint256)

# ---- roles
admin: public(address)
pending_admin: public(address)
keeper: public(address)
guardian: public(address)
fee_recipient: public(address)
paused: public(bool)
# Where anyone fetches the bundle a Rebalanced event's decision_hash names:
# <decisions_uri>/decisions/<decision hash> (docs/decision-bundle.md). A view the admin sets, not a
# field of every Rebalanced event: rebalances never read or write it, so it costs them no gas, and the
# hash in the event is already the bundle's content address for any other store.
decisions_uri: public(String[MAX_URI_LENGTH])

# ---- guardrails (PARAM_*), each set through submit_param
# Every parameter but deposit_limit, packed (FIELD_BITS): a rebalance reads most of them,
# and one slot is one cold read instead of eight. Each has a view of its name below.
_limits: uint256
deposit_limit: public(uint256)

# ---- accounting
# Assets per 10**decimals shares; only goes up.
high_water_mark: public(uint256)
last_rebalance: public(uint256)
# total_held << 64 | last_report. total_held is the sum of every listed market's shares x
# accepted price: totalAssets never calls a market, so a market that reverts or lies cannot
# block deposits or withdrawals served elsewhere. last_report: every market is reported at
# once, so one timestamp dates every accepted price. One slot, because every rebalance and
# report writes both, and, the timestamp being set at deployment, the first supply to a
# market is not a write to an empty slot. total_held stays below 2**170 (16 holdings of
# fewer than 2**128 shares at a price below 2**128 / 1e27), well inside its 192 bits.
_accounts: uint256
_holdings: HashMap[address, uint256]
# What the keeper spent of each daily budget (x FRACTION of totalAssets, 96 bits each) and when,
# in one slot: loss_spent << 160 | turnover_spent << 64 | timestamp.
_budgets: uint256

# ---- markets
market_config: public(HashMap[address, MarketConfig])
_markets: DynArray[address, MAX_MARKETS]
# The markets withdrawals draw on, in order: any listed markets, so a broken one can be left out.
_withdraw_queue: DynArray[address, MAX_MARKETS]

# ---- pending changes: one per key, MetaMorpho style
pending_param: public(HashMap[uint8, PendingValue])
pending_caps: public(HashMap[address, PendingCaps])
# valid_at of a forced removal (a removal that writes off a position).
pending_removal: public(HashMap[address, uint256])
# Rebalances beyond the daily budgets, by proposal_id(allocations, decision_hash).
proposals: public(HashMap[bytes32, Proposal])


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
    @param guardian_ May pause, emergency-withdraw, report, approve proposals and revoke queued changes.
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
    self._limits = (
        self._field(PARAM_MAX_TURNOVER_BPS, BPS)
        | self._field(PARAM_TIMELOCK, timelock_)
        | self._field(PARAM_DAILY_TURNOVER_BPS, MAX_RATE_BPS)
        | self._field(PARAM_MAX_PRICE_GROWTH_BPS, MAX_RATE_BPS)
    )
    self.deposit_limit = max_value(uint256)
    # The empty vault's share price: one whole share is worth one whole asset.
    self.high_water_mark = 10 ** convert(asset_decimals, uint256)
    self._accounts = block.timestamp

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
def set_decisions_uri(uri: String[MAX_URI_LENGTH]):
    """
    @notice Sets the base URL of the published decision bundles (admin only); empty for none.
    """
    self._check_admin()
    self.decisions_uri = uri
    log DecisionsUriSet(uri=uri)


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
            (guardian or admin), market by market: a market that reverts is
            skipped (`ok` false in its `EmergencyWithdrawal`), the others still pay.
    """
    self._check_guardian_or_admin()
    self._pause()
    for market: address in self._markets:
        ok: bool = False
        shares: uint256 = 0
        ok, shares = self._try_view(market, abi_encode(self, method_id=method_id("maxRedeem(address)")))
        received: uint256 = 0
        if ok and shares != 0:
            idle_before: uint256 = self._idle()
            ok = self._try_call(market, abi_encode(shares, self, self, method_id=method_id("redeem(uint256,address,address)")))
            if ok:
                received = self._idle() - idle_before
                self._recount(market, self._shares_left(market, shares, 0))
        log EmergencyWithdrawal(market=market, assets=received, ok=ok)


# ---------------------------------------------------------------- ERC-4626 views


@external
@view
def totalAssets() -> uint256:
    """
    @return Idle assets plus every listed market at its last reported value (`total_held`).
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
    @return What `owner`'s shares are worth, capped by what idle and the withdraw queue pay now.
    """
    total: uint256 = 0
    supply: uint256 = 0
    total, supply = self._preview_state()
    return self._liquid_up_to(self._to_assets(erc20.balanceOf[owner], total, supply, False))


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
    balance: uint256 = erc20.balanceOf[owner]
    owed: uint256 = self._to_assets(balance, total, supply, False)
    liquid: uint256 = self._liquid_up_to(owed)
    if liquid == owed:
        return balance
    return self._to_shares(liquid, total, supply, False)


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
    @return What a report of `market` would value the vault's position at now (what
            `rebalance` starts from); its last reported value if the market reverts.
    """
    price: uint256 = 0
    shares: uint256 = 0
    ok: bool = False
    ok, shares, price = self._priced(market)
    return shares * price // PRICE_SCALE


@external
@view
def holdings(market: address) -> Holding:
    """
    @return The vault's shares in `market` and their accepted price (assets per share x 1e27), as last reported.
    """
    return self._holding(market)


@external
@view
def min_rebalance_interval() -> uint256:
    """
    @return Seconds the keeper waits between two rebalances.
    """
    return self._limit(PARAM_MIN_REBALANCE_INTERVAL)


@external
@view
def max_turnover_bps() -> uint256:
    """
    @return The most one rebalance may move, in bps of totalAssets.
    """
    return self._limit(PARAM_MAX_TURNOVER_BPS)


@external
@view
def max_loss_bps() -> uint256:
    """
    @return The most one rebalance may lose, in bps of totalAssets.
    """
    return self._limit(PARAM_MAX_LOSS_BPS)


@external
@view
def min_idle_bps() -> uint256:
    """
    @return The idle floor a rebalance may not take idle below, in bps of totalAssets.
    """
    return self._limit(PARAM_MIN_IDLE_BPS)


@external
@view
def performance_fee_bps() -> uint256:
    """
    @return The fee recipient's share of gains above the high-water mark, in bps.
    """
    return self._limit(PARAM_PERFORMANCE_FEE_BPS)


@external
@view
def timelock() -> uint256:
    """
    @return Seconds a loosening waits before the admin may accept it.
    """
    return self._limit(PARAM_TIMELOCK)


@external
@view
def daily_loss_bps() -> uint256:
    """
    @return What the keeper may lose (reported falls plus losses on moves) over a rolling day,
            in bps of totalAssets: the budget refills linearly from empty to full in one day.
    """
    return self._limit(PARAM_DAILY_LOSS_BPS)


@external
@view
def daily_turnover_bps() -> uint256:
    """
    @return What the keeper may move over a rolling day, in bps of totalAssets.
    """
    return self._limit(PARAM_DAILY_TURNOVER_BPS)


@external
@view
def max_price_growth_bps() -> uint256:
    """
    @return The fastest a market's accepted price may rise, in bps a year: a price moved up
            for one block counts only this much, so it cannot pass a loss check or earn a fee.
    """
    return self._limit(PARAM_MAX_PRICE_GROWTH_BPS)


@external
@view
def total_held() -> uint256:
    """
    @return Every listed market at its last reported value, in assets.
    """
    return self._held()


@external
@view
def last_report() -> uint256:
    """
    @return When every market was last valued (the accepted prices' date).
    """
    return self._accounts & TIMESTAMP_MASK


@external
@view
def budgets() -> (uint256, uint256):
    """
    @return The daily loss and turnover budgets left now, as fractions of totalAssets x 1e18.
    """
    return self._budgets_now()


@external
@pure
def proposal_id(allocations: DynArray[Allocation, MAX_MARKETS], decision_hash: bytes32) -> bytes32:
    """
    @return The id the guardian approves for exactly this rebalance.
    """
    return keccak256(abi_encode(allocations, decision_hash))


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
            (rounded up). Served from idle, then the withdraw queue, skipping a
            market that reverts. Never paused.
    """
    total: uint256 = self._accrue_fee()
    supply: uint256 = erc20.totalSupply
    assert assets <= self._to_assets(erc20.balanceOf[owner], total, supply, False), "vault: withdraw more than max"
    shares: uint256 = self._to_shares(assets, total, supply, True)
    self._exit(receiver, owner, assets, shares)
    return shares


@external
def redeem(shares: uint256, receiver: address, owner: address) -> uint256:
    """
    @notice Burns exactly `shares` of `owner`, sending their worth (rounded down)
            to `receiver`. Served like `withdraw`. Never paused.
    """
    total: uint256 = self._accrue_fee()
    supply: uint256 = erc20.totalSupply
    assert shares <= erc20.balanceOf[owner], "vault: redeem more than max"
    assets: uint256 = self._to_assets(shares, total, supply, False)
    self._exit(receiver, owner, assets, shares)
    return assets


# ---------------------------------------------------------------- keeper


@external
def rebalance(allocations: DynArray[Allocation, MAX_MARKETS], decision_hash: bytes32):
    """
    @notice Reports every listed market, then moves the named markets to their
            target positions (withdrawals first, then supplies from idle) and
            reverts unless every guardrail of contracts/README.md holds. Beyond
            the daily budgets it needs the guardian's approval of this exact move.
    @param allocations Target positions in assets; markets not named keep theirs.
    @param decision_hash The keeper's record of the decision behind this move.
    """
    assert msg.sender == self.keeper, "vault: not keeper"
    self._check_not_paused()
    assert block.timestamp >= self.last_rebalance + self._limit(PARAM_MIN_REBALANCE_INTERVAL), "vault: cooldown"
    named: DynArray[address, MAX_MARKETS] = []
    for allocation: Allocation in allocations:
        named.append(allocation.market)
    self._check_listed_once(named)

    total_stored: uint256 = self._total_assets()
    self._report_all()
    total_before: uint256 = self._accrue_fee()
    # totalAssets is idle plus the stored holdings: one balance call fewer on each side.
    idle_before: uint256 = total_before - self._held()
    before: DynArray[uint256, MAX_MARKETS] = self._values(named)
    self._move_funds(allocations, before)
    after: DynArray[uint256, MAX_MARKETS] = self._values(named)
    idle_after: uint256 = self._idle()
    total_after: uint256 = idle_after + self._held()

    self._check_caps(named, before, after, total_after)
    if idle_after < idle_before:
        assert idle_after * BPS >= self._limit(PARAM_MIN_IDLE_BPS) * total_after, "vault: idle below floor"
    moved: uint256 = self._turnover(before, after)
    assert moved * BPS <= self._limit(PARAM_MAX_TURNOVER_BPS) * total_before, "vault: turnover exceeded"
    assert total_after * BPS >= total_before * (BPS - self._limit(PARAM_MAX_LOSS_BPS)), "vault: loss exceeded"
    loss: uint256 = self._fall(total_stored, total_before) + self._fall(total_before, total_after)
    if not self._spend_budgets(loss, moved, total_stored):
        self._take_approval(keccak256(abi_encode(allocations, decision_hash)))

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


@external
def report():
    """
    @notice Values every listed market anew (keeper, guardian or admin): a price
            rises at most `max_price_growth_bps` a year since its last report; a
            fall counts in full. A market that reverts keeps its last value. The
            keeper's falls spend its daily loss budget; the guardian's and admin's do not.
    """
    is_keeper: bool = msg.sender == self.keeper
    assert is_keeper or msg.sender == self.guardian or msg.sender == self.admin, "vault: not reporter"
    total_stored: uint256 = self._total_assets()
    self._report_all()
    total: uint256 = self._accrue_fee()
    if is_keeper:
        assert self._spend_budgets(self._fall(total_stored, total), 0, total_stored), "vault: over daily budget"


@external
def propose_rebalance(allocations: DynArray[Allocation, MAX_MARKETS], decision_hash: bytes32) -> bytes32:
    """
    @notice Publishes a rebalance that exceeds the daily budgets for the guardian
            to approve (keeper only); it can run until the deadline once approved.
    @return The proposal id.
    """
    assert msg.sender == self.keeper, "vault: not keeper"
    id: bytes32 = keccak256(abi_encode(allocations, decision_hash))
    deadline: uint256 = block.timestamp + PROPOSAL_TTL
    self.proposals[id] = Proposal(deadline=deadline, approved=False)
    log RebalanceProposed(id=id, decision_hash=decision_hash, deadline=deadline, allocations=allocations)
    return id


@external
def approve_rebalance(id: bytes32):
    """
    @notice Approves a proposed rebalance before its deadline (guardian only).
    """
    assert msg.sender == self.guardian, "vault: not guardian"
    proposal: Proposal = self.proposals[id]
    assert block.timestamp <= proposal.deadline, "vault: no live proposal"
    self.proposals[id] = Proposal(deadline=proposal.deadline, approved=True)
    log RebalanceApproved(id=id)


@external
def reject_rebalance(id: bytes32):
    """
    @notice Drops a proposed rebalance (guardian only).
    """
    assert msg.sender == self.guardian, "vault: not guardian"
    assert self.proposals[id].deadline != 0, "vault: no live proposal"
    self.proposals[id] = empty(Proposal)
    log RebalanceRejected(id=id)


# ---------------------------------------------------------------- parameters and markets


@external
def submit_param(param: uint8, new_value: uint256):
    """
    @notice Sets a parameter now if the change tightens (or keeps) it, cancelling
            any queued change of it; else queues it for `accept_param` after the
            timelock, replacing any earlier one (admin only).
    @param param One of the PARAM_* ids.
    @param new_value The new value.
    """
    self._check_admin()
    self._check_param_value(param, new_value)
    if self._loosens(param, new_value):
        valid_at: uint256 = block.timestamp + self._limit(PARAM_TIMELOCK)
        self.pending_param[param] = PendingValue(value=new_value, valid_at=valid_at)
        log ParamSubmitted(param=param, value=new_value, valid_at=valid_at)
    else:
        self._drop_pending_param(param)
        self._set_param(param, new_value)


@external
def accept_param(param: uint8):
    """
    @notice Applies the queued change of `param` once its timelock has passed and
            before it lapses (admin only).
    """
    self._check_admin()
    pending: PendingValue = self.pending_param[param]
    self._check_ready(pending.valid_at)
    self.pending_param[param] = empty(PendingValue)
    self._set_param(param, pending.value)


@external
def submit_market(market: address, cap_bps: uint256, cap_abs: uint256):
    """
    @notice Lowers a listed market's caps now, cancelling any queued raise; listing
            a market or raising a cap is queued for `accept_market` after the timelock,
            replacing any earlier one (admin only).
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
    if not config.enabled or cap_bps > config.cap_bps or cap_abs > config.cap_abs:
        valid_at: uint256 = block.timestamp + self._limit(PARAM_TIMELOCK)
        self.pending_caps[market] = PendingCaps(cap_bps=cap_bps, cap_abs=cap_abs, valid_at=valid_at)
        log CapsSubmitted(market=market, cap_bps=cap_bps, cap_abs=cap_abs, valid_at=valid_at)
    else:
        self._drop_pending_caps(market)
        self._set_caps(market, cap_bps, cap_abs)


@external
def accept_market(market: address):
    """
    @notice Applies the queued caps of `market` once the timelock has passed and
            before they lapse (admin only); a newly listed market is priced now
            and goes to the end of the withdraw queue.
    """
    self._check_admin()
    pending: PendingCaps = self.pending_caps[market]
    self._check_ready(pending.valid_at)
    self.pending_caps[market] = empty(PendingCaps)
    if not self.market_config[market].enabled:
        assert len(self._markets) < MAX_MARKETS, "vault: too many markets"
        self._markets.append(market)
        self._withdraw_queue.append(market)
        price: uint256 = staticcall IERC4626(market).convertToAssets(PRICE_PROBE) * PRICE_SCALE // PRICE_PROBE
        self._store(market, 0, price)
    self._set_caps(market, pending.cap_bps, pending.cap_abs)


@external
def submit_market_removal(market: address):
    """
    @notice Sets `market`'s caps to zero now and queues its forced removal, which
            writes off whatever position is left, for after the timelock (admin only).
    """
    self._check_admin()
    assert self.market_config[market].enabled, "vault: market not allowed"
    self._drop_pending_caps(market)
    self._set_caps(market, 0, 0)
    valid_at: uint256 = block.timestamp + self._limit(PARAM_TIMELOCK)
    self.pending_removal[market] = valid_at
    log MarketRemovalSubmitted(market=market, valid_at=valid_at)


@external
def remove_market(market: address):
    """
    @notice Delists a market (admin only): at once if the vault holds none of its
            shares, else once its forced removal is due, writing off its value.
            The market's allowance is reset to zero.
    """
    self._check_admin()
    assert self.market_config[market].enabled, "vault: market not allowed"
    holding: Holding = self._holding(market)
    if holding.shares != 0:
        self._check_ready(self.pending_removal[market])
    written_off: uint256 = holding.shares * holding.price // PRICE_SCALE
    self._set_held(self._held() - written_off)
    self._holdings[market] = 0
    self.market_config[market] = empty(MarketConfig)
    self._drop_pending_caps(market)
    self.pending_removal[market] = 0
    self._markets = self._without(self._markets, market)
    self._withdraw_queue = self._without(self._withdraw_queue, market)
    self._approve(market, 0)
    log MarketRemoved(market=market, written_off=written_off)


@external
def set_withdraw_queue(queue: DynArray[address, MAX_MARKETS]):
    """
    @notice Sets the withdraw queue: listed markets, each at most once; a market
            left out is never drawn on by withdrawals (admin only).
    """
    self._check_admin()
    self._check_listed_once(queue)
    self._withdraw_queue = queue
    log WithdrawQueueSet(markets=queue)


@external
def revoke_pending_param(param: uint8):
    """
    @notice Cancels the queued change of `param` (guardian or admin).
    """
    self._check_guardian_or_admin()
    assert self.pending_param[param].valid_at != 0, "vault: not queued"
    self._drop_pending_param(param)


@external
def revoke_pending_caps(market: address):
    """
    @notice Cancels the queued caps (or listing) of `market` (guardian or admin).
    """
    self._check_guardian_or_admin()
    assert self.pending_caps[market].valid_at != 0, "vault: not queued"
    self._drop_pending_caps(market)


@external
def revoke_pending_removal(market: address):
    """
    @notice Cancels the queued forced removal of `market` (guardian or admin).
    """
    self._check_guardian_or_admin()
    assert self.pending_removal[market] != 0, "vault: not queued"
    self.pending_removal[market] = 0
    log MarketRemovalRevoked(market=market)


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


# ---------------------------------------------------------------- internals: calls that may fail


@internal
@view
def _try_view(target: address, data: Bytes[100]) -> (bool, uint256):
    """
    @dev A uint256 view of a market that may revert or answer garbage: (False, 0) then.
    """
    ok: bool = False
    response: Bytes[32] = b""
    ok, response = raw_call(target, data, max_outsize=32, is_static_call=True, revert_on_failure=False)
    if not ok or len(response) != 32:
        return (False, 0)
    return (True, convert(response, uint256))


@internal
def _try_call(target: address, data: Bytes[100]) -> bool:
    ok: bool = False
    response: Bytes[32] = b""
    ok, response = raw_call(target, data, max_outsize=32, revert_on_failure=False)
    return ok


@internal
def _approve(market: address, amount: uint256):
    assert extcall IERC20(asset).approve(market, amount, default_return_value=True), "vault: approve failed"


# ---------------------------------------------------------------- internals: accounting


@internal
@view
def _idle() -> uint256:
    return staticcall IERC20(asset).balanceOf(self)


@internal
@view
def _total_assets() -> uint256:
    return self._idle() + self._held()


@internal
@view
def _held() -> uint256:
    return self._accounts >> 64


@internal
def _set_held(held: uint256):
    self._accounts = (held << 64) | (self._accounts & TIMESTAMP_MASK)


@internal
@view
def _holding(market: address) -> Holding:
    word: uint256 = self._holdings[market]
    return Holding(shares=word >> 128, price=word & HALF)


@internal
@view
def _value(market: address) -> uint256:
    holding: Holding = self._holding(market)
    return holding.shares * holding.price // PRICE_SCALE


@internal
@view
def _values(markets: DynArray[address, MAX_MARKETS]) -> DynArray[uint256, MAX_MARKETS]:
    result: DynArray[uint256, MAX_MARKETS] = []
    for market: address in markets:
        result.append(self._value(market))
    return result


@internal
@view
def _priced(market: address) -> (bool, uint256, uint256):
    """
    @dev What a report finds: (answered, shares, price). Shares are the fewer of the
         market's balance and the vault's own count (shares sent to the vault by others
         are not counted); the price is the market's, capped by the accepted price
         grown at `max_price_growth_bps` since the last report.
    """
    holding: Holding = self._holding(market)
    ok: bool = False
    balance: uint256 = 0
    ok, balance = self._try_view(market, abi_encode(self, method_id=method_id("balanceOf(address)")))
    if not ok:
        return (False, holding.shares, holding.price)
    shares: uint256 = min(balance, holding.shares)
    probe: uint256 = shares
    if probe == 0:
        probe = PRICE_PROBE
    assets: uint256 = 0
    ok, assets = self._try_view(market, abi_encode(probe, method_id=method_id("previewRedeem(uint256)")))
    if not ok:
        return (False, holding.shares, holding.price)
    bound: uint256 = holding.price + holding.price * self._limit(PARAM_MAX_PRICE_GROWTH_BPS) * (block.timestamp - (self._accounts & TIMESTAMP_MASK)) // (BPS * YEAR)
    return (True, shares, min(math._mul_div(assets, PRICE_SCALE, probe, False), bound))


@internal
def _report_all():
    for market: address in self._markets:
        ok: bool = False
        shares: uint256 = 0
        price: uint256 = 0
        ok, shares, price = self._priced(market)
        if ok:
            self._store(market, shares, price)
    self._accounts = (self._held() << 64) | block.timestamp


@internal
def _store(market: address, shares: uint256, price: uint256):
    """
    @dev Records a market's shares and accepted price, keeping total_held their sum.
    """
    assert shares <= HALF and price <= HALF, "vault: holding too large"
    self._set_held(self._held() - self._value(market) + shares * price // PRICE_SCALE)
    self._holdings[market] = (shares << 128) | price


@internal
def _recount(market: address, shares: uint256):
    """
    @dev After the vault moved funds in or out of `market`: its new share count at the accepted price.
    """
    self._store(market, shares, self._holding(market).price)


@internal
@view
def _shares_of(market: address) -> uint256:
    """
    @dev The vault's balance in a market it has just supplied; its own count if the market does not answer.
    """
    ok: bool = False
    balance: uint256 = 0
    ok, balance = self._try_view(market, abi_encode(self, method_id=method_id("balanceOf(address)")))
    if not ok:
        return self._holding(market).shares
    return balance


@internal
@view
def _shares_left(market: address, spent_shares: uint256, spent_assets: uint256) -> uint256:
    """
    @dev The vault's count after it took `spent_shares` or `spent_assets` out of `market`: the
         fewer of the market's balance and its own count; if the market does not answer, its own
         count less what it spent (assets at the accepted price, rounded up), so what was taken
         out is not counted both in idle and in the market.
    """
    holding: Holding = self._holding(market)
    ok: bool = False
    balance: uint256 = 0
    ok, balance = self._try_view(market, abi_encode(self, method_id=method_id("balanceOf(address)")))
    if ok:
        return min(balance, holding.shares)
    spent: uint256 = spent_shares
    if spent_assets != 0 and holding.price != 0:
        spent = math._mul_div(spent_assets, PRICE_SCALE, holding.price, True)
    return holding.shares - min(spent, holding.shares)


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
         asking markets only until `amount` is covered; a market that reverts pays nothing.
    """
    liquid: uint256 = self._idle()
    for market: address in self._withdraw_queue:
        if liquid >= amount:
            return amount
        ok: bool = False
        available: uint256 = 0
        ok, available = self._try_view(market, abi_encode(self, method_id=method_id("maxWithdraw(address)")))
        liquid += available
    return min(liquid, amount)


# ---------------------------------------------------------------- internals: budgets


@internal
@pure
def _fall(start: uint256, end: uint256) -> uint256:
    if end >= start:
        return 0
    return start - end


@internal
@view
def _spent_now() -> (uint256, uint256):
    """
    @dev What the keeper has spent of each budget in the rolling day: spending
         fades linearly at the budget's daily size, so a full budget is back a day later.
    """
    word: uint256 = self._budgets
    elapsed: uint256 = block.timestamp - (word & TIMESTAMP_MASK)
    loss_spent: uint256 = word >> 160
    turnover_spent: uint256 = (word >> 64) & (2**96 - 1)
    loss_faded: uint256 = self._limit(PARAM_DAILY_LOSS_BPS) * FRACTION // BPS * elapsed // DAY
    turnover_faded: uint256 = self._limit(PARAM_DAILY_TURNOVER_BPS) * FRACTION // BPS * elapsed // DAY
    return (loss_spent - min(loss_spent, loss_faded), turnover_spent - min(turnover_spent, turnover_faded))


@internal
@view
def _budgets_now() -> (uint256, uint256):
    loss_spent: uint256 = 0
    turnover_spent: uint256 = 0
    loss_spent, turnover_spent = self._spent_now()
    loss_size: uint256 = self._limit(PARAM_DAILY_LOSS_BPS) * FRACTION // BPS
    turnover_size: uint256 = self._limit(PARAM_DAILY_TURNOVER_BPS) * FRACTION // BPS
    return (loss_size - min(loss_spent, loss_size), turnover_size - min(turnover_spent, turnover_size))


@internal
def _spend_budgets(loss: uint256, moved: uint256, total: uint256) -> bool:
    """
    @dev Adds `loss` and `moved` (assets, of `total`) to what was spent; False if
         either budget is then overdrawn (the spending is still recorded, for an approved move).
    """
    loss_spent: uint256 = 0
    turnover_spent: uint256 = 0
    loss_spent, turnover_spent = self._spent_now()
    loss_spent += math._mul_div(loss, FRACTION, max(total, 1), True)
    turnover_spent += math._mul_div(moved, FRACTION, max(total, 1), True)
    self._keep_spent(loss_spent, turnover_spent)
    return loss_spent <= self._limit(PARAM_DAILY_LOSS_BPS) * FRACTION // BPS and turnover_spent <= self._limit(PARAM_DAILY_TURNOVER_BPS) * FRACTION // BPS


@internal
def _take_approval(id: bytes32):
    proposal: Proposal = self.proposals[id]
    assert proposal.approved and block.timestamp <= proposal.deadline, "vault: over daily budget"
    self.proposals[id] = empty(Proposal)


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
    fee_bps: uint256 = self._limit(PARAM_PERFORMANCE_FEE_BPS)
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
    @dev Withdraws from markets in withdraw-queue order until idle covers `assets`,
         skipping a market that reverts; reverts if the queue cannot cover it.
    """
    idle: uint256 = self._idle()
    for market: address in self._withdraw_queue:
        if idle >= assets:
            return
        ok: bool = False
        available: uint256 = 0
        ok, available = self._try_view(market, abi_encode(self, method_id=method_id("maxWithdraw(address)")))
        take: uint256 = min(assets - idle, available)
        if take != 0 and self._try_call(market, abi_encode(take, self, self, method_id=method_id("withdraw(uint256,address,address)"))):
            self._recount(market, self._shares_left(market, 0, take))
            idle = self._idle()
    assert idle >= assets, "vault: not enough liquidity"


@internal
def _move_funds(allocations: DynArray[Allocation, MAX_MARKETS], before: DynArray[uint256, MAX_MARKETS]):
    """
    @dev Withdraws every market above its target first, then supplies every
         market below its target from idle, approving exactly the amount and
         resetting the allowance after, so a market that pulls less keeps none.
    """
    for i: uint256 in range(len(allocations), bound=MAX_MARKETS):
        target: Allocation = allocations[i]
        if target.assets == 0 and before[i] != 0:
            extcall IERC4626(target.market).redeem(staticcall IERC20(target.market).balanceOf(self), self, self)
            self._recount(target.market, self._shares_left(target.market, max_value(uint256), 0))
        elif target.assets < before[i]:
            extcall IERC4626(target.market).withdraw(before[i] - target.assets, self, self)
            self._recount(target.market, self._shares_left(target.market, 0, before[i] - target.assets))
    for i: uint256 in range(len(allocations), bound=MAX_MARKETS):
        target: Allocation = allocations[i]
        if target.assets > before[i]:
            amount: uint256 = target.assets - before[i]
            assert amount <= self._idle(), "vault: insufficient idle"
            self._approve(target.market, amount)
            extcall IERC4626(target.market).deposit(amount, self)
            if staticcall IERC20(asset).allowance(self, target.market) != 0:
                self._approve(target.market, 0)
            self._recount(target.market, self._shares_of(target.market))


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
@view
def _check_ready(valid_at: uint256):
    assert valid_at != 0, "vault: not queued"
    assert block.timestamp >= valid_at, "vault: timelock"
    assert block.timestamp <= valid_at + PENDING_EXPIRY, "vault: expired"


@internal
def _drop_pending_param(param: uint8):
    if self.pending_param[param].valid_at != 0:
        self.pending_param[param] = empty(PendingValue)
        log ParamRevoked(param=param)


@internal
def _drop_pending_caps(market: address):
    if self.pending_caps[market].valid_at != 0:
        self.pending_caps[market] = empty(PendingCaps)
        log CapsRevoked(market=market)


@internal
def _set_caps(market: address, cap_bps: uint256, cap_abs: uint256):
    self.market_config[market] = MarketConfig(enabled=True, cap_bps=cap_bps, cap_abs=cap_abs)
    log MarketCapSet(market=market, cap_bps=cap_bps, cap_abs=cap_abs)


@internal
@pure
def _check_param_value(param: uint8, new_value: uint256):
    assert param <= PARAM_MAX_PRICE_GROWTH_BPS, "vault: bad param"
    if param == PARAM_MAX_TURNOVER_BPS or param == PARAM_MAX_LOSS_BPS or param == PARAM_MIN_IDLE_BPS:
        assert new_value <= BPS, "vault: bad value"
    elif param == PARAM_PERFORMANCE_FEE_BPS:
        assert new_value <= MAX_PERFORMANCE_FEE_BPS, "vault: bad value"
    elif param == PARAM_TIMELOCK:
        assert new_value <= MAX_TIMELOCK, "vault: bad value"
    elif param == PARAM_MIN_REBALANCE_INTERVAL:
        assert new_value <= MAX_REBALANCE_INTERVAL, "vault: bad value"
    elif param >= PARAM_DAILY_LOSS_BPS:
        assert new_value <= MAX_RATE_BPS, "vault: bad value"


@internal
@view
def _loosens(param: uint8, new_value: uint256) -> bool:
    """
    @dev Loosening: interval, idle floor or timelock lower; any other parameter higher.
    """
    if param == PARAM_MIN_REBALANCE_INTERVAL or param == PARAM_MIN_IDLE_BPS or param == PARAM_TIMELOCK:
        return new_value < self._limit(param)
    return new_value > self._param(param)


@internal
@pure
def _field(param: uint8, amount: uint256) -> uint256:
    return amount << (FIELD_BITS * convert(param, uint256))


@internal
@view
def _limit(param: uint8) -> uint256:
    """
    @dev A parameter other than deposit_limit, from its field of `_limits`.
    """
    return (self._limits >> (FIELD_BITS * convert(param, uint256))) & FIELD_MASK


@internal
@view
def _param(param: uint8) -> uint256:
    if param == PARAM_DEPOSIT_LIMIT:
        return self.deposit_limit
    return self._limit(param)


@internal
def _set_param(param: uint8, new_value: uint256):
    if param == PARAM_DEPOSIT_LIMIT:
        self.deposit_limit = new_value
    else:
        if param == PARAM_PERFORMANCE_FEE_BPS:
            # Gains so far are charged at the old rate.
            self._accrue_fee()
        elif param == PARAM_DAILY_LOSS_BPS or param == PARAM_DAILY_TURNOVER_BPS:
            # What was spent is settled at the old sizes; the new size applies from now.
            loss_spent: uint256 = 0
            turnover_spent: uint256 = 0
            loss_spent, turnover_spent = self._spent_now()
            self._keep_spent(loss_spent, turnover_spent)
        self._limits = (self._limits & ~self._field(param, FIELD_MASK)) | self._field(param, new_value)
    log ParamSet(param=param, value=new_value)


@internal
def _keep_spent(loss_spent: uint256, turnover_spent: uint256):
    # Capped to fit 96 bits each: 1e19 is ten times the vault, beyond any daily budget.
    self._budgets = (min(loss_spent, 10**19) << 160) | (min(turnover_spent, 10**19) << 64) | block.timestamp

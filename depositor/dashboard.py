"""The vault's figures for `vaultbot vault info` and the web page, all read through VaultReader:
allocation against caps, current APY from each market's stated rate or else its own share price over the
last day (any ERC-4626), share price over time (sampled blocks), realised APY from that history, guardrail
settings and what is left of the daily budgets, when the markets were last reported, the keeper's proposals
waiting for the guardian, the last rebalances with their decision hashes.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import overload

from web3 import Web3
from web3.contract import Contract
from web3.exceptions import BadFunctionCallOutput, ContractLogicError

from chain.vault_reader import MarketSnapshot, Proposal, VaultReader, VaultSnapshot
from depositor.vault import DepositorVault
from strategy.guardrails import Guardrails, MarketLimits, VaultState, breaches, market_cap
from strategy.units import BPS, SECONDS_PER_YEAR, UINT256_MAX, WAD, annualised_growth

HISTORY_POINTS = 48
REBALANCES_SHOWN = 10
MIN_REALISED_SPAN_S = 3_600  # a shorter history annualises noise
APY_WINDOW_S = 86_400  # a market's APY is its share price's growth over the last day of chain time
# The shares whose value (`convertToAssets`) is followed: many, so that a day's growth shows in many digits
# whatever the market's decimals, and few enough that no market's arithmetic overflows.
PROBE_SHARES = 10**30


@dataclass(frozen=True)
class MarketRow:
    name: str
    address: str
    position: int
    share: float  # of total assets, 0..1
    cap_bps: int
    cap_abs: int
    cap_used: float  # position / min(cap_abs, cap_bps of total assets), 0..1 (can exceed 1 after a loss elsewhere)
    apy: float | None  # `market_apys`: its stated rate, else its share price; None when it cannot be told


@dataclass(frozen=True)
class PricePoint:
    block: int
    time: int
    price: int  # assets per 10**decimals shares
    total_assets: int  # the vault's stored totalAssets at that block (base units)


@dataclass(frozen=True)
class RebalanceRow:
    block: int
    time: int
    tx_hash: str
    decision_hash: str
    moved: int
    total_after: int


@dataclass(frozen=True)
class Dashboard:
    block: int
    block_time: int
    total_assets: int
    total_supply: int
    price_per_share: int
    idle: int
    paused: bool
    markets: list[MarketRow]
    current_apy: float | None
    realised_apy: float | None
    history: list[PricePoint]
    rebalances: list[RebalanceRow]
    guardrails: list[tuple[str, str]]
    last_report: int  # chain time the markets were last valued: totalAssets moves only then
    proposals: tuple[Proposal, ...]  # beyond the daily budgets: waiting for the guardian, or approved
    breaches: tuple[str, ...] = ()  # limits the vault is outside of now (after a large withdrawal), as lines


def rate_to_apy(rate_per_second_wad: int) -> float:
    """A MockMarket's per-second rate (1e18 = 100 %/s) as a yearly yield; the inverse of deploy.apy_to_rate_wad."""
    return math.expm1(rate_per_second_wad / WAD * SECONDS_PER_YEAR)


def read_dashboard(vault: DepositorVault, *, from_block: int = 0, history_points: int = HISTORY_POINTS,
                   rebalances: int = REBALANCES_SHOWN) -> Dashboard:
    reader = vault.reader
    snapshot = reader.snapshot()
    block = vault.w3.eth.get_block("latest")
    total, idle = snapshot.total_assets, snapshot.idle
    # shares and caps are of what the vault holds now, as the next report will value it: the stored
    # totalAssets leaves out what the markets earned since the last report
    held = idle + sum(m.position for m in snapshot.markets)
    apys = market_apys(reader, snapshot.markets, snapshot.block)
    markets = [_market_row(m, held, apys[m.address]) for m in snapshot.markets]
    rails = reader.guardrails(snapshot.block)
    names = {m.address: m.name for m in snapshot.markets}
    now = VaultState(idle=idle, positions={m.address: m.position for m in snapshot.markets},
                     last_rebalance=0, paused=snapshot.paused)
    history = price_history(vault, from_block, block["number"], history_points)
    return Dashboard(
        block=block["number"], block_time=block["timestamp"], total_assets=total,
        total_supply=snapshot.total_supply, price_per_share=snapshot.price_per_share, idle=idle,
        paused=snapshot.paused, markets=markets,
        current_apy=current_apy(markets, held, snapshot.fee_bps), realised_apy=realised_apy(history),
        history=history, rebalances=recent_rebalances(vault, from_block, rebalances),
        guardrails=guardrail_rows(vault, snapshot, rails), last_report=snapshot.last_report,
        proposals=snapshot.proposals,
        breaches=tuple(breach.text(vault.assets_text, names.__getitem__) for breach in breaches(now, rails)),
    )


def _market_row(market: MarketSnapshot, total: int, apy: float | None) -> MarketRow:
    cap = market_cap(total, MarketLimits(cap_bps=market.cap_bps, cap_abs=market.cap_abs))
    return MarketRow(
        name=market.name, address=market.address, position=market.position,
        share=market.position / total if total else 0.0, cap_bps=market.cap_bps, cap_abs=market.cap_abs,
        cap_used=market.position / cap if cap else 0.0, apy=apy,
    )


def market_apys(reader: VaultReader, markets: Sequence[MarketSnapshot], block: int) -> dict[str, float | None]:
    """Each market's APY at `block`: the rate it states, if it states one (a MockMarket's `rate_per_second`: the
    rate now, which its share price shows only a day later when the rate moves, as in the demo); else the growth
    of its own share price (`convertToAssets(PROBE_SHARES)`, which every ERC-4626 has) over the last APY_WINDOW_S
    of chain time, back to the vault's deployment at most; None over less than MIN_REALISED_SPAN_S (a young
    chain) or while its price cannot be read."""
    apys: dict[str, float | None] = {m.address: rate_to_apy(m.rate) for m in markets if m.rate is not None}
    unstated = [m for m in markets if m.rate is None]
    if not unstated:
        return apys
    eth = reader.w3.eth
    now = eth.get_block(block)["timestamp"]
    start = last_block_at(reader, now - APY_WINDOW_S, reader.deployed_block(), block)
    span = now - eth.get_block(start)["timestamp"]
    for market in unstated:
        contract = eth.contract(address=Web3.to_checksum_address(market.address), abi=reader.market_abi)
        apys[market.address] = _share_price_apy(contract, start, block, span)
    return apys


def last_block_at(reader: VaultReader, time: int, low: int, high: int) -> int:
    """The last block in [low, high] whose timestamp is at most `time` (`low` when none is): a binary search,
    block timestamps never decrease."""
    while low < high:
        middle = (low + high + 1) // 2
        if reader.w3.eth.get_block(middle)["timestamp"] <= time:
            low = middle
        else:
            high = middle - 1
    return low


def _share_price_apy(market: Contract, start: int, end: int, span: int) -> float | None:
    """The growth of what PROBE_SHARES of `market` are worth from block `start` to `end`, `span` seconds apart,
    annualised; None over less than MIN_REALISED_SPAN_S, before the market existed or while its conversion
    reverts."""
    if span < MIN_REALISED_SPAN_S:
        return None
    try:
        before, after = (market.functions.convertToAssets(PROBE_SHARES).call(block_identifier=block)
                         for block in (start, end))
    except (ContractLogicError, BadFunctionCallOutput):
        return None
    return annualised_growth(before, after, span)


def current_apy(markets: list[MarketRow], total: int, fee_bps: int) -> float | None:
    """What the vault earns now after the performance fee: positions weighted by their market's APY, idle at 0.
    None when a market holding assets has no known rate, or the vault is empty."""
    if total == 0 or any(m.apy is None and m.position for m in markets):
        return None
    gross = sum(m.position * (m.apy or 0.0) for m in markets) / total
    return gross * (BPS - fee_bps) / BPS


def price_history(vault: DepositorVault, from_block: int, to_block: int, points: int) -> list[PricePoint]:
    """The share price and total assets at up to `points` blocks spread evenly from `from_block` to `to_block`."""
    first = max(from_block, vault.reader.deployed_block())
    if to_block < first:
        return []
    count = min(points, to_block - first + 1)
    blocks = sorted({first + round(i * (to_block - first) / max(1, count - 1)) for i in range(count)})
    eth = vault.w3.eth
    return [PricePoint(b, eth.get_block(b)["timestamp"], vault.reader.price_per_share(block=b),
                       vault.reader.total_assets(block=b)) for b in blocks]


def realised_apy(history: list[PricePoint]) -> float | None:
    """The share price's growth over the history, annualised; None over less than an hour."""
    if len(history) < 2:
        return None
    first, last = history[0], history[-1]
    span = last.time - first.time
    if span < MIN_REALISED_SPAN_S:
        return None
    return annualised_growth(first.price, last.price, span)


def recent_rebalances(vault: DepositorVault, from_block: int, limit: int) -> list[RebalanceRow]:
    events = vault.reader.rebalance_events(from_block)[-limit:]
    return [RebalanceRow(e.block, e.time, e.tx_hash, e.decision_hash, e.moved, e.total_after) for e in reversed(events)]


def guardrail_rows(vault: DepositorVault, snapshot: VaultSnapshot, rails: Guardrails) -> list[tuple[str, str]]:
    limit = snapshot.deposit_limit
    return [
        ("deposit limit", "none" if limit == UINT256_MAX else vault.assets_text(limit)),
        ("performance fee", _percent(snapshot.fee_bps)),
        ("idle floor", f"{_percent(rails.min_idle_bps)} of total assets"),
        ("max turnover per rebalance", _percent(rails.max_turnover_bps)),
        ("max loss per rebalance", _percent(rails.max_loss_bps)),
        ("min time between rebalances", duration(rails.min_rebalance_interval)),
        ("timelock on loosening", duration(snapshot.timelock)),
        ("daily loss budget left", f"{_percent(snapshot.loss_budget_left_bps)} of {_percent(snapshot.daily_loss_bps)}"),
        ("daily turnover budget left",
         f"{_percent(snapshot.turnover_budget_left_bps)} of {_percent(snapshot.daily_turnover_bps)}"),
    ]


def _percent(bps: float) -> str:
    return f"{bps / 100:.4g} %"


def duration(seconds: int) -> str:
    """3600 -> '1 h', 90061 -> '1 d 1 h 1 min 1 s'; 0 -> 'none'."""
    if seconds == 0:
        return "none"
    parts = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size} {unit}")
            seconds %= size
    return " ".join(parts)


def utc_time(timestamp: int) -> str:
    return f"{datetime.fromtimestamp(timestamp, UTC):%Y-%m-%d %H:%M:%S} UTC"


@overload
def percent_text(fraction: float) -> str: ...
@overload
def percent_text(fraction: float | None) -> str | None: ...
def percent_text(fraction: float | None) -> str | None:
    return None if fraction is None else f"{fraction * 100:.2f} %"

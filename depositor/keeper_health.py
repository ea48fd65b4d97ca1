"""What the screens say about the keeper: its `/health` endpoint and/or its journal database, when configured,
and its last decision: per market the forecast it decided on next to its target, and why (`strategy.explain`).

The page is public and these URLs may carry credentials (postgresql://user:password@host/db), so the page
never shows the journal's URL or its error, only JOURNAL_UNAVAILABLE; the server's log gets both, redacted.
"""

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import requests
from web3 import Web3
from web3.exceptions import Web3Exception

from chain.vault_reader import VaultReader
from depositor.dashboard import percent_text
from journal.db import Cycle, DatabaseError, Decision, JournalMissing, KeeperDB
from journal.predictions import forecasts_by_market
from strategy.allocator import MarketForecast
from strategy.config import StrategyConfig
from strategy.costs import allocator_config
from strategy.explain import AllocationWhy, explain
from strategy.safe_json import loads
from strategy.trailing_best import decided_by
from vaultbot.redact import redact

log = logging.getLogger(__name__)
Shown = TypeVar("Shown")  # how a screen writes an amount: text, or the page's {text, exact}

HEALTH_TIMEOUT_S = 2.0
CYCLES_SHOWN = 5
JOURNAL_UNAVAILABLE = "keeper journal unavailable"
# What every screen shows of the keeper's last decision next to each market (`KeeperDecision.cells`): key, title.
DECISION_COLUMNS = {"forecast_apy": "forecast APY", "p_event": "p(event)", "target": "target",
                    "gain": "expected gain", "limit": "limit"}


@dataclass(frozen=True)
class KeeperSources:
    """Where to look; no URL means the page shows 'no keeper data'."""

    health_url: str | None = None  # e.g. http://127.0.0.1:9464/health
    database_url: str | None = None  # the keeper's journal, e.g. sqlite:///.vaultbot/keeper.sqlite
    strategy: StrategyConfig | None = None  # the keeper's [strategy], to explain its decisions (None: unknown)
    decisions_dir: Path | None = None  # its decision bundles, or a copy, to verify its decisions (None: unknown)


def keeper_status(sources: KeeperSources, now: datetime | None = None) -> dict[str, Any]:
    """{summary, healthy (bool or None when unknown), cycles: [{started, status, reason}]} for the page."""
    now = now or datetime.now(UTC)
    notes: list[str] = []
    healthy: bool | None = None
    if sources.health_url:
        healthy, note = _from_health(sources.health_url, now)
        notes.append(note)
    cycles: list[dict[str, str | None]] = []
    if sources.database_url:
        cycles, note = _from_database(sources.database_url, now)
        notes.append(note)
    return {"summary": "; ".join(notes) or "no keeper data", "healthy": healthy, "cycles": cycles}


def _from_health(url: str, now: datetime) -> tuple[bool | None, str]:
    try:
        reply = requests.get(url, timeout=HEALTH_TIMEOUT_S)
    except requests.RequestException as error:
        return False, f"keeper health endpoint {redact(url)} does not answer ({type(error).__name__})"
    try:
        details = loads(reply.content)
    except ValueError:  # not JSON, or nested past any real answer
        return None, f"keeper health endpoint {redact(url)} answered HTTP {reply.status_code} without JSON"
    if not isinstance(details, dict):
        return None, f"keeper health endpoint {redact(url)} answered HTTP {reply.status_code} with unexpected JSON"
    healthy = reply.status_code == 200
    last = details.get("last_success")
    since = f"last successful cycle {_ago(datetime.fromtimestamp(last, UTC), now)}" if isinstance(
        last, (int, float)) else "no successful cycle yet"
    status = details.get("last_cycle_status")
    reason = details.get("last_reason")
    text = f"keeper {'healthy' if healthy else 'UNHEALTHY'}: {since}"
    if status:
        text += f"; last cycle {status}" + (f" ({reason})" if reason else "")
    return healthy, text


def _from_database(url: str, now: datetime) -> tuple[list[dict[str, str | None]], str]:
    try:
        database = KeeperDB(url, create=False)
        try:
            cycles = database.recent_cycles(CYCLES_SHOWN)
        finally:
            database.close()
    except JournalMissing:
        return [], "the keeper has not run yet: no journal"
    # a malformed URL, no driver, a database down, a damaged row: KeeperDB says each as a DatabaseError
    except DatabaseError as error:
        log.warning("cannot read the keeper journal %s: %s", redact(url), redact(str(error)))
        return [], JOURNAL_UNAVAILABLE
    rows = [{"started": f"{cycle.started:%Y-%m-%d %H:%M:%S} UTC", "status": str(cycle.status), "reason": cycle.reason}
            for cycle in cycles]
    if not cycles:
        return rows, "the keeper database has no cycles yet"
    return rows, f"last keeper cycle {_ago(cycles[0].started, now)}: {cycles[0].status}"


def _ago(then: datetime, now: datetime) -> str:
    seconds = max(0, int((now - then).total_seconds()))
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


@dataclass(frozen=True)
class KeeperDecision:
    """The keeper's last decision as the screens show it. Markets are keyed by checksum address."""

    cycle_id: int
    decision_hash: str
    decided_by: str
    allocation_status: str
    expected_gain: float  # journaled: over the horizon, in asset units, net of gas and slippage
    forecasts: dict[str, MarketForecast]  # what the keeper decided on
    targets: dict[str, int]
    why: AllocationWhy | None
    unexplained: str | None = None  # why `why` is None

    def lines(self, assets: Callable[[int], str], names: Mapping[str, str]) -> list[str]:
        """The decision and why, for people: amounts written by `assets`, markets by `names` (else address)."""
        horizon = "" if self.why is None else f" over {self.why.horizon_days:g} days"
        lines = [f"the last decision (cycle {self.cycle_id}) was made by {self.decided_by}: {self.allocation_status}, "
                 f"expected gain {assets(round(self.expected_gain))}{horizon} net of gas and slippage (decision "
                 f"{self.decision_hash})"]
        if self.why is None:
            return [*lines, f"why not shown: {self.unexplained}"]
        lines.append(f"limits that bound it: {self.why.binding_text()}")
        lines += [f"when it decided, {breach.text(assets, lambda market: names.get(market, market))}"
                  for breach in self.why.breaches]
        return lines

    def cells(self, market: str, assets: Callable[[int], Shown]) -> dict[str, str | Shown]:
        """Per market: the forecast and its event probability, the target and the market's part of the expected
        gain (written by `assets`), and the limit it met; '' where not known."""
        forecast, explained = self.forecasts.get(market), None if self.why is None else self.why.markets.get(market)
        gain = None if explained is None else explained.gain
        return {
            "forecast_apy": "" if forecast is None else percent_text(forecast.apy_pct / 100),
            "p_event": "" if forecast is None else percent_text(forecast.p_event),
            "target": assets(self.targets[market]) if market in self.targets else "",
            "gain": "" if gain is None else assets(round(gain)),
            "limit": "" if explained is None else explained.limit,
        }


def decision_block(db: KeeperDB, decision: Decision) -> int | None:
    """The block at which the keeper read the vault for `decision` (None: the cycle did not get that far)."""
    with db.session() as session:
        return session.get_one(Cycle, decision.cycle_id).block_number


def decision_of(decision: Decision, block: int | None, reader: VaultReader, strategy: StrategyConfig | None,
                asset_decimals: int) -> KeeperDecision:
    """`decision` with why it is what it is, from the vault as the keeper saw it: its state and guardrails at
    `block` (`decision_block`; a node that keeps no state that old leaves the why out)."""
    forecasts: dict[str, MarketForecast] = {Web3.to_checksum_address(market): forecast
                                            for market, forecast in forecasts_by_market(decision.predictions).items()}
    targets: dict[str, int] = {Web3.to_checksum_address(market): int(target)
                               for market, target in decision.targets.items()}
    shown = KeeperDecision(decision.cycle_id, decision.decision_hash, decided_by(decision.model_hash),
                           decision.allocation_status, decision.expected_gain, forecasts, targets, None)
    if strategy is None:
        return replace(shown, unexplained="the keeper's settings are not known here (its [strategy] table)")
    if block is None:
        return replace(shown, unexplained="the journal has no block for this decision")
    try:
        state, guardrails = reader.state(block), reader.guardrails(block)
    except Web3Exception as error:
        return replace(shown, unexplained=f"the node cannot tell the vault's state at block {block} (it may keep "
                                          f"no state that old): {type(error).__name__}")
    listed = {market: forecast for market, forecast in forecasts.items() if market in guardrails.markets}
    config = allocator_config(strategy.allocator, strategy.costs, 0, asset_decimals)  # gas: from the journaled gain
    return replace(shown, why=explain(state, guardrails, listed, targets, config, decision.expected_gain))


def last_decision(sources: KeeperSources, reader: VaultReader, asset_decimals: int) -> KeeperDecision | None:
    """The journal's last decision with why (None without a journal, a decision, or when it cannot be read)."""
    if not sources.database_url:
        return None
    try:
        database = KeeperDB(sources.database_url, create=False)
        try:
            decision = database.last_decision()
            return None if decision is None else decision_of(decision, decision_block(database, decision), reader,
                                                             sources.strategy, asset_decimals)
        finally:
            database.close()
    except JournalMissing:
        return None
    except DatabaseError as error:  # as `_from_database`
        log.warning("cannot read the keeper journal %s: %s", redact(sources.database_url), redact(str(error)))
        return None

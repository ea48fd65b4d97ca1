"""What the page says about the keeper: its `/health` endpoint and/or its journal database, when configured.

The page is public and these URLs may carry credentials (postgresql://user:password@host/db), so the page
never shows the journal's URL or its error, only JOURNAL_UNAVAILABLE; the server's log gets both, redacted.
"""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
from sqlalchemy.exc import SQLAlchemyError

from journal.db import DatabaseError, KeeperDB
from vaultbot.redact import redact

log = logging.getLogger(__name__)

HEALTH_TIMEOUT_S = 2.0
CYCLES_SHOWN = 5
JOURNAL_UNAVAILABLE = "keeper journal unavailable"


@dataclass(frozen=True)
class KeeperSources:
    """Where to look; both None means the page shows 'no keeper data'."""

    health_url: str | None = None  # e.g. http://127.0.0.1:9464/health
    database_url: str | None = None  # the keeper's journal, e.g. sqlite:///.vaultbot/keeper.sqlite


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
        details = reply.json()
    except ValueError:  # requests' JSONDecodeError
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
        database = KeeperDB(url)
        try:
            cycles = database.recent_cycles(CYCLES_SHOWN)
        finally:
            database.close()
    # OSError: the database's directory cannot be made; SQLAlchemyError: a malformed URL; ImportError: no driver
    except (DatabaseError, SQLAlchemyError, OSError, ImportError) as error:
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


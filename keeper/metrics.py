"""Prometheus metrics of the keeper and its small HTTP server: `/metrics`, `/health`, and the decision bundles
(`/decisions/<hash>`, `/models/<hash>[/<file>]`, read-only, served by `decisions.publish` from
`service.decisions_dir`) so that anyone can fetch and verify what the keeper decided.

Metrics (own registry, so several keepers can live in one process, e.g. in tests):

==============================================  =======  =====================================================
name                                            type     meaning
==============================================  =======  =====================================================
vaultbot_keeper_cycles_total{status}            counter  finished cycles by outcome (rebalanced, held, ...)
vaultbot_keeper_failures_total{reason}          counter  cycles that failed, were refused or reverted, by kind
vaultbot_keeper_last_success_timestamp_seconds  gauge    end of the last cycle that worked (any normal outcome)
vaultbot_keeper_last_cycle_timestamp_seconds    gauge    end of the last cycle, whatever its outcome
vaultbot_keeper_cycle_duration_seconds          gauge    how long the last cycle took
vaultbot_keeper_gas_spent_wei_total             counter  gas fees paid by mined keeper transactions
vaultbot_keeper_predicted_apy_percent           gauge    forecast APY of the last decision's targets (the
                                                         model's, before the fee, idle at 0); not the page's
                                                         current APY (today's rates on chain, after the fee)
vaultbot_keeper_realised_apy_percent            gauge    annualised share-price growth between the last cycles
vaultbot_keeper_pending_transactions            gauge    signed or sent transactions without a receipt
vaultbot_keeper_model_fallback                  gauge    1 while the trailing-best rule decides, not the model
vaultbot_keeper_model_age_days                  gauge    days from the champion's training day to the decision
vaultbot_keeper_model_trainings_total{verdict}  counter  challengers trained, by verdict (promoted, rejected)
==============================================  =======  =====================================================

`/health` answers 200 with JSON while the keeper works: a cycle succeeded within `max_age` seconds, or the
service started less than `max_age` ago. Otherwise 503 with the same JSON, so that a supervisor restarts it.
"""

import json
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, make_wsgi_app

from decisions.publish import PUBLISHED, publish_app
from vaultbot.wsgi import StartResponse, WsgiApp, WsgiServer, serve_wsgi

log = logging.getLogger(__name__)


class KeeperMetrics:
    """The keeper's metrics in their own registry, plus what `/health` needs to judge liveness."""

    def __init__(self, max_age_s: float, registry: CollectorRegistry | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.registry = registry or CollectorRegistry()
        self.max_age_s = max_age_s
        self._clock = clock
        self.started_at = clock()
        self.last_status: str | None = None
        self.last_reason: str | None = None
        self.last_success_at: float | None = None
        self.decided_by: str | None = None  # what made the last decision: the model (by hash) or the fallback rule
        r = self.registry
        self.cycles = Counter("vaultbot_keeper_cycles", "Finished keeper cycles by outcome.", ["status"], registry=r)
        self.failures = Counter("vaultbot_keeper_failures", "Failed, refused or reverted cycles by kind of reason.",
                                ["reason"], registry=r)
        self.last_success = Gauge("vaultbot_keeper_last_success_timestamp_seconds",
                                  "Unix time the last successful cycle ended.", registry=r)
        self.last_cycle = Gauge("vaultbot_keeper_last_cycle_timestamp_seconds",
                                "Unix time the last cycle ended.", registry=r)
        self.cycle_duration = Gauge("vaultbot_keeper_cycle_duration_seconds", "Duration of the last cycle.", registry=r)
        self.gas_spent = Counter("vaultbot_keeper_gas_spent_wei", "Gas fees paid by mined keeper transactions (wei).",
                                 registry=r)
        self.predicted_apy = Gauge("vaultbot_keeper_predicted_apy_percent",
                                   "Forecast APY of the last decision's target allocation (the model's, before the "
                                   "performance fee, idle at 0); not the markets' current rates on chain.", registry=r)
        self.realised_apy = Gauge("vaultbot_keeper_realised_apy_percent",
                                  "Annualised growth of the vault's share price between the last two cycles.",
                                  registry=r)
        self.pending_transactions = Gauge("vaultbot_keeper_pending_transactions",
                                          "Keeper transactions signed or sent but without a receipt.", registry=r)
        self.model_fallback = Gauge("vaultbot_keeper_model_fallback",
                                    "1 while the trailing-best rule decides instead of the model.", registry=r)
        self.model_age = Gauge("vaultbot_keeper_model_age_days",
                               "Days from the champion model's training day to the last decision.", registry=r)
        self.model_trainings = Counter("vaultbot_keeper_model_trainings", "Challenger models trained, by verdict.",
                                       ["verdict"], registry=r)

    def cycle_finished(self, status: str, *, success: bool, failure_kind: str | None, reason: str | None,
                       duration_s: float) -> None:
        now = self._clock()
        self.cycles.labels(status=status).inc()
        if failure_kind is not None:
            self.failures.labels(reason=failure_kind).inc()
        self.last_cycle.set(now)
        self.cycle_duration.set(duration_s)
        self.last_status, self.last_reason = status, reason
        if success:
            self.last_success_at = now
            self.last_success.set(now)

    def health(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, details) as `/health` reports them."""
        now = self._clock()
        reference = self.last_success_at if self.last_success_at is not None else self.started_at
        healthy = now - reference <= self.max_age_s
        return healthy, {
            "status": "ok" if healthy else "unhealthy",
            "last_success": self.last_success_at,
            "last_cycle_status": self.last_status,
            "last_reason": self.last_reason,
            "decided_by": self.decided_by,
            "max_age_s": self.max_age_s,
        }


def metrics_app(metrics: KeeperMetrics, decisions_dir: Path | None = None) -> WsgiApp:
    """WSGI app: `/metrics` (Prometheus text format), `/health` (JSON), the bundles of `decisions_dir` under
    `/decisions/` and `/models/` (`decisions.publish`; none without a directory), 404 otherwise."""
    prometheus = make_wsgi_app(metrics.registry)
    bundles = None if decisions_dir is None else publish_app(decisions_dir)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return prometheus(environ, start_response)
        if path == "/health":
            healthy, details = metrics.health()
            body = json.dumps(details).encode()
            start_response("200 OK" if healthy else "503 Service Unavailable",
                           [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        if bundles is not None and path.startswith(PUBLISHED):
            return bundles(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: try /metrics, /health, /decisions/<decision hash> or /models/<model hash>\n"
                if bundles is not None else b"not found: try /metrics or /health\n"]

    return app


def start_metrics_server(metrics: KeeperMetrics, host: str, port: int,
                         decisions_dir: Path | None = None) -> WsgiServer:
    """Serves `metrics_app` on host:port in a daemon thread."""
    server = serve_wsgi(metrics_app(metrics, decisions_dir), host, port, name="keeper-metrics")
    log.info("metrics on %s/metrics, health on %s/health%s", server.url, server.url,
             "" if decisions_dir is None else f", decision bundles on {server.url}/decisions/<hash>")
    return server

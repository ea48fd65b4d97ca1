"""The scheduler loop with signals, and the metrics/health HTTP endpoint, on real sockets."""

import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from keeper.metrics import KeeperMetrics, start_metrics_server
from keeper.service import Schedule, run_service


class CountingCycle:
    """A cycle that records when it ran and can be made slow or failing."""

    def __init__(self, seconds: float = 0.0, fail: bool = False) -> None:
        self.seconds, self.fail = seconds, fail
        self.started: list[float] = []
        self.finished: list[float] = []

    def __call__(self) -> None:
        self.started.append(time.monotonic())
        time.sleep(self.seconds)
        self.finished.append(time.monotonic())
        if self.fail:
            raise RuntimeError("cycle broke")


def signal_when(condition, signum: int = signal.SIGTERM, repeat: int = 1) -> threading.Thread:
    """Sends `signum` to this process (handled by the main thread) once `condition()` holds."""

    def watch() -> None:
        deadline = time.monotonic() + 30
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.01)
        for _ in range(repeat):
            os.kill(os.getpid(), signum)
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_lets_the_running_cycle_finish_then_returns(signum: int) -> None:
    cycle = CountingCycle(seconds=0.5)
    watcher = signal_when(lambda: len(cycle.started) == 1, signum, repeat=2)  # a second signal is only logged
    handler_before = signal.getsignal(signum)
    run_service(cycle, Schedule(interval_s=3600, misfire_grace_s=60))
    watcher.join()
    assert len(cycle.started) == len(cycle.finished) == 1
    assert signal.getsignal(signum) is handler_before  # handlers restored


def test_cycles_repeat_and_a_failing_cycle_does_not_stop_the_schedule() -> None:
    cycle = CountingCycle(fail=True)
    watcher = signal_when(lambda: len(cycle.finished) >= 3)
    run_service(cycle, Schedule(interval_s=0.2, misfire_grace_s=1))
    watcher.join()
    assert len(cycle.finished) >= 3


def test_a_slow_cycle_never_overlaps_the_next_one() -> None:
    cycle = CountingCycle(seconds=0.35)
    watcher = signal_when(lambda: len(cycle.finished) >= 3)
    run_service(cycle, Schedule(interval_s=0.1, misfire_grace_s=1))
    watcher.join()
    for next_start, previous_end in zip(cycle.started[1:], cycle.finished, strict=False):
        assert next_start >= previous_end


def test_the_service_refuses_to_run_outside_the_main_thread() -> None:
    errors: list[Exception] = []

    def attempt() -> None:
        try:
            run_service(CountingCycle(), Schedule(1, 1))
        except RuntimeError as error:
            errors.append(error)

    thread = threading.Thread(target=attempt)
    thread.start()
    thread.join()
    assert "main thread" in str(errors[0])


# -- metrics and health --------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def served() -> Iterator[tuple[KeeperMetrics, Clock, str]]:
    clock = Clock()
    metrics = KeeperMetrics(max_age_s=100, clock=clock)
    server = start_metrics_server(metrics, "127.0.0.1", 0)
    yield metrics, clock, server.url
    server.stop()


def test_health_is_ok_after_start_and_after_success_and_503_when_stale(served) -> None:
    metrics, clock, url = served
    assert requests.get(f"{url}/health", timeout=5).json()["status"] == "ok"  # just started
    clock.now += 101
    stale = requests.get(f"{url}/health", timeout=5)
    assert stale.status_code == 503 and stale.json()["last_success"] is None
    metrics.cycle_finished("held", success=True, failure_kind=None, reason="no change pays", duration_s=1.5)
    body = requests.get(f"{url}/health", timeout=5).json()
    assert body == {"status": "ok", "last_success": clock.now, "last_cycle_status": "held",
                    "last_reason": "no change pays", "decided_by": None, "max_age_s": 100}
    metrics.decided_by = "the trailing-best rule"  # as keeper.models sets it when a decision is made
    assert requests.get(f"{url}/health", timeout=5).json()["decided_by"] == "the trailing-best rule"
    clock.now += 50
    metrics.cycle_finished("refused", success=False, failure_kind="data_gate", reason="stale", duration_s=0.2)
    assert requests.get(f"{url}/health", timeout=5).status_code == 200  # the last success is 50 s old
    clock.now += 51
    assert requests.get(f"{url}/health", timeout=5).status_code == 503


def test_metrics_endpoint_exposes_the_keeper_series(served) -> None:
    metrics, clock, url = served
    metrics.cycle_finished("rebalanced", success=True, failure_kind=None, reason=None, duration_s=2.0)
    metrics.cycle_finished("reverted", success=False, failure_kind="revert", reason="vault: cap exceeded",
                           duration_s=1.0)
    metrics.gas_spent.inc(21_000 * 10**9)
    metrics.predicted_apy.set(5.25)
    text = requests.get(f"{url}/metrics", timeout=5).text
    assert 'vaultbot_keeper_cycles_total{status="rebalanced"} 1.0' in text
    assert 'vaultbot_keeper_failures_total{reason="revert"} 1.0' in text
    assert f"vaultbot_keeper_last_success_timestamp_seconds {clock.now}" in text
    assert "vaultbot_keeper_gas_spent_wei_total 2.1e+13" in text
    assert "vaultbot_keeper_predicted_apy_percent 5.25" in text
    assert requests.get(f"{url}/other", timeout=5).status_code == 404

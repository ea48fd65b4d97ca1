"""The long-running keeper: one cycle every `service.interval_s` on APScheduler 3's BlockingScheduler.

At most one cycle runs at a time (`max_instances=1`); cycles missed while one ran long are merged into
one (`coalesce=True`), and a cycle that could not start within `misfire_grace_s` of its time is skipped.
The first cycle starts at once. SIGTERM or SIGINT stops the schedule, lets a running cycle finish (it may
be waiting for a receipt, and the journal must record the outcome) and returns; a second signal while
stopping is only logged. The metrics server runs for as long as the service.
"""

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
JOB_ID = "keeper-cycle"


@dataclass(frozen=True)
class Schedule:
    interval_s: float
    misfire_grace_s: float


def run_service(cycle: Callable[[], object], schedule: Schedule) -> None:
    """Calls `cycle()` on the schedule until SIGTERM/SIGINT; must run in the main thread (signals).

    `cycle` should handle its own errors; one that escapes is logged and the schedule goes on.
    """
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("run_service must run in the main thread: it installs signal handlers")
    executor = ThreadPoolExecutor(max_workers=1)
    scheduler = BlockingScheduler(
        timezone=UTC,
        executors={"default": executor},
        job_defaults={
            "max_instances": 1, "coalesce": True, "misfire_grace_time": max(1, round(schedule.misfire_grace_s)),
        },
    )
    scheduler.add_job(_logged(cycle), IntervalTrigger(seconds=schedule.interval_s, timezone=UTC), id=JOB_ID,
                      name="keeper cycle", next_run_time=datetime.now(UTC))

    def stop(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        try:
            scheduler.shutdown(wait=False)  # never block in a signal handler; the cycle is awaited below
        except SchedulerNotRunningError:
            log.warning("%s received while stopping; still waiting for the running cycle", name)
            return
        log.info("%s received: no new cycles; letting a running cycle finish", name)

    previous = {sig: signal.signal(sig, stop) for sig in STOP_SIGNALS}
    try:
        scheduler.start()  # blocks until a signal shuts it down
        executor.shutdown(wait=True)
        log.info("keeper service stopped")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _logged(cycle: Callable[[], object]) -> Callable[[], None]:
    def job() -> None:
        try:
            cycle()
        except Exception:  # the schedule must survive any one cycle
            log.exception("keeper cycle raised; the next one runs on schedule")

    return job

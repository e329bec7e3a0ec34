"""The cycle's loops for `metric-stream serve`: a tick thread that fires due schedules
and recovers stalled jobs, and one worker thread per stage queue.

They run in the serving process (uvicorn's supervisor when there are several HTTP
workers), beside the HTTP server and never in its way. `cycle_tick` is one tick on
its own: the Lambda's schedule calls it too.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from metric_stream.bootstrap import Services
from metric_stream.errors import MetricStreamError
from metric_stream.logs import job_context
from metric_stream.models.schedule import Schedule
from metric_stream.services import cycle, schedules
from metric_stream.services.runner import log_outcome

log = logging.getLogger("metric_stream.cycle")

if TYPE_CHECKING:  # the tick (also the Lambda's) never loads the HTTP client
    import httpx

TriggersFactory = Callable[["httpx.Client"], cycle.Triggers]


@dataclass
class TickReport:
    fired: list[schedules.Fired] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)
    """Operator alerts this tick sent (dead letters, storage)."""

    def to_wire(self) -> dict[str, object]:
        return {
            "fired": [{"scheduleId": f.schedule_id, "due": f.due.isoformat(),
                       "traceId": f.trace_id, "error": f.error} for f in self.fired],
            "recovered": self.recovered,
            "alerts": self.alerts,
        }


def cycle_tick(services: Services) -> TickReport:
    """One tick: every schedule that came due creates its job and queues its fan-out,
    then the jobs that are due are settled and those whose message was lost are handed
    on. A tick makes no HTTP call: the fan-out queue's worker triggers the KPIs."""

    def fire(schedule: Schedule, due: datetime) -> str:
        job = cycle.schedule_job(services, kpis=schedule.kpi_ids, schedule_id=schedule.id)
        with job_context(job.trace_id):
            log.info("schedule %s (due %s) created job %s with %d KPI(s); fan-out queued",
                     schedule.id, due.isoformat(), job.trace_id, len(job.kpi_ids))
        return job.trace_id

    report = TickReport(fired=schedules.tick(services, fire))
    for fired in report.fired:
        if fired.error:
            log.warning("schedule %s (due %s) could not start a job: %s", fired.schedule_id,
                        fired.due.isoformat(), fired.error)
    report.recovered = cycle.recover(services)
    for trace_id in report.recovered:
        with job_context(trace_id):
            log.info("job %s recovered (settled, or handed on to its stage again)", trace_id)
    from metric_stream.services.alerts import check_operations

    try:
        report.alerts = check_operations(services)
    except Exception as exc:  # an alert that cannot go out must not stop the tick
        log.warning("operator alerts could not be checked: %s", _reason(exc))
    return report


def _reason(exc: Exception) -> str:
    return getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"


class CycleLoops:
    """The tick thread and the stage worker threads. `start` them before serving and
    `stop` them after: a stage worker finishes the message in hand, a tick its fan-out.
    An exception is logged with its reason; the loop goes on."""

    def __init__(self, services: Services, *, tick_seconds: float = 60.0,
                 workers: cycle.StageWorkers | None = None, poll_seconds: float = 1.0,
                 stage_queues: tuple[str, ...] = (cycle.FANOUT, *cycle.STAGES),
                 triggers: TriggersFactory = cycle.Triggers) -> None:
        self.services = services
        self.tick_seconds = tick_seconds
        if workers is None:
            from metric_stream.services.stages import default_workers

            workers = default_workers()
        self.workers = workers
        self.poll_seconds = poll_seconds
        # a stage's claim lasts as long as its message stays hidden: a worker killed in a
        # stage holds the job no longer than the queue holds its message
        self.lease_s = max(1, services.settings.queue_visibility_timeout)
        self.stage_queues = stage_queues
        self._make_triggers = triggers
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._http: httpx.Client | None = None

    def start(self) -> None:
        if self._threads:
            raise RuntimeError("the cycle loops are already running")
        self._stopping.clear()
        self._threads = [threading.Thread(target=self._tick_loop, name="cycle-tick",
                                          daemon=True)]
        self._threads += [threading.Thread(target=self._stage_loop, args=(queue,),
                                           name=f"cycle-{queue}", daemon=True)
                          for queue in self.stage_queues]
        for thread in self._threads:
            thread.start()
        log.info("cycle running: a tick every %g s, stage workers for %s", self.tick_seconds,
                 ", ".join(self.stage_queues) or "no queue")

    def stop(self, timeout: float = 60.0) -> None:
        """Stop every loop, waiting up to `timeout` seconds for the work in hand."""
        self._stopping.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                log.warning("%s did not finish within %g s; abandoning it", thread.name,
                            timeout)
        self._threads = []
        if self._http is not None:
            self._http.close()
            self._http = None

    def __enter__(self) -> CycleLoops:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def _triggers(self) -> cycle.Triggers:
        if self._http is None:  # made at the first fire, kept until stop
            import httpx

            self._http = httpx.Client(timeout=10)
        return self._make_triggers(self._http)

    def tick_once(self) -> TickReport | None:
        """One tick; None (and the reason logged) if it failed."""
        try:
            return cycle_tick(self.services)
        except MetricStreamError as exc:  # the store is unreachable, ...: known, no traceback
            log.error("tick failed: %s; next tick in %g s", _reason(exc), self.tick_seconds)
        except Exception as exc:
            log.exception("tick failed: %s; next tick in %g s", _reason(exc), self.tick_seconds)
        return None

    def _tick_loop(self) -> None:
        next_at = time.monotonic()
        while not self._stopping.is_set():
            self.tick_once()
            next_at += self.tick_seconds
            # a tick that overran its interval is not followed by a burst of catch-ups
            next_at = max(next_at, time.monotonic())
            if self._stopping.wait(next_at - time.monotonic()):
                return

    def _stage_loop(self, queue: str) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                # one message at a time: on shutdown, only the one in hand is finished
                triggers = self._triggers() if queue == cycle.FANOUT else None
                for outcome in cycle.consume(self.services, queue, self.workers,
                                             max_messages=1, wait_seconds=self.poll_seconds,
                                             lease_s=self.lease_s, triggers=triggers):
                    log_outcome(outcome)
                failures = 0
            except Exception as exc:  # the queue itself failed; handle_message caught the rest
                failures += 1
                delay = min(30.0, 2.0 ** failures)
                log.error("the %s worker could not read its queue: %s; retrying in %g s",
                          queue, _reason(exc), delay)
                self._stopping.wait(delay)


__all__ = ["CycleLoops", "TickReport", "cycle_tick"]

"""One whole cycle, now, in this process (`metric-stream run`): fan-out, wait for the
fan-in, then work the stage queues until the job is done. Another process (`serve`)
may work the same job at the same time: the stage claims keep it to one worker."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from metric_stream.bootstrap import Services
from metric_stream.logs import job_context
from metric_stream.models.job import Job, JobStatus, KpiStatus
from metric_stream.services import cycle

Progress = Callable[[Job, str], None]
log = logging.getLogger("metric_stream.cycle")

DEMO_KPIS = 12
DEMO_HISTORY_DAYS = 365


def prepare_demo(services: Services) -> int:
    """A demo registry with a year of history, the first time (a no-op after)."""
    from metric_stream.collectors.demo import demo_registry, seed_history

    if services.registry.kpis.ids():
        return 0
    entries = demo_registry(DEMO_KPIS)
    for entry in entries:
        services.registry.kpis.create(entry.stamped(services.clock.now()))
    yesterday = (services.clock.now() - timedelta(days=1)).date()
    return seed_history(services, entries, DEMO_HISTORY_DAYS, yesterday)


def prepare_defaults(services: Services) -> list[str]:
    """The default registry on a first run with an empty registry."""
    from metric_stream.collectors.defaults import seed_defaults

    return [] if services.registry.kpis.ids() else seed_defaults(services)


@dataclass
class RunSummary:
    job: Job
    triggers: list[cycle.TriggerOutcome]
    seconds: float
    demo: bool
    report: dict[str, Any] | None = None
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    timed_out_waiting: bool = False
    analysis: dict[str, Any] | None = None
    llm: dict[str, Any] | None = None

    @property
    def exit_code(self) -> int:
        """0 complete, 3 partial, 4 failed or not finished."""
        return {JobStatus.COMPLETE: 0, JobStatus.PARTIAL: 3}.get(self.job.status, 4)

    def to_wire(self) -> dict[str, Any]:
        job = self.job
        failed = {k: (job.state_of(k).error or {}).get("message", "")
                  for k in job.kpi_ids
                  if job.state_of(k).status in (KpiStatus.FAILED, KpiStatus.TIMED_OUT)}
        return {
            "traceId": job.trace_id, "status": job.status.value, "demo": self.demo,
            "seconds": round(self.seconds, 3),
            "kpis": {"total": len(job.kpi_ids),
                     "collected": len(job.with_status(KpiStatus.COLLECTED)),
                     "failed": failed},
            "stages": {name: {"startedAt": t.started_at.isoformat(),
                              "finishedAt": t.finished_at.isoformat() if t.finished_at else None}
                       for name, t in job.stages.items()},
            "analysis": self.analysis,
            "llm": self.llm,
            "report": self.report,
            "deliveries": self.deliveries,
            "stillRunning": self.timed_out_waiting,
        }


def run_cycle(services: Services, triggers: cycle.Triggers, *,
              kpis: Sequence[str] | None = None, demo: bool = False,
              workers: cycle.StageWorkers | None = None, progress: Progress | None = None,
              wait: timedelta | None = None, poll_s: float = 0.2) -> RunSummary:
    started = time.monotonic()
    if workers is None:
        from metric_stream.services.stages import default_workers

        workers = default_workers()
    notify = progress or (lambda job, note: None)
    job, outcomes = cycle.start_job(services, triggers, kpis=kpis, demo=demo)
    with job_context(job.trace_id):
        log_started(job, outcomes)
        final = _work_until_done(services, job, workers, notify, wait, poll_s)
    document = services.packages.document(job.trace_id)
    consolidated = services.packages.consolidated(job.trace_id)
    return RunSummary(
        job=final, triggers=outcomes, seconds=time.monotonic() - started, demo=demo,
        report=None if document is None else {
            "blobKey": document.blob_key, "url": document.url,
            "contentType": document.content_type, "bytes": document.size_bytes,
            "pages": document.pages},
        deliveries=[d.model_dump(mode="json", by_alias=True, exclude_none=True)
                    for d in services.deliveries.list(job.trace_id)],
        timed_out_waiting=not final.status.terminal,
        analysis=None if consolidated is None else consolidated.analytics,
        llm=None if consolidated is None else (consolidated.analysis or {}).get("llm"),
    )


def _work_until_done(services: Services, job: Job, workers: cycle.StageWorkers,
                     notify: Progress, wait: timedelta | None, poll_s: float) -> Job:
    deadline = time.monotonic() + (wait.total_seconds() if wait else 7 * 24 * 3600)
    last_seen: tuple[str, int] | None = None
    while True:
        current = services.jobs.require(job.trace_id)
        settled = sum(1 for k in current.kpi_ids if current.state_of(k).status.settled)
        if (current.status.value, settled) != last_seen:
            last_seen = (current.status.value, settled)
            notify(current, "progress")
        if current.status.terminal or time.monotonic() > deadline:
            break
        if current.status is JobStatus.COLLECTING:
            if cycle.settle_job(services, job.trace_id):
                log.info("job %s: every KPI is in (or its timeout passed); on to analysis",
                         job.trace_id)
            else:
                time.sleep(poll_s)
            continue
        stage = next((s for s in cycle.STAGES.values() if s.status is current.status), None)
        handled = [] if stage is None else cycle.consume(services, stage.queue, workers,
                                                         wait_seconds=0)
        for outcome in handled:
            log_outcome(outcome)
        if not handled:
            time.sleep(poll_s)
    final = services.jobs.require(job.trace_id)
    if final.status.terminal:
        log.info("job %s: %s", final.trace_id, final.status.value,
                 extra={"status": final.status.value, "missing": final.missing or None})
    else:
        log.warning("job %s: still %s; stopped waiting", final.trace_id, final.status.value)
    return final


def log_started(job: Job, triggers: Sequence[cycle.TriggerOutcome]) -> None:
    failed = [t.entry_id for t in triggers if not t.ok]
    log.info("job %s created with %d KPI(s); %d source(s) triggered, %d failed%s",
             job.trace_id, len(job.kpi_ids), len(triggers) - len(failed), len(failed),
             f" ({', '.join(failed[:10])})" if failed else "")


def log_outcome(outcome: cycle.StageOutcome) -> None:
    """One line per stage message handled: INFO when it moved the job on, DEBUG when
    there was nothing to do (done already, or another worker holds the stage)."""
    moved = outcome.result in ("advanced", "completed", "triggered")
    now = (f"; job {outcome.status.value}" if outcome.status and outcome.result != "triggered"
           else "")
    log.log(logging.INFO if moved else logging.DEBUG, "job %s: %s stage %s%s",
            outcome.trace_id, outcome.stage, outcome.result, now,
            extra={"traceId": outcome.trace_id, "stage": outcome.stage,
                   "result": outcome.result})


def elapsed_since(moment: datetime, now: datetime) -> float:
    return max(0.0, (now - moment).total_seconds())

"""The daily cycle's machine: a job is planned and created, its KPIs triggered (fan-out),
settled when every KPI is in or its timeout passes (fan-in), then handed from stage
to stage through the queues (analysis → packaging → delivery).

Every step is a conditional state change on the job, so re-running a step, a second
worker or a redelivered message does nothing twice; the job's stored state says what
is left after a crash. Deciding (`plan_*`) is kept apart from doing.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from metric_stream.bootstrap import Services
from metric_stream.errors import ConditionFailed, InvalidInput
from metric_stream.logs import ContextThreadPool, traced
from metric_stream.models.base import Id, iso
from metric_stream.models.job import Job, JobStatus, KpiStatus, StageTiming, new_trace_id
from metric_stream.models.kpi import CollectorSource, KpiDefinition, N8nSource
from metric_stream.models.wire import KpiTrigger, MultiKpiTrigger
from metric_stream.ports import AllOf, AnyOf, FieldAtMost, FieldIn, Message, Op, Update
from metric_stream.services.ingest import ErrorOutcome, IngestOutcome, report_error
from metric_stream.services.outbound import checked_addresses, post_checked
from metric_stream.storage import keys

if TYPE_CHECKING:  # the fan-out's HTTP client and collectors: stage consumers never load them
    import httpx

    from metric_stream.collectors.base import Sleep

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stage:
    queue: str
    status: JobStatus
    next_queue: str | None


STAGES: dict[str, Stage] = {
    "analysis": Stage("analysis", JobStatus.ANALYSING, "packaging"),
    "packaging": Stage("packaging", JobStatus.PACKAGING, "delivery"),
    "delivery": Stage("delivery", JobStatus.DELIVERING, None),
}
NEXT_STATUS = {"analysis": JobStatus.PACKAGING, "packaging": JobStatus.DELIVERING}
FANOUT = "fanout"  # a job whose KPIs are to be triggered: a tick only creates the job
# A stage's work may write what it likes that is idempotent (blobs by key, ...) and
# returns the records that say it is done: they commit atomically with the job's move
# to the next stage, so a stage is completed once, whatever crashes in between.
StageWork = Callable[[Services, Job], "Sequence[Op] | None"]


# ---------------------------------------------------------------- fan-out
@dataclass(frozen=True)
class FanOutPlan:
    entries: tuple[KpiDefinition, ...]
    kpi_ids: tuple[str, ...]


def plan_fan_out(registry: Iterable[KpiDefinition], only: Sequence[str] | None = None
                 ) -> FanOutPlan:
    """Which registry entries a job triggers: the active ones, or those named in `only`
    (by entry id or by a KPI id they yield; a named entry runs even if inactive)."""
    entries = list(registry)
    if only:
        wanted = set(only)
        chosen = [e for e in entries if e.id in wanted or wanted.intersection(e.yields)]
        known = {e.id for e in entries} | {k for e in entries for k in e.yields}
        unknown = sorted(wanted - known)
        if unknown:
            raise InvalidInput(f"KPI id(s) {unknown} are not in the registry", field="kpis")
    else:
        chosen = [e for e in entries if e.active]
    if not chosen:
        raise InvalidInput("the registry has no active KPI to collect", field="kpis")
    return FanOutPlan(tuple(chosen), tuple(k for e in chosen for k in e.yields))


def create_job(services: Services, plan: FanOutPlan, *, now: datetime | None = None,
               schedule_id: str | None = None, demo: bool = False) -> Job:
    now = now or services.clock.now()
    lifecycle = services.config.get().lifecycle
    job = Job(trace_id=new_trace_id(now), kpi_ids=list(plan.kpi_ids), created_at=now,
              updated_at=now, timeout_at=now + timedelta(seconds=lifecycle.fan_in_timeout_s),
              schedule_id=schedule_id, demo=demo,
              stages={"collecting": StageTiming(started_at=now)})
    return services.jobs.create(job)


@dataclass
class TriggerOutcome:
    entry_id: str
    ok: bool
    detail: str = ""


@dataclass
class Triggers:
    http: httpx.Client
    sleep: Sleep = field(default=time.sleep)
    base_urls: Mapping[str, str] = field(default_factory=dict)
    max_concurrency: int = 16


def trigger_job(services: Services, job: Job, plan: FanOutPlan, triggers: Triggers
                ) -> list[TriggerOutcome]:
    """Trigger every entry of the plan, concurrently and bounded: built-in collectors run
    here and ingest their result; n8n workflows get the trigger POSTed to their webhook.
    A trigger that fails after its retries marks its KPIs failed with the reason."""
    collected = [e for e in plan.entries if isinstance(e.source, CollectorSource)]
    webhooks = [e for e in plan.entries if isinstance(e.source, N8nSource)]
    outcomes: list[TriggerOutcome] = []
    with ContextThreadPool(max_workers=max(1, min(triggers.max_concurrency,
                                                  len(webhooks) or 1))) as pool:
        posted = [pool.submit(post_trigger, services, job, e, triggers) for e in webhooks]
        from metric_stream.services.collect import collect_all

        results = collect_all(services, job.trace_id, job.created_at, collected, triggers.http,
                              triggers.max_concurrency, sleep=triggers.sleep,
                              base_urls=triggers.base_urls)
        outcomes += [TriggerOutcome(entry_id, isinstance(r, IngestOutcome),
                                    "" if isinstance(r, IngestOutcome) else r.message)
                     for entry_id, r in results.items()]
        outcomes += [f.result() for f in posted]
    return outcomes


def trigger_payload(job: Job, entry: KpiDefinition) -> dict[str, Any]:
    metadata = {"demo": True} if job.demo else None
    if entry.kpi_ids:
        return MultiKpiTrigger(trace_id=job.trace_id, kpi_ids=entry.kpi_ids,
                               timestamp=job.created_at, kpi_type=entry.kpi_type,
                               metadata=metadata).to_wire()
    return KpiTrigger(trace_id=job.trace_id, kpi_id=entry.id, timestamp=job.created_at,
                      kpi_type=entry.kpi_type, metadata=metadata).to_wire()


def post_trigger(services: Services, job: Job, entry: KpiDefinition, triggers: Triggers
                 ) -> TriggerOutcome:
    source = entry.source
    assert isinstance(source, N8nSource)
    policy = services.config.get().retry.collection
    last = ""
    try:  # the trigger goes to the addresses checked here, not to a later resolution
        addresses = checked_addresses(source.webhook_url, services.settings,
                                      field="webhookUrl")
    except Exception as exc:  # refused address, unresolvable host
        last = getattr(exc, "message", str(exc))
        return _trigger_failed(services, job, entry, last, attempts=0)
    import httpx

    body = trigger_payload(job, entry)
    for attempt in range(policy.retries + 1):
        if attempt:
            triggers.sleep(policy.delay(attempt))
        try:
            response = post_checked(triggers.http, source.webhook_url, addresses, json=body,
                                    timeout=10)
        except httpx.HTTPError as exc:
            last = f"{type(exc).__name__}: {exc}"
            continue
        if response.is_success:
            return TriggerOutcome(entry.id, True, f"HTTP {response.status_code}")
        last = f"HTTP {response.status_code}: {response.text[:200]}"
        if response.status_code < 500 and response.status_code not in (408, 429):
            break  # the webhook refused the trigger itself; retrying will not help
    return _trigger_failed(services, job, entry, last, attempts=policy.retries + 1)


def _trigger_failed(services: Services, job: Job, entry: KpiDefinition, reason: str,
                    attempts: int) -> TriggerOutcome:
    report_error(services, {
        "traceId": job.trace_id, "kpiIds": entry.yields, "component": "trigger",
        "retryCount": max(0, attempts - 1),
        "error": {"message": f"the n8n webhook of {entry.id} could not be triggered: {reason}",
                  "name": "TriggerFailed"}})
    return TriggerOutcome(entry.id, False, reason)


def start_job(services: Services, triggers: Triggers, *, kpis: Sequence[str] | None = None,
              schedule_id: str | None = None, demo: bool = False,
              now: datetime | None = None) -> tuple[Job, list[TriggerOutcome]]:
    """Fan-out in one call: plan, create the job, trigger every KPI, and settle the job
    at once if every KPI is already in (built-in collectors answer synchronously)."""
    plan = plan_fan_out(services.registry.kpis.all(), kpis)
    job = create_job(services, plan, now=now, schedule_id=schedule_id, demo=demo)
    return job, fan_out_job(services, job, triggers, plan) or []


def schedule_job(services: Services, *, kpis: Sequence[str] | None = None,
                 schedule_id: str | None = None, demo: bool = False,
                 now: datetime | None = None) -> Job:
    """Create the job and leave its triggering to the fan-out queue's consumer: a tick
    stays light and short (no HTTP client, no waiting on webhooks or sources)."""
    plan = plan_fan_out(services.registry.kpis.all(), kpis)
    job = create_job(services, plan, now=now, schedule_id=schedule_id, demo=demo)
    services.queue.send(FANOUT, {"traceId": job.trace_id})
    return job


@traced("job")
def fan_out_job(services: Services, job: Job, triggers: Triggers,
                plan: FanOutPlan | None = None) -> list[TriggerOutcome] | None:
    """Trigger the job's KPIs once (None if another worker already did), then settle it
    if every KPI is in. A job whose fan-out crashed half-way is settled by its timeout."""
    now = services.clock.now()
    try:
        services.records.write([Update(
            keys.job_header(job.trace_id),
            set={"triggeredAt": iso(now), **services.jobs.stage_fields("fanout", started=now)},
            condition=AllOf((FieldIn("status", (JobStatus.COLLECTING.value,)),
                             FieldIn("triggeredAt", (None,)))))])
    except ConditionFailed:  # triggered already, or no longer collecting
        return None
    plan = plan or _plan_of(services, job)
    outcomes = trigger_job(services, job, plan, triggers)
    services.jobs.finish_stage(job.trace_id, "fanout", services.clock.now())
    settle_job(services, job.trace_id)
    return outcomes


def _plan_of(services: Services, job: Job) -> FanOutPlan:
    """The entries to trigger for a stored job; KPIs deleted from the registry since the
    job was created are failed with that reason."""
    wanted = set(job.kpi_ids)
    entries = tuple(e for e in services.registry.kpis.all() if wanted.intersection(e.yields))
    gone = sorted(wanted - {k for e in entries for k in e.yields})
    if gone:
        report_error(services, {"traceId": job.trace_id, "kpiIds": gone, "component": "fanout",
                                "error": {"message": "no longer in the registry",
                                          "name": "KpiDeleted"}})
    return FanOutPlan(entries, tuple(job.kpi_ids))


@traced("body")
def run_fan_out(services: Services, body: Mapping[str, Any], triggers: Triggers
                ) -> StageOutcome:
    """Consume one fan-out message: trigger the job's KPIs, once."""
    trace_id = parse_stage_message(FANOUT, body)
    job = services.jobs.get(trace_id)
    if job is None:
        return StageOutcome(trace_id, FANOUT, "unknown-job")
    if job.status is not JobStatus.COLLECTING:
        return StageOutcome(trace_id, FANOUT, "already-done", job.status)
    done = fan_out_job(services, job, triggers)
    return StageOutcome(trace_id, FANOUT, "already-done" if done is None else "triggered",
                        job.status)


# ---------------------------------------------------------------- fan-in
def plan_settle(job: Job, now: datetime) -> list[str] | None:
    """The KPIs to mark timed out (possibly none) if the job is ready to leave
    collecting; None if it is still waiting."""
    if job.status is not JobStatus.COLLECTING:
        return None
    pending = job.with_status(KpiStatus.PENDING)
    if not pending:
        return []
    if job.timeout_at is not None and now >= job.timeout_at:
        return pending
    return None


@traced("trace_id")
def settle_job(services: Services, trace_id: str, *, now: datetime | None = None) -> bool:
    """Fan-in: move a job whose KPIs are all settled (or whose timeout passed) to
    analysis and enqueue it — exactly once, whoever calls this and however often."""
    now = now or services.clock.now()
    job = services.jobs.get(trace_id)
    if job is None:
        return False
    late = plan_settle(job, now)
    if late is None:
        return False
    waited = int((now - job.created_at).total_seconds())
    for kpi_id in late:
        services.jobs.mark_kpi(trace_id, kpi_id, KpiStatus.TIMED_OUT, now, error={
            "message": f"no result within the fan-in timeout ({waited} s)",
            "name": "TimedOut"})
    if not services.jobs.advance(trace_id, JobStatus.ANALYSING, now,
                                 only_from=[JobStatus.COLLECTING], finish_stage="collecting"):
        return False
    services.queue.send("analysis", {"traceId": trace_id})
    return True


# ---------------------------------------------------------------- stages
class StageWorkers:
    """What each stage does to a job. Analysis, packaging and delivery fill these in;
    until they exist a stage only hands the job on."""

    def __init__(self, work: Mapping[str, StageWork] | None = None) -> None:
        self.work: dict[str, StageWork] = dict(work or {})


def _lease_free(now: int) -> AnyOf:
    return AnyOf((FieldIn("leaseUntil", (None,)), FieldAtMost("leaseUntil", now)))


def claim_stage(services: Services, trace_id: str, stage: Stage, owner: str, seconds: int,
                now: datetime) -> bool:
    """Take the job's stage for `seconds` (one worker at a time runs a stage; a crashed
    worker's claim runs out and the stage is taken again)."""
    epoch_now = int(now.timestamp())
    try:
        services.records.write([Update(
            keys.job_header(trace_id),
            set={"leaseOwner": owner, "leaseUntil": epoch_now + seconds,
                 "leaseStage": stage.queue},
            condition=AllOf((FieldIn("status", (stage.status.value,)), _lease_free(epoch_now))),
        )])
    except Exception:  # ConditionFailed: another worker holds it, or the stage is done
        return False
    return True


@dataclass
class StageOutcome:
    trace_id: str
    stage: str
    result: str  # "advanced", "completed", "already-done", "busy", "unknown-job"
    status: JobStatus | None = None


def parse_stage_message(queue: str, body: Mapping[str, Any]) -> str:
    """The trace id a stage message carries, or `InvalidInput` saying what is wrong."""
    if queue not in STAGES and queue != FANOUT:
        raise InvalidInput(f"no stage consumes queue {queue!r}", field="queue")
    trace_id = body.get("traceId")
    if not isinstance(trace_id, str) or not trace_id:
        raise InvalidInput("the message has no traceId", field="traceId")
    from pydantic import TypeAdapter, ValidationError

    try:
        TypeAdapter(Id).validate_python(trace_id)
    except ValidationError:
        raise InvalidInput(f"traceId {trace_id[:80]!r} is not an id", field="traceId") from None
    return trace_id


@traced("body")
def run_stage(services: Services, queue: str, body: Mapping[str, Any], workers: StageWorkers,
              *, owner: str | None = None, lease_s: int = 300) -> StageOutcome:
    """Consume one stage message: claim the stage, do its work, hand the job on.
    Idempotent: a job already past this stage answers `already-done`."""
    trace_id = parse_stage_message(queue, body)
    stage = STAGES[queue]
    now = services.clock.now()
    job = services.jobs.get(trace_id)
    if job is None:
        return StageOutcome(trace_id, queue, "unknown-job")
    if job.status is not stage.status:
        return StageOutcome(trace_id, queue, "already-done", job.status)
    owner = owner or f"worker-{secrets.token_hex(4)}"
    if not claim_stage(services, trace_id, stage, owner, lease_s, now):
        current = services.jobs.get(trace_id)
        done = current is None or current.status is not stage.status
        return StageOutcome(trace_id, queue, "already-done" if done else "busy",
                            current.status if current else None)
    work = workers.work.get(queue)
    done_ops = list((work(services, job) if work is not None else None) or ())
    finished = services.clock.now()
    skip_delivery = (stage.next_queue == "delivery" and job.partial
                     and not services.config.get().lifecycle.deliver_partial)
    if stage.next_queue is None or skip_delivery:
        final = JobStatus.PARTIAL if job.partial else JobStatus.COMPLETE
        changes: dict[str, Any] = {"finishedAt": iso(finished), "leaseUntil": 0}
        if skip_delivery:  # the operator chose not to deliver partial jobs
            changes["note"] = "not delivered: partial jobs are not delivered (job lifecycle config)"
        moved = services.jobs.advance(trace_id, final, finished, only_from=[stage.status],
                                      finish_stage=stage.status.value, changes=changes,
                                      also=done_ops)
        return StageOutcome(trace_id, queue, "completed" if moved else "already-done", final)
    moved = services.jobs.advance(trace_id, NEXT_STATUS[queue], finished,
                                  only_from=[stage.status], finish_stage=stage.status.value,
                                  changes={"leaseUntil": 0},  # the next stage's to claim
                                  also=done_ops)
    if moved:
        services.queue.send(stage.next_queue, {"traceId": trace_id})
    return StageOutcome(trace_id, queue, "advanced" if moved else "already-done",
                        NEXT_STATUS[queue])


def consume(services: Services, queue: str, workers: StageWorkers, *, max_messages: int = 10,
            wait_seconds: float = 0, lease_s: int = 300,
            triggers: Triggers | None = None) -> list[StageOutcome]:
    """Receive and handle a batch of one stage queue. A malformed message is moved to the
    dead-letter queue with its reason; a message whose work fails is released for a
    retry (and dead-lettered by the queue after its maximum receives)."""
    outcomes: list[StageOutcome] = []
    for message in services.queue.receive(queue, max_messages=max_messages,
                                          wait_seconds=wait_seconds):
        outcome = handle_message(services, queue, message, workers, lease_s=lease_s,
                                 triggers=triggers)
        if outcome is not None:
            outcomes.append(outcome)
    return outcomes


@traced("message")
def handle_message(services: Services, queue: str, message: Message, workers: StageWorkers,
                   *, lease_s: int = 300, triggers: Triggers | None = None
                   ) -> StageOutcome | None:
    if queue == FANOUT and triggers is None:
        raise ValueError("the fan-out queue's consumer needs triggers (an HTTP client)")
    try:
        if queue == FANOUT:
            assert triggers is not None
            outcome = run_fan_out(services, message.body, triggers)
        else:
            outcome = run_stage(services, queue, message.body, workers, lease_s=lease_s)
    except InvalidInput as exc:
        log.warning("dead-lettering a malformed %s message: %s", queue, exc.message)
        services.queue.dead_letter(queue, message, exc.message)
        return None
    except Exception:
        log.exception("stage %s failed for message %s; it will be retried", queue, message.id)
        services.queue.release(queue, message, delay_seconds=5)
        return None
    if outcome.result == "busy":
        services.queue.release(queue, message, delay_seconds=min(lease_s, 30))
    else:
        services.queue.ack(queue, message)
    return outcome


# ---------------------------------------------------------------- recovery
def recover(services: Services, *, now: datetime | None = None, limit: int = 100
            ) -> list[str]:
    """On each tick: settle jobs that are due, and hand on again the jobs that sit in a
    stage with no live claim (their message was lost with a crashed process). Returns
    the trace ids it acted on."""
    now = now or services.clock.now()
    acted = []
    patience = timedelta(seconds=services.settings.queue_visibility_timeout)
    for trace_id, header in services.jobs.headers(limit=limit):  # headers only: cheap
        status = JobStatus(header["status"])
        created = _moment(header.get("createdAt")) or now
        updated = _moment(header.get("updatedAt")) or created
        if status is JobStatus.COLLECTING:
            if header.get("triggeredAt") is None and now - created > patience:
                services.queue.send(FANOUT, {"traceId": trace_id})  # its message was lost
                acted.append(trace_id)
                continue
            timeout_at = _moment(header.get("timeoutAt"))
            due = timeout_at is None or now >= timeout_at
            quiet = now - updated > patience  # e.g. a crash between a callback and its fan-in
            # only then is the whole job read (settle_job decides)
            if (due or quiet) and settle_job(services, trace_id, now=now):
                acted.append(trace_id)
            continue
        stage = next((s for s in STAGES.values() if s.status is status), None)
        if stage is None:
            continue
        lease_until = header.get("leaseUntil")
        claimed = header.get("leaseStage") == stage.queue
        if claimed and isinstance(lease_until, int | float) and lease_until > now.timestamp():
            continue
        if claimed or now - updated > patience:
            services.queue.send(stage.queue, {"traceId": trace_id})
            acted.append(trace_id)
    return acted


def _moment(text: object) -> datetime | None:
    return datetime.fromisoformat(text) if isinstance(text, str) else None


__all__ = [
    "FANOUT",
    "STAGES",
    "ErrorOutcome",
    "FanOutPlan",
    "Stage",
    "StageOutcome",
    "StageWorkers",
    "TriggerOutcome",
    "Triggers",
    "claim_stage",
    "consume",
    "create_job",
    "fan_out_job",
    "handle_message",
    "plan_fan_out",
    "plan_settle",
    "recover",
    "run_fan_out",
    "run_stage",
    "schedule_job",
    "settle_job",
    "start_job",
    "trigger_job",
    "trigger_payload",
]

"""The delivery stage (SPEC step 6): the job's messages to every active endpoint that
wants them, once each.

Exactly one send per job and endpoint, whatever re-runs: each endpoint's record
`delivery:{traceId}`/`{endpointId}` goes `pending → in_flight (with a lease) → sent |
failed`. The in-flight marks are written before anything is sent and the outcomes as
they come, in batches. A re-run (a crash, a redelivered message, `metric-stream
deliver`) sends only what is not recorded as sent; one whose send was in flight when
its sender died is sent again with the same `webhook-id` / message id, so the receiver
can drop the duplicate.

After the sends, each endpoint's health is updated (disabled when the service says it
is gone, or after `delivery.autoDisableAfterS` of failures without a success) and the
operator channels get their alerts (`services/alerts.py`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from metric_stream.bootstrap import Services
from metric_stream.delivery.base import Outgoing
from metric_stream.errors import ConditionFailed, MetricStreamError, NotFound
from metric_stream.logs import traced
from metric_stream.models.base import iso
from metric_stream.models.config import SystemConfig
from metric_stream.models.delivery import (
    DeliveryEndpoint,
    DeliveryRecord,
    DeliveryStatus,
    EndpointHealth,
)
from metric_stream.models.job import Job as CycleJob
from metric_stream.models.report import ConsolidatedPackage
from metric_stream.ports import MAX_BATCH, Exists, Op, Put, Update
from metric_stream.storage import keys
from metric_stream.storage.collection import to_item

if TYPE_CHECKING:  # the engine (aiohttp) is imported by the functions that send
    from metric_stream.delivery.engine import Outcome

log = logging.getLogger(__name__)

FLUSH_EVERY = 100  # outcomes written per batch while sends are under way
FLUSH_S = 0.25  # ... and at least this often
HEALTH_REFRESH = timedelta(hours=12)  # a healthy endpoint's lastSuccessAt is kept this fresh
LEASE_MARGIN_S = 60


@dataclass
class DeliveryRun:
    trace_id: str
    planned: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    already_sent: int = 0
    disabled: list[str] = field(default_factory=list)
    seconds: float = 0.0
    operators: list[DeliveryEndpoint] | None = None  # when the registry was read whole


    def to_wire(self) -> dict[str, Any]:
        return {"traceId": self.trace_id, "planned": self.planned, "sent": self.sent,
                "failed": self.failed, "skipped": self.skipped,
                "alreadySent": self.already_sent, "disabled": self.disabled,
                "seconds": round(self.seconds, 3)}


# ---------------------------------------------------------------- who gets the report
def wants(endpoint: DeliveryEndpoint, job: CycleJob, consolidated: ConsolidatedPackage) -> bool:
    """Whether an (active, non-operator) endpoint gets this job's report: `all`; `alerts`
    when the job raised an alert; a list when one of its KPIs is in the report."""
    if endpoint.kpis == "all":
        return True
    if endpoint.kpis == "alerts":
        return bool(consolidated.analytics.get("alerts"))
    collected = set(job.kpi_ids) - set(job.missing)
    return bool(collected & set(endpoint.kpis))


def recipients(endpoints: Sequence[DeliveryEndpoint], job: CycleJob,
               consolidated: ConsolidatedPackage) -> list[DeliveryEndpoint]:
    return [e for e in endpoints if e.active and not e.operator and wants(e, job, consolidated)]


# ---------------------------------------------------------------- the stage
def deliver_job(services: Services, job: CycleJob) -> Sequence[Op]:
    """The stage worker: deliver, update endpoint health, alert the operators."""
    # The sends are leased for as long as this stage's claim: a re-run after a crash
    # (it claims the stage once the claim has lapsed) sends them again, never skips them.
    claim = services.jobs.require(job.trace_id).lease_until
    run = deliver(services, job.trace_id,
                  lease_until=datetime.fromtimestamp(claim, UTC) if claim else None)
    from metric_stream.services.alerts import alert_after_delivery

    alert_after_delivery(services, job, run)
    return []


@traced("trace_id")
def deliver(services: Services, trace_id: str, *, endpoint_ids: Sequence[str] | None = None,
            failed_only: bool = False, resend: bool = False,
            lease_until: datetime | None = None) -> DeliveryRun:
    """Send the job's messages to its recipients (or to `endpoint_ids`), skipping what is
    recorded as sent unless `resend`; `failed_only` sends only where the last try failed.
    The sends are someone else's until `lease_until` (default: long enough for them)."""
    started = time.monotonic()
    config = services.config.get()
    job = services.jobs.require(trace_id)
    consolidated = services.packages.consolidated(trace_id)
    if consolidated is None or consolidated.messages is None:
        raise NotFound(f"job {trace_id} has no messages to deliver: its packaging stage has "
                       "not completed", field="traceId")
    run = DeliveryRun(trace_id)
    if endpoint_ids is not None:
        endpoints = [services.registry.endpoints.require(e) for e in endpoint_ids]
    else:  # read once, for the recipients and the operators' alerts after (5,000 records)
        everyone = services.registry.endpoints.all()
        endpoints = recipients(everyone, job, consolidated)
        run.operators = [e for e in everyone if e.active and e.operator]
    records = {r.endpoint_id: r for r in services.deliveries.list(trace_id)}
    now = services.clock.now()
    todo: list[DeliveryEndpoint] = []
    for endpoint in endpoints:
        record = records.get(endpoint.id)
        status = record.status if record else DeliveryStatus.PENDING
        if status is DeliveryStatus.SENT and not resend:
            run.already_sent += 1
        elif failed_only and status is not DeliveryStatus.FAILED:
            run.skipped += 1
        elif (status is DeliveryStatus.IN_FLIGHT and record and record.lease_until
              and record.lease_until > now and not resend):
            run.skipped += 1  # another sender holds it
        else:
            todo.append(endpoint)
    run.planned = len(todo)
    if todo:
        outcomes = _send(services, config, job, consolidated, todo, records, now,
                         lease_until or now + timedelta(seconds=_lease_s(config)))
        _record_health(services, config, {e.id: e for e in todo}, outcomes, run)
    run.seconds = time.monotonic() - started
    log.info("job %s: delivery: %d sent, %d failed, %d already sent, %d skipped in %.2f s",
             trace_id, run.sent, run.failed, run.already_sent, run.skipped, run.seconds)
    return run


def _lease_s(config: SystemConfig) -> float:
    policy = config.retry.delivery
    return (config.delivery.timeout_s * (policy.retries + 1) + sum(policy.delays_s)
            * (1 + config.delivery.jitter) + LEASE_MARGIN_S)


def _send(services: Services, config: SystemConfig, job: CycleJob,
          consolidated: ConsolidatedPackage, endpoints: list[DeliveryEndpoint],
          records: Mapping[str, DeliveryRecord], now: datetime, lease_until: datetime
          ) -> dict[str, Outcome]:
    from metric_stream.delivery.channels import channel_kind
    from metric_stream.delivery.engine import Engine, Job, run_jobs

    pdf = _pdf(services, job.trace_id) if any(e.attach_pdf for e in endpoints) else None
    document = services.packages.document(job.trace_id)
    jobs: list[Job] = []
    marks: list[Put] = []
    # Records are built from one validated template per run (thousands of endpoints:
    # a pydantic model each, twice, was a fifth of the run's time).
    now_text = iso(now)
    template = to_item(DeliveryRecord(trace_id=job.trace_id, endpoint_id="template",
                                      status=DeliveryStatus.IN_FLIGHT, lease_until=lease_until,
                                      first_attempt_at=now, last_attempt_at=now))
    messages = consolidated.messages or {}
    report_url = document.url if document else None
    kinds: dict[str, str | None] = {}
    for endpoint in endpoints:
        previous = records.get(endpoint.id)
        out = Outgoing(trace_id=job.trace_id, endpoint_id=endpoint.id, messages=messages,
                       report_url=report_url, pdf=pdf if endpoint.attach_pdf else None,
                       pdf_name=f"{job.trace_id}.pdf", signing_secret=endpoint.signing_secret)
        jobs.append(Job(out, url=endpoint.url))  # parsed by the process that sends it
        kinds[endpoint.id] = channel_kind(endpoint.url)
        mark = {**template, "endpointId": endpoint.id,
                "attempts": previous.attempts if previous else 0}
        if kinds[endpoint.id]:
            mark["channel"] = kinds[endpoint.id]
        if previous and previous.first_attempt_at:
            mark["firstAttemptAt"] = iso(previous.first_attempt_at)
        marks.append(Put(keys.delivery(job.trace_id, endpoint.id), mark))
    services.records.put_many(marks)  # before any send: a crash leaves them in flight

    outcomes: dict[str, Outcome] = {}
    pending: list[Put] = []
    last_flush = [time.monotonic()]

    def flush() -> None:
        last_flush[0] = time.monotonic()
        if pending:
            services.records.put_many(list(pending))
            pending.clear()

    sent_status, failed_status = DeliveryStatus.SENT.value, DeliveryStatus.FAILED.value

    def done(outcome: Outcome) -> None:
        endpoint_id = outcome.endpoint_id
        outcomes[endpoint_id] = outcome
        previous = records.get(endpoint_id)
        result = outcome.result
        finished = iso(services.clock.now())
        record: dict[str, Any] = {
            "traceId": job.trace_id, "endpointId": endpoint_id,
            "status": sent_status if result.ok else failed_status,
            "attempts": (previous.attempts if previous else 0) + outcome.attempts,
            "firstAttemptAt": iso(previous.first_attempt_at)
            if previous and previous.first_attempt_at else now_text,
            "lastAttemptAt": finished}
        if kinds.get(endpoint_id):
            record["channel"] = kinds[endpoint_id]
        if result.status is not None:
            record["lastStatusCode"] = result.status
        if result.ok:
            record["sentAt"] = finished
        elif result.error:
            record["lastError"] = result.error[:2000]
        pending.append(Put(keys.delivery(job.trace_id, endpoint_id), record))
        # every FLUSH_EVERY outcomes, and at least every FLUSH_S: a crash forgets at most
        # the sends of the last fraction of a second (which it then repeats, same id)
        if len(pending) >= FLUSH_EVERY or time.monotonic() - last_flush[0] >= FLUSH_S:
            flush()

    engine = Engine(services.settings, config.retry.delivery,
                    concurrency=config.delivery.concurrency, per_host=config.delivery.per_host,
                    timeout_s=config.delivery.timeout_s, jitter=config.delivery.jitter)
    processes = config.delivery.processes or min(os.cpu_count() or 1, 4)
    try:
        run_jobs(engine, jobs, done, processes=processes)
    finally:
        flush()
    return outcomes


def _pdf(services: Services, trace_id: str) -> bytes | None:
    document = services.packages.document(trace_id)
    if document is None:
        return None
    try:
        return services.blobs.get(document.blob_key)
    except MetricStreamError:
        log.warning("job %s: its report file is missing; sending the link only", trace_id)
        return None


# ---------------------------------------------------------------- endpoint health
def next_health(health: EndpointHealth, outcome: Outcome, now: datetime,
                disable_after: timedelta) -> tuple[EndpointHealth, str | None]:
    """The endpoint's health after a send, and why it is to be disabled (or None)."""
    result = outcome.result
    if result.ok:
        return EndpointHealth(last_success_at=now, last_failure_at=health.last_failure_at,
                              last_status=result.status), None
    since = health.failing_since or now
    updated = health.model_copy(update={
        "consecutive_failures": health.consecutive_failures + 1, "failing_since": since,
        "last_failure_at": now, "last_error": (result.error or "")[:500] or None,
        "last_status": result.status})
    if result.gone:
        return updated, f"the service says the address is gone ({result.error})"
    if now - since >= disable_after:
        days = (now - since).total_seconds() / 86_400
        return updated, (f"failing for {days:.1f} days without a success "
                         f"({updated.consecutive_failures} failures; last: {result.error})")
    return updated, None


def _still_healthy(health: EndpointHealth, now: datetime) -> bool:
    """A success that changes nothing worth writing: the endpoint was healthy and its
    last success is recorded within HEALTH_REFRESH."""
    return (health.consecutive_failures == 0 and health.disabled_reason is None
            and health.last_success_at is not None
            and now - health.last_success_at < HEALTH_REFRESH)


def _record_health(services: Services, config: SystemConfig,
                   endpoints: Mapping[str, DeliveryEndpoint], outcomes: Mapping[str, Outcome],
                   run: DeliveryRun) -> None:
    now = services.clock.now()
    disable_after = timedelta(seconds=config.delivery.auto_disable_after_s)
    updates: list[Update] = []
    for endpoint_id, outcome in outcomes.items():
        endpoint = endpoints[endpoint_id]
        run.sent += outcome.result.ok
        run.failed += not outcome.result.ok
        if outcome.result.ok and _still_healthy(endpoint.health, now):
            continue  # nothing to say: skip rewriting thousands of healthy endpoints
        health, disable = next_health(endpoint.health, outcome, now, disable_after)
        changes: dict[str, Any] = {"health": to_item(health)}
        if disable:
            changes["active"] = False
            changes["health"] = to_item(health.model_copy(
                update={"disabled_reason": disable[:500], "disabled_at": now}))
            run.disabled.append(endpoint_id)
        # only health (and active when disabling): an edit made while sending stays
        updates.append(Update(services.registry.endpoints.key(endpoint_id), set=changes,
                              condition=Exists()))
    for start in range(0, len(updates), MAX_BATCH):
        chunk = updates[start:start + MAX_BATCH]
        try:
            services.records.write(chunk)
        except ConditionFailed:  # an endpoint was deleted meanwhile: write the others
            for update in chunk:
                with contextlib.suppress(ConditionFailed):
                    services.records.write([update])


# ---------------------------------------------------------------- tests and re-sends
def send_test(services: Services, endpoint: DeliveryEndpoint) -> dict[str, Any]:
    """`POST /api/endpoints/{id}/test`: a test message through the endpoint's channel,
    with the delivery retries. Nothing is recorded; the endpoint's health is unchanged."""
    from metric_stream.delivery.channels import parse_channel
    from metric_stream.delivery.engine import Engine, Job, run_jobs

    config = services.config.get()
    answer: dict[str, Any] = {"endpointId": endpoint.id, "url": endpoint.masked_url,
                              "delivered": False}
    try:
        channel = parse_channel(endpoint.url)
    except MetricStreamError as exc:
        return {**answer, "error": exc.message, "attempts": 0}
    out = Outgoing(trace_id="test", endpoint_id=endpoint.id, messages={}, test=True,
                   signing_secret=endpoint.signing_secret)
    engine = Engine(services.settings, config.retry.delivery, concurrency=1, per_host=1,
                    timeout_s=config.delivery.timeout_s, jitter=config.delivery.jitter)
    outcomes: list[Outcome] = []
    _in_thread(lambda: run_jobs(engine, [Job(out, channel)], outcomes.append))
    outcome = outcomes[0]
    result = outcome.result
    return {**answer, "channel": channel.kind, "delivered": result.ok,
            "status": result.status, "attempts": outcome.attempts,
            "error": result.error, "gone": result.gone,
            "elapsedMs": round(outcome.elapsed_s * 1000, 1)}


def _in_thread(work: Any) -> None:
    """Run `work` where no event loop is running (an async server calls routes from its
    loop's thread; asyncio.run needs a thread of its own)."""
    import asyncio
    import contextvars
    import threading

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        work()
        return
    errors: list[BaseException] = []

    def target() -> None:
        try:
            work()
        except BaseException as exc:  # re-raised in the caller
            errors.append(exc)

    context = contextvars.copy_context()  # the request's id stays on its log lines
    thread = threading.Thread(target=context.run, args=(target,), name="delivery-test")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def delivery_totals(records: Iterable[DeliveryRecord]) -> dict[str, int]:
    totals = {status.value: 0 for status in DeliveryStatus}
    for record in records:
        totals[record.status.value] += 1
    return totals

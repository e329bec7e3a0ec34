"""What the admin API does beyond a single store call: registry writes with their
cross-checks, the delete-while-collecting rule, schedule previews, config section
updates, run-now, range reads, endpoint checks, n8n workflow control and the figures
of `GET /api/metrics`.

Network clients (`httpx`) and the cycle are imported where they are used, so that the
API's route table stays cheap to import (a Lambda cold start loads every route module).
"""

from __future__ import annotations

import math
import os
import re
import socket
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote, urlsplit

from pydantic import TypeAdapter, ValidationError

from metric_stream.bootstrap import Services
from metric_stream.errors import (
    ConditionFailed,
    Conflict,
    FeatureUnavailable,
    Forbidden,
    InvalidInput,
    NotFound,
    UpstreamError,
)
from metric_stream.models.base import Timestamp, parse
from metric_stream.models.config import FallbackConfig, RetryConfig, SystemConfig
from metric_stream.models.delivery import DeliveryEndpoint, mask_url
from metric_stream.models.job import Job, JobStatus, KpiStatus
from metric_stream.models.kpi import CollectorSource, KpiDefinition, N8nSource
from metric_stream.models.report import DocumentRecord
from metric_stream.models.schedule import Schedule
from metric_stream.models.timeseries import DataPoint
from metric_stream.ports import AllOf, Exists, FieldIn
from metric_stream.services.outbound import check_outbound_url
from metric_stream.settings import Settings
from metric_stream.storage import keys

if TYPE_CHECKING:
    import httpx

    from metric_stream.services.cycle import TriggerOutcome

RECENT_JOBS = 100  # jobs read to find those still collecting a KPI (as `cycle.recover`)
METRICS_JOBS = 50  # jobs behind the duration and failure-rate figures
METRICS_DELIVERY_JOBS = 5  # jobs whose delivery records are counted (thousands each)
PAUSED_BY = "pausedByWorkflow"  # metadata mark of a KPI paused with its n8n workflow


def utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def known_kpi_ids(services: Services) -> set[str]:
    """Every registry entry id and every KPI id an entry yields."""
    entries = services.registry.kpis.all()
    return {e.id for e in entries} | {k for e in entries for k in e.yields}


# ---------------------------------------------------------------- outbound URLs
def check_url(url: str, settings: Settings, *, field: str) -> list[str]:
    """Refuse an http(s) URL metric-stream may not call (`Forbidden`); a host that cannot
    be resolved now is accepted with a warning, since every call checks it again."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return []
    try:
        check_outbound_url(url, settings, field=field)
    except Forbidden as refused:
        if parts.hostname and _resolves(parts.hostname):
            raise
        return [refused.message]
    return []


def _resolves(host: str) -> bool:
    try:
        socket.getaddrinfo(host, None)
    except (socket.gaierror, UnicodeError):
        return False
    return True


def scrub(text: str, url: str) -> str:
    """`text` without the secret parts of `url` (path, query, credentials)."""
    parts = urlsplit(url)
    text = text.replace(url, mask_url(url))
    for secret in (parts.query, parts.path, parts.username, parts.password):
        if secret and len(secret.strip("/")) > 3:
            text = text.replace(secret, "***")
    return text


# ---------------------------------------------------------------- KPIs
def check_kpi(services: Services, kpi: KpiDefinition) -> list[str]:
    """Checks beyond the model: a built-in collector that exists, an n8n webhook that
    may be called. Returns warnings."""
    source = kpi.source
    if isinstance(source, CollectorSource):
        from metric_stream.collectors import COLLECTORS

        if source.collector not in COLLECTORS:
            raise InvalidInput(f"{source.collector!r} is not a built-in collector; known: "
                               f"{sorted(COLLECTORS)}", field="source.collector")
        mirror = source.params.get("baseUrl")
        if mirror is None:
            return []
        if not isinstance(mirror, str) or urlsplit(mirror).scheme not in ("http", "https") \
                or not urlsplit(mirror).hostname:
            raise InvalidInput("must be an absolute http(s) URL (a mirror of the source)",
                               field="source.params.baseUrl")
        return check_url(mirror, services.settings, field="source.params.baseUrl")
    return check_url(source.webhook_url, services.settings, field="source.webhookUrl")


def same_id(path_id: str, body_id: str, noun: str) -> None:
    if body_id != path_id:
        raise InvalidInput(f"is {body_id!r} but the path names {path_id!r}; a {noun}'s id "
                           "cannot change (create a new one and delete this one)", field="id")


def create_kpi(services: Services, kpi: KpiDefinition) -> tuple[KpiDefinition, list[str]]:
    warnings = check_kpi(services, kpi)
    stamped = kpi.model_copy(update={"created_at": None}).stamped(services.clock.now())
    return services.registry.kpis.create(stamped), warnings


def replace_kpi(services: Services, kpi_id: str, kpi: KpiDefinition
                ) -> tuple[KpiDefinition, list[str]]:
    same_id(kpi_id, kpi.id, "KPI")
    old = services.registry.kpis.require(kpi_id)
    warnings = check_kpi(services, kpi)
    stamped = kpi.model_copy(update={"created_at": old.created_at}).stamped(services.clock.now())
    return services.registry.kpis.replace(stamped), warnings


def collecting_jobs(services: Services, kpi_ids: Iterable[str]) -> dict[str, list[str]]:
    """Trace id -> the KPIs of `kpi_ids` that a collecting job still waits for."""
    wanted = set(kpi_ids)
    found: dict[str, list[str]] = {}
    for job in services.jobs.list(limit=RECENT_JOBS):
        if job.status is not JobStatus.COLLECTING:
            continue
        pending = [k for k in job.kpi_ids
                   if k in wanted and job.state_of(k).status is KpiStatus.PENDING]
        if pending:
            found[job.trace_id] = pending
    return found


@dataclass
class KpiDeleted:
    kpi_id: str
    failed_in_jobs: dict[str, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def delete_kpi(services: Services, kpi_id: str, force: bool = False) -> KpiDeleted:
    """Delete a registry entry. While a collecting job waits for one of its KPIs it is
    refused (`Conflict` naming the jobs) unless `force`: then those KPIs are marked
    failed in those jobs, so that fan-in does not wait for a result that can no longer
    be ingested."""
    entry = services.registry.kpis.require(kpi_id)
    busy = collecting_jobs(services, entry.yields)
    if busy and not force:
        raise Conflict(f"KPI {kpi_id!r} is being collected by job(s) {sorted(busy)}; wait for "
                       "them to settle, or delete with ?force=true", field="id")
    services.registry.kpis.delete(kpi_id)
    now = services.clock.now()
    for trace_id, pending in busy.items():
        for k in pending:
            services.jobs.mark_kpi(trace_id, k, KpiStatus.FAILED, now, error={
                "name": "KpiDeleted", "component": "registry",
                "message": f"{k} was deleted from the registry while this job collected it"})
    if busy:
        from metric_stream.services.cycle import settle_job

        for trace_id in busy:
            settle_job(services, trace_id, now=now)
    yielded = set(entry.yields) | {kpi_id}
    warnings = [f"schedule {s.id!r} names {sorted(yielded & set(s.kpi_ids))}"
                for s in services.registry.schedules.all()
                if s.kpi_ids and yielded & set(s.kpi_ids)]
    warnings += [f"delivery endpoint {e.id!r} names {sorted(yielded & set(e.kpis))}"
                 for e in services.registry.endpoints.all()
                 if isinstance(e.kpis, list) and yielded & set(e.kpis)]
    return KpiDeleted(kpi_id, busy, warnings)


# ---------------------------------------------------------------- schedules
_DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")
_NUMBER = re.compile(r"^\d+$")
_EVERY = re.compile(r"^\*/(\d+)$")


def _names(text: str, names: Sequence[str], base: int) -> list[str] | None:
    """`1-5`, `1,3,5`, `mon-fri` as names (None if the field is not that simple)."""
    lowered = [n[:3].lower() for n in names]

    def index(token: str) -> int | None:
        if _NUMBER.match(token):
            i = int(token) - base
            return i % len(names) if base == 0 else i  # day 7 is Sunday too
        return lowered.index(token.lower()) if token.lower() in lowered else None

    out: list[str] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        first, last = index(low), index(high) if high else None
        if first is None or not 0 <= first < len(names) or (high and last is None):
            return None
        if last is None:
            out.append(names[first])
        elif 0 <= last < len(names):
            out.append(f"{names[first]} through {names[last]}")
        else:
            return None
    return out


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _numbers(text: str, high: int) -> list[int] | None:
    parts = text.split(",")
    if not all(_NUMBER.match(p) and int(p) <= high for p in parts):
        return None
    return sorted({int(p) for p in parts})


def _time_text(minute: str, hour: str) -> tuple[str, bool] | None:
    """The time-of-day part, and whether it is a frequency ("every 15 minutes") rather
    than times of the day ("06:00 and 18:00")."""
    minutes, hours = _numbers(minute, 59), _numbers(hour, 23)
    minute_step, hour_step = _EVERY.match(minute), _EVERY.match(hour)
    if minutes and hours and len(minutes) * len(hours) <= 6:
        return _join([f"{h:02d}:{m:02d}" for h in hours for m in minutes]), False
    if hour == "*":
        if minute == "*":
            return "every minute", True
        if minute_step:
            return f"every {minute_step.group(1)} minutes", True
        if minutes == [0]:
            return "every hour, on the hour", True
        if minutes:
            return f"every hour at minute {_join([str(m) for m in minutes])}", True
    if hour_step and minutes:
        return (f"every {hour_step.group(1)} hours at minute "
                f"{_join([str(m) for m in minutes])}"), True
    if hours and len(hours) == 1 and (minute == "*" or minute_step):
        every = f"every {minute_step.group(1)} minutes" if minute_step else "every minute"
        return f"{every} from {hours[0]:02d}:00 to {hours[0]:02d}:59 UTC", True
    return None


def describe_cron(expression: str) -> str:
    """Plain English for the common shapes of a 5-field cron expression (in UTC), e.g.
    `0 6 * * 1-5` -> "on Monday through Friday at 06:00 UTC"; any other shape is
    described by the expression itself."""
    fallback = f"at the times matching cron {expression!r} (UTC)"
    fields = expression.split()
    if len(fields) != 5:
        return fallback
    minute, hour, dom, month, dow = fields
    timing = _time_text(minute, hour)
    days_of_month = None if dom == "*" else _numbers(dom, 31)
    months = None if month == "*" else _names(month, _MONTHS, 1)
    weekdays = None if dow == "*" else _names(dow, _DAYS, 0)
    if timing is None or (dom != "*" and not days_of_month) or (month != "*" and not months) \
            or (dow != "*" and not weekdays):
        return fallback
    times, frequent = timing
    days: list[str] = []
    if days_of_month:
        which = "day" if len(days_of_month) == 1 else "days"
        days.append(f"on {which} {_join([str(d) for d in days_of_month])} of the month")
    if weekdays:
        days.append(f"on {_join(weekdays)}")
    when = " or ".join(days)  # cron fires when either day field matches
    if months:
        when = f"{when or 'every day'} in {_join(months)}"
    if not frequent:
        return f"{when or 'every day'} at {times} UTC"
    if not when:
        return times
    return f"{times} {when}" + ("" if times.endswith("UTC") else " (UTC)")


def schedule_view(schedule: Schedule, now: datetime, count: int = 5) -> dict[str, Any]:
    """A schedule as answered: its fields, the next fire times (none while inactive)
    and its cron in words."""
    body = schedule.model_dump(mode="json", by_alias=True, exclude_none=True)
    runs = schedule.next_runs(now, count) if schedule.active else []
    body["nextRuns"] = [utc_text(r) for r in runs]
    body["description"] = describe_cron(schedule.cron)
    return body


def check_schedule(services: Services, schedule: Schedule) -> None:
    if schedule.kpi_ids:
        unknown = sorted(set(schedule.kpi_ids) - known_kpi_ids(services))
        if unknown:
            raise InvalidInput(f"names {unknown}, which are not in the registry",
                               field="kpiIds")


def create_schedule(services: Services, schedule: Schedule) -> Schedule:
    check_schedule(services, schedule)
    now = services.clock.now()
    fresh = schedule.model_copy(update={"created_at": now, "updated_at": now,
                                        "last_fired_at": None})
    return services.registry.schedules.create(fresh)


def replace_schedule(services: Services, schedule_id: str, schedule: Schedule) -> Schedule:
    """Replace a schedule, keeping its creation time and the scheduler's `lastFiredAt`;
    the write is conditional on `lastFiredAt` so that a tick firing meanwhile is never
    undone (which would fire the same due time twice)."""
    same_id(schedule_id, schedule.id, "schedule")
    check_schedule(services, schedule)
    collection = services.registry.schedules
    for _ in range(3):
        stored = services.records.get(collection.key(schedule_id))
        if stored is None:
            break
        old = Schedule.model_validate(stored)
        new = schedule.model_copy(update={"created_at": old.created_at,
                                          "last_fired_at": old.last_fired_at,
                                          "updated_at": services.clock.now()})
        guard = AllOf((Exists(), FieldIn("lastFiredAt", (stored.get("lastFiredAt"),))))
        try:
            services.records.write([collection.put_op(new, guard)])
        except ConditionFailed:
            continue  # fired (or deleted) meanwhile: read again
        return new
    return collection.require(schedule_id)  # NotFound if it was deleted


# ---------------------------------------------------------------- config
Section = Literal["retry", "fallback"]


def update_config_section(services: Services, section: Section, body: Any) -> SystemConfig:
    """Change part of one config section: the fields given replace the stored ones
    (a retry policy as a whole), the others stay."""
    if not isinstance(body, Mapping):
        raise InvalidInput(f"must be a JSON object, not {type(body).__name__}")
    config = services.config.get()
    current = config.retry if section == "retry" else config.fallback
    merged = {**current.model_dump(mode="json", by_alias=True), **body}
    model: RetryConfig | FallbackConfig = parse(type(current), merged)
    return services.config.put(config.model_copy(update={section: model}), services.clock.now())


# ---------------------------------------------------------------- jobs
def list_jobs(services: Services, *, limit: int, status: JobStatus | None) -> list[Job]:
    """The newest jobs; with `status`, those in it among the newest `RECENT_JOBS`."""
    if status is None:
        return services.jobs.list(limit=limit)
    return [j for j in services.jobs.list(limit=max(limit, RECENT_JOBS))
            if j.status is status][:limit]


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return None if start is None or end is None else round((end - start).total_seconds(), 3)


def job_summary(job: Job) -> dict[str, Any]:
    counts = {s.value: len(job.with_status(s)) for s in KpiStatus}
    body = job.model_dump(mode="json", by_alias=True, exclude_none=True,
                          exclude={"kpis", "stages", "lease_owner", "lease_until", "lease_stage"})
    body["kpiCounts"] = counts
    body["durationS"] = _seconds(job.created_at, job.finished_at)
    return body


def job_detail(services: Services, trace_id: str) -> dict[str, Any]:
    """A job with every KPI's state (errors whole), stage timings, deliveries (URLs
    masked), its document, how its LLM chains went (failures with their reasons) and
    which channel messages it carries."""
    job = services.jobs.require(trace_id)
    body = job_summary(job)
    body["kpis"] = {k: job.state_of(k).model_dump(mode="json", by_alias=True, exclude_none=True)
                    for k in job.kpi_ids}
    body["stages"] = {name: {**timing.model_dump(mode="json", by_alias=True, exclude_none=True),
                             "durationS": _seconds(timing.started_at, timing.finished_at)}
                      for name, timing in sorted(job.stages.items(),
                                                 key=lambda item: item[1].started_at)}
    fanout, collecting = job.stages.get("fanout"), job.stages.get("collecting")
    # the fan-in wait: from the last trigger sent to the job's move to analysis
    body["fanInWaitS"] = _seconds(fanout.finished_at if fanout else None,
                                  collecting.finished_at if collecting else None)
    body["missing"] = job.missing
    endpoints = {e.id: e for e in services.registry.endpoints.all()}
    deliveries = []
    for record in services.deliveries.list(trace_id):
        item = record.model_dump(mode="json", by_alias=True, exclude_none=True)
        endpoint = endpoints.get(record.endpoint_id)
        if endpoint is not None:
            item["endpointName"] = endpoint.name
            item["url"] = endpoint.masked_url
            if record.last_error:
                item["lastError"] = scrub(record.last_error, endpoint.url)
        deliveries.append(item)
    body["deliveries"] = deliveries
    document = services.packages.document(trace_id)
    body["document"] = None if document is None else {
        **document.model_dump(mode="json", by_alias=True, exclude_none=True),
        "downloadPath": f"/api/documents/{trace_id}"}
    consolidated = services.packages.consolidated(trace_id)
    body["llm"] = None if consolidated is None else (consolidated.analysis or {}).get("llm")
    body["messages"] = None if consolidated is None or consolidated.messages is None else sorted(
        consolidated.messages)
    return body


def run_now(services: Services, kpis: Sequence[str] | None, demo: bool
            ) -> tuple[Job, list[TriggerOutcome]]:
    """Start a job now (fan-out in one call); the job as it stands once the built-in
    collectors answered."""
    import httpx

    from metric_stream.logs import job_context
    from metric_stream.services import cycle
    from metric_stream.services.runner import log_started

    with httpx.Client(timeout=10) as http:
        job, outcomes = cycle.start_job(services, cycle.Triggers(http), kpis=kpis or None,
                                        demo=demo)
    with job_context(job.trace_id):
        log_started(job, outcomes)
    return services.jobs.require(job.trace_id), outcomes


# ---------------------------------------------------------------- data
_TIMESTAMP: TypeAdapter[datetime] = TypeAdapter(Timestamp)


def query_time(text: str | None, name: str) -> datetime | None:
    if text is None or text == "":
        return None
    try:
        return _TIMESTAMP.validate_python(text)
    except ValidationError:
        hint = ""
        if re.search(r"\d \d{2}:?\d{2}$", text):
            hint = " (a '+' in a query string reads as a space: send it as %2B, or use Z)"
        raise InvalidInput(f"must be an ISO 8601 date and time with a timezone, e.g. "
                           f"2026-11-29T06:00:00Z{hint}", field=name) from None


def query_int(text: str | None, name: str, *, default: int, low: int, high: int) -> int:
    if text is None or text == "":
        return default
    if not re.fullmatch(r"\d{1,9}", text) or not low <= int(text) <= high:
        raise InvalidInput(f"must be a whole number from {low} to {high}", field=name)
    return int(text)


@dataclass
class RangeRead:
    kpi_id: str
    start: datetime | None
    end: datetime | None
    points: list[DataPoint]
    truncated: bool


def read_range(services: Services, kpi_id: str, start: datetime | None, end: datetime | None,
               limit: int) -> RangeRead:
    """Points of a known KPI id (one a registry entry yields), oldest first."""
    if not services.registry.kpis.resolve([kpi_id]):
        raise NotFound(f"KPI {kpi_id!r} is not in the registry", field="kpiId")
    if start is not None and end is not None and start > end:
        raise InvalidInput("must not be after `to`", field="from")
    points = services.timeseries.points(kpi_id, start=start, end=end, limit=limit + 1)
    return RangeRead(kpi_id, start, end, points[:limit], len(points) > limit)


def document_of(services: Services, trace_id: str) -> tuple[DocumentRecord, bytes]:
    record = services.packages.document(trace_id)
    if record is None:
        raise NotFound(f"job {trace_id!r} has no document", field="traceId")
    try:
        return record, services.blobs.get(record.blob_key)
    except NotFound:
        raise NotFound(f"the document of job {trace_id!r} is recorded but its file is "
                       "missing from the blob store", field="traceId") from None


# ---------------------------------------------------------------- delivery endpoints
def endpoint_view(endpoint: DeliveryEndpoint) -> dict[str, Any]:
    """An endpoint as answered: never its URL (only the masked form), never its
    signing secret (only whether it has one)."""
    body = endpoint.model_dump(mode="json", by_alias=True, exclude_none=True,
                               exclude={"url", "signing_secret"})
    body["url"] = endpoint.masked_url
    body["scheme"] = urlsplit(endpoint.url).scheme
    body["signed"] = endpoint.signing_secret is not None
    return body


def check_endpoint(services: Services, endpoint: DeliveryEndpoint) -> list[str]:
    if isinstance(endpoint.kpis, list):
        unknown = sorted(set(endpoint.kpis) - known_kpi_ids(services))
        if unknown:
            raise InvalidInput(f"names {unknown}, which are not in the registry", field="kpis")
    from metric_stream.delivery.channels import parse_channel

    channel = parse_channel(endpoint.url)  # InvalidInput naming what is wrong
    channel.check(services.settings)
    return check_url(endpoint.url, services.settings, field="url")


def create_endpoint(services: Services, endpoint: DeliveryEndpoint
                    ) -> tuple[DeliveryEndpoint, list[str]]:
    """Save a new endpoint; a generic webhook gets a signing secret unless it brings one
    (the caller shows it once)."""
    from metric_stream.delivery.channels import parse_channel
    from metric_stream.signing import new_secret

    warnings = check_endpoint(services, endpoint)
    now = services.clock.now()
    secret = endpoint.signing_secret
    if secret is None and parse_channel(endpoint.url).kind == "webhook":
        secret = new_secret()
    fresh = endpoint.model_copy(update={"created_at": now, "updated_at": now,
                                        "health": type(endpoint.health)(),
                                        "signing_secret": secret})
    return services.registry.endpoints.create(fresh), warnings


def endpoint_body(services: Services, endpoint_id: str, body: Any) -> Any:
    """A PUT body with the stored URL filled in when it is left out or sent back masked
    (clients only ever see the masked form)."""
    if isinstance(body, Mapping):
        body = {"id": endpoint_id, **body}
        stored = services.registry.endpoints.get(endpoint_id)
        if stored is not None and body.get("url") in (None, stored.masked_url):
            body["url"] = stored.url
    return body


def replace_endpoint(services: Services, endpoint_id: str, endpoint: DeliveryEndpoint
                     ) -> tuple[DeliveryEndpoint, list[str]]:
    """Replace an endpoint, keeping its creation time and its delivery health."""
    same_id(endpoint_id, endpoint.id, "delivery endpoint")
    old = services.registry.endpoints.require(endpoint_id)
    warnings = check_endpoint(services, endpoint)
    new = endpoint.model_copy(update={
        "created_at": old.created_at, "health": old.health,
        "signing_secret": endpoint.signing_secret or old.signing_secret,
        "updated_at": services.clock.now()})
    return services.registry.endpoints.replace(new), warnings


# ---------------------------------------------------------------- n8n workflow control
WorkflowAction = Literal["start", "stop", "pause"]
_N8N_VERB: dict[str, str] = {"start": "activate", "stop": "deactivate", "pause": "deactivate"}


def _n8n_base(settings: Settings) -> tuple[str, str]:
    if not settings.n8n_api_url or settings.n8n_api_key is None:
        raise FeatureUnavailable(
            "n8n workflow control is not configured: set METRIC_STREAM_N8N_API_URL "
            "(e.g. http://127.0.0.1:5678) and METRIC_STREAM_N8N_API_KEY")
    base = settings.n8n_api_url.rstrip("/").removesuffix("/api/v1")
    return base, settings.n8n_api_key.get_secret_value()


def _n8n_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(body, Mapping) and isinstance(body.get("message"), str):
        return str(body["message"])[:300]
    return response.text[:300]


def n8n_workflow_action(settings: Settings, http: httpx.Client, workflow_id: str,
                        action: WorkflowAction) -> dict[str, Any]:
    """Activate (start) or deactivate (stop, pause) a workflow through n8n's REST API;
    n8n's answer. An unknown workflow is `NotFound`; any other n8n failure, or no
    answer, is `UpstreamError` quoting n8n's status and message."""
    import httpx

    base, key = _n8n_base(settings)
    verb = _N8N_VERB[action]
    url = f"{base}/api/v1/workflows/{quote(workflow_id, safe='')}/{verb}"
    shown = mask_url(base)
    try:
        response = http.post(url, headers={"X-N8N-API-KEY": key, "accept": "application/json"},
                             timeout=10)
    except httpx.HTTPError as exc:
        raise UpstreamError(f"n8n at {shown} did not answer: {type(exc).__name__}") from None
    if response.status_code == 404:
        raise NotFound(f"n8n has no workflow {workflow_id!r} (n8n answered 404: "
                       f"{_n8n_message(response)})", field="id")
    if not response.is_success:
        raise UpstreamError(f"n8n answered {response.status_code} to {verb} workflow "
                            f"{workflow_id!r}: {_n8n_message(response)}")
    try:
        answer = response.json()
    except ValueError:
        answer = None
    return answer if isinstance(answer, dict) else {}


@dataclass
class WorkflowOutcome:
    workflow_id: str
    action: WorkflowAction
    active: bool | None
    kpis_changed: list[str]


def control_workflow(services: Services, http: httpx.Client, workflow_id: str,
                     action: WorkflowAction) -> WorkflowOutcome:
    """start: activate the workflow in n8n, and make active again the registry entries
    that `pause` made inactive. stop: deactivate it; its KPIs stay active, so a job
    still triggers them and reports them failed. pause: deactivate it and make its
    KPIs (entries whose `source.workflowId` is this id) inactive, marked
    `metadata.pausedByWorkflow`, so that jobs skip them until `start`."""
    from metric_stream.models.base import ID_PATTERN, ID_RULE

    if not ID_PATTERN.fullmatch(workflow_id):
        raise InvalidInput(f"must be {ID_RULE}", field="id")
    answer = n8n_workflow_action(services.settings, http, workflow_id, action)
    changed: list[str] = []
    now = services.clock.now()
    for entry in services.registry.kpis.all():
        source = entry.source
        if not isinstance(source, N8nSource) or source.workflow_id != workflow_id:
            continue
        metadata = dict(entry.metadata)
        if action == "pause" and entry.active:
            metadata[PAUSED_BY] = workflow_id
            update: dict[str, Any] = {"active": False, "metadata": metadata}
        elif action == "start" and metadata.get(PAUSED_BY) == workflow_id:
            del metadata[PAUSED_BY]
            update = {"active": True, "metadata": metadata}
        else:
            continue
        services.registry.kpis.replace(entry.model_copy(update=update).stamped(now))
        changed.append(entry.id)
    active = answer.get("active")
    return WorkflowOutcome(workflow_id, action, active if isinstance(active, bool) else None,
                           changed)


# ---------------------------------------------------------------- metrics
def summary(values: Sequence[float], *, scale: float = 1.0, digits: int = 3
            ) -> dict[str, Any]:
    """count, median, p95 (nearest rank) and max of `values` times `scale`."""
    if not values:
        return {"count": 0, "median": None, "p95": None, "max": None}
    ordered = sorted(values)
    p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
    return {"count": len(ordered), "median": round(statistics.median(ordered) * scale, digits),
            "p95": round(p95 * scale, digits), "max": round(ordered[-1] * scale, digits)}


def job_figures(jobs: Sequence[Job]) -> dict[str, Any]:
    durations = [(j.finished_at - j.created_at).total_seconds() for j in jobs
                 if j.finished_at is not None]
    stages: dict[str, list[float]] = {}
    for job in jobs:
        for name, timing in job.stages.items():
            if timing.finished_at is not None:
                stages.setdefault(name, []).append(
                    (timing.finished_at - timing.started_at).total_seconds())
    by_status: dict[str, int] = {}
    for job in jobs:
        by_status[job.status.value] = by_status.get(job.status.value, 0) + 1
    return {"sampled": len(jobs), "byStatus": by_status,
            "completionS": summary(durations),
            "stagesS": {name: summary(values) for name, values in sorted(stages.items())}}


def llm_figures(services: Services, jobs: Sequence[Job]) -> dict[str, Any]:
    """The LLM side of the recent jobs, from each job's consolidated package: calls,
    tokens, failed chains and per-call latency (medians of the jobs' medians, the worst
    p95 and max)."""
    keys_ = [keys.consolidated(j.trace_id) for j in jobs]
    found = services.records.get_many(keys_) if keys_ else {}
    runs = []
    for key in keys_:
        item = found.get(key)
        llm = ((item or {}).get("analysis") or {}).get("llm") or {}
        if llm.get("status") not in (None, "off", "skipped"):
            runs.append(llm)
    if not runs:
        return {"jobs": 0, "latencyMs": None,
                "reason": "no recent job ran an LLM chain (no provider key is configured, "
                          "or no job has reached the analysis stage)"}
    latencies = [r["latencyMs"] for r in runs if r.get("latencyMs")]
    p50s = [lat["p50"] for lat in latencies]
    return {
        "jobs": len(runs),
        "calls": sum(int(r.get("calls") or 0) for r in runs),
        "inputTokens": sum(int(r.get("inputTokens") or 0) for r in runs),
        "outputTokens": sum(int(r.get("outputTokens") or 0) for r in runs),
        "chainsFailed": sum(int(r.get("chainsFailed") or 0) for r in runs),
        "latencyMs": {"median": round(statistics.median(p50s), 1),
                      "p95": max(lat["p95"] for lat in latencies),
                      "max": max(lat["max"] for lat in latencies)} if latencies else None,
    }


def delivery_figures(services: Services, jobs: Sequence[Job]) -> dict[str, Any]:
    """Delivery totals of the latest jobs (by status) and the endpoints' state."""
    from metric_stream.services.delivery import delivery_totals

    per_job = {}
    for job in jobs:
        totals = delivery_totals(services.deliveries.list(job.trace_id))
        if any(totals.values()):
            per_job[job.trace_id] = totals
    overall: dict[str, int] = {}
    for totals in per_job.values():
        for status, count in totals.items():
            overall[status] = overall.get(status, 0) + count
    # counted from the stored records as they are: thousands of endpoints need no models
    endpoints = [item for _, item in services.records.query(keys.ENDPOINT_REGISTRY)]
    health = [item.get("health") or {} for item in endpoints]
    return {"jobs": per_job, "totals": overall,
            "endpoints": {"total": len(endpoints),
                          "active": sum(1 for e in endpoints if e.get("active", True)),
                          "disabled": sum(1 for h in health if h.get("disabledReason")),
                          "failing": sum(1 for h in health
                                         if (h.get("consecutiveFailures") or 0) > 0)}}


def kpi_failure_rates(jobs: Sequence[Job]) -> dict[str, Any]:
    """Per KPI, over the jobs that settled it: how often it failed or timed out."""
    counts: dict[str, dict[str, int]] = {}
    for job in jobs:
        for kpi_id in job.kpi_ids:
            status = job.state_of(kpi_id).status
            if status is KpiStatus.PENDING:
                continue
            row = counts.setdefault(kpi_id, {"settled": 0, "failed": 0, "timedOut": 0})
            row["settled"] += 1
            row["failed"] += status is KpiStatus.FAILED
            row["timedOut"] += status is KpiStatus.TIMED_OUT
    kpis = {k: {**row, "rate": round((row["failed"] + row["timedOut"]) / row["settled"], 4)}
            for k, row in sorted(counts.items())}
    settled = sum(r["settled"] for r in counts.values())
    missed = sum(r["failed"] + r["timedOut"] for r in counts.values())
    return {"sampledJobs": len(jobs), "overall": round(missed / settled, 4) if settled else None,
            "kpis": kpis}


def _folder_size(root: Path) -> tuple[int, int]:
    total = files = 0
    for dirpath, _, names in os.walk(root):
        for name in names:
            try:
                total += (Path(dirpath) / name).stat().st_size
            except OSError:
                continue  # removed while walking
            files += 1
    return total, files


def storage_usage(settings: Settings) -> dict[str, Any]:
    if settings.backend != "embedded":
        return {"backend": settings.backend, "totalBytes": None,
                "reason": "DynamoDB and S3 sizes are read from CloudWatch "
                          "(TableSizeBytes, BucketSizeBytes), not measured here"}
    database = settings.database_path
    db_bytes = sum(p.stat().st_size for p in (database, database.with_name(database.name + "-wal"))
                   if p.is_file())
    blob_bytes, blob_files = _folder_size(settings.blob_root)
    return {"backend": "embedded", "databaseBytes": db_bytes, "blobBytes": blob_bytes,
            "blobFiles": blob_files, "totalBytes": db_bytes + blob_bytes}


def metrics(services: Services, handler_times: Mapping[str, tuple[int, list[float]]]
            ) -> dict[str, Any]:
    """The monitoring figures: queue depth per stage, recent job durations and KPI
    failure rates, handler execution times (this process), LLM latency, storage."""
    queues = {}
    for name in services.queue.names:
        depth = services.queue.depth(name)
        queues[name] = {"visible": depth.visible, "inFlight": depth.in_flight,
                        "deadLetters": depth.dead_letters}
    jobs = services.jobs.list(limit=METRICS_JOBS)
    handlers = {route: {"calls": calls, **summary(times, scale=1000, digits=2)}
                for route, (calls, times) in sorted(handler_times.items())}
    return {
        "generatedAt": utc_text(services.clock.now()),
        "queues": queues,
        "jobs": job_figures(jobs),
        "kpiFailureRates": kpi_failure_rates(jobs),
        "handlers": {"scope": "this server process since it started; the last 1000 calls "
                              "of each route, in milliseconds",
                     "routes": handlers},
        "llm": llm_figures(services, jobs),
        "deliveries": delivery_figures(services, jobs[:METRICS_DELIVERY_JOBS]),
        "storage": storage_usage(services.settings),
    }


__all__ = [
    "KpiDeleted",
    "RangeRead",
    "WorkflowOutcome",
    "check_url",
    "collecting_jobs",
    "control_workflow",
    "create_endpoint",
    "create_kpi",
    "create_schedule",
    "delete_kpi",
    "describe_cron",
    "document_of",
    "endpoint_body",
    "endpoint_view",
    "job_detail",
    "job_summary",
    "list_jobs",
    "metrics",
    "n8n_workflow_action",
    "read_range",
    "replace_endpoint",
    "replace_kpi",
    "replace_schedule",
    "run_now",
    "schedule_view",
    "update_config_section",
]

"""The bodies of the API's JSON answers, as the OpenAPI document describes them; a route
names its answer (`Route.answer`). Handlers build plain dicts: these models are never
instantiated, and this module is loaded only to build the document, so that the route
table stays cheap to import (every API cold start loads it).

An answer has camelCase keys and no key its model does not name. A key that is
sometimes left out but never null is typed `X | Absent = None`. tests/api/
test_openapi_responses.py checks real answers of every route against these.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, create_model
from pydantic.alias_generators import to_camel
from pydantic.json_schema import SkipJsonSchema

from metric_stream.models.base import Id, KpiId, TraceId
from metric_stream.models.chart import ChartFileFormat
from metric_stream.models.config import SystemConfig as SystemConfig  # answered as stored
from metric_stream.models.delivery import DeliveryEndpoint, DeliveryRecord
from metric_stream.models.job import Job, KpiState, StageTiming
from metric_stream.models.kpi import KpiDefinition
from metric_stream.models.report import DocumentRecord
from metric_stream.models.schedule import Schedule
from metric_stream.models.timeseries import DataPoint, ImportRowError, ImportStatus


class Answer(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


Absent = SkipJsonSchema[None]
A = TypeVar("A", bound=Answer)


def dumps(model: type[BaseModel], *, omit: Collection[str] = ()) -> Callable[[type[A]], type[A]]:
    """Class decorator for the answer that is `model` dumped (less the fields `omit`
    names) with the keys the decorated class declares added (or retyped)."""

    def build(answer: type[A]) -> type[A]:
        kept: dict[str, Any] = {name: (info.annotation, info)
                                for name, info in model.model_fields.items()
                                if name not in omit and name not in answer.model_fields}
        return create_model(answer.__name__, __base__=answer, __module__=answer.__module__,
                            __doc__=answer.__doc__ or model.__doc__, **kept)

    return build


# What `mask_url` leaves of a URL: an Apprise scheme alone, or an http(s) host with the
# path and query starred out.
MASKED_URL = (r"^(?:[A-Za-z][A-Za-z0-9+.-]*://\*\*\*"
              r"|https?://[^/?#@]*(?:/\*\*\*|/*)(?:\?\*\*\*)?)$")
MaskedUrl = Annotated[str, WithJsonSchema({"type": "string", "pattern": MASKED_URL})]


class Deleted(Answer):
    deleted: str


class OpenApiDocument(Answer):
    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]
    components: dict[str, Any]


# ---------------------------------------------------------------- ingestion
class ReplayedMessage(Answer):
    """What any ingestion route answers a signed message whose `webhook-id` it has
    processed already (`Authenticator.check`)."""

    status: Literal["duplicate"]
    webhook_id: str
    message: str


class CollectedInJob(Answer):
    """What a result did to its job (`known`: the job exists)."""

    known: bool
    collected: list[KpiId]
    already_settled: list[KpiId]
    not_in_job: list[KpiId]


class Ingested(Answer):
    """A result's points were stored (or were duplicates of stored ones); `message`
    when no job has its traceId (202)."""

    status: Literal["stored", "duplicate"]
    trace_id: TraceId
    stored: list[KpiId]
    duplicates: list[KpiId]
    job: CollectedInJob
    message: str | Absent = None


class FailedInJob(Answer):
    """What an error report did to its job (`known`: the job exists)."""

    known: bool
    failed: list[KpiId]
    already_settled: list[KpiId]
    not_in_job: list[KpiId]


class ErrorNoted(Answer):
    """`recorded` when KPIs were marked failed, else `ignored`."""

    status: Literal["recorded", "ignored"]
    trace_id: TraceId
    message: str
    job: FailedInJob


class Health(Answer):
    status: Literal["ok"]
    version: str
    backend: Literal["embedded", "aws"]
    time: datetime


# ---------------------------------------------------------------- registry
@dumps(KpiDefinition)
class KpiView(Answer):
    """A registry entry as answered: with the KPI ids it yields, and after a write the
    warnings (e.g. a webhook host not resolvable now)."""

    yields: list[KpiId]
    warnings: list[str] | Absent = None


class KpiList(Answer):
    kpis: list[KpiView]
    count: int


class KpiDeletion(Answer):
    """The deleted entry's id; `failedInJobs`: trace id -> the KPIs marked failed there;
    `warnings`: schedules and endpoints that still name it."""

    deleted: KpiId
    failed_in_jobs: dict[TraceId, list[KpiId]]
    warnings: list[str] | Absent = None


@dumps(ImportRowError, omit=("kpi_id", "import_id"))
class RefusedRow(Answer):
    """A refused CSV row: its number, its timestamp text, the reason and the line."""


@dumps(ImportStatus)
class ImportAnswer(Answer):
    """The import's counts, and its first refused rows with their reasons."""

    errors: list[RefusedRow]


class WorkflowChanged(Answer):
    """`active`: the workflow's state as n8n answered it (null if n8n did not say);
    `kpisChanged`: the registry entries made active or inactive."""

    workflow_id: str
    action: Literal["start", "stop", "pause"]
    active: bool | None
    kpis_changed: list[KpiId]


# ---------------------------------------------------------------- schedules
@dumps(Schedule)
class ScheduleView(Answer):
    """A schedule as answered: its next 5 fire times (UTC; none while inactive) and its
    cron in words."""

    next_runs: list[datetime]
    description: str


class ScheduleList(Answer):
    schedules: list[ScheduleView]
    count: int


class Fired(Answer):
    """A schedule that came due: the job it started, or why it could not."""

    schedule_id: str
    due: datetime
    trace_id: str | None
    error: str | None


class Ticked(Answer):
    fired: list[Fired]
    recovered: list[str]
    alerts: list[str]


# ---------------------------------------------------------------- jobs
class KpiCounts(Answer):
    """How many of the job's KPIs are in each status (named as `KpiStatus` names them)."""

    pending: int
    collected: int
    failed: int
    timed_out: int = Field(alias="timed_out")


@dumps(Job, omit=("kpis", "stages", "lease_owner", "lease_until", "lease_stage"))
class JobSummary(Answer):
    """A job without its per-KPI states: the counts, and how long it took (null until
    it finished)."""

    kpi_counts: KpiCounts
    duration_s: float | None


class JobList(Answer):
    jobs: list[JobSummary]
    count: int


@dumps(StageTiming)
class StageView(Answer):
    duration_s: float | None


@dumps(DeliveryRecord)
class DeliveryView(Answer):
    """One endpoint's delivery of the job; the endpoint's name and masked URL while it
    exists."""

    endpoint_name: str | Absent = None
    url: MaskedUrl | Absent = None


@dumps(DocumentRecord)
class DocumentView(Answer):
    download_path: str


class JobDetail(JobSummary):
    """A job with every KPI's state (errors whole), its stage timings, its deliveries,
    its document, how its LLM chains went and the channel messages it carries."""

    kpis: dict[KpiId, KpiState]
    stages: dict[str, StageView]
    fan_in_wait_s: float | None
    missing: list[KpiId]
    deliveries: list[DeliveryView]
    document: DocumentView | None
    llm: dict[str, Any] | None
    messages: list[str] | None


class Trigger(Answer):
    entry_id: Id
    ok: bool
    detail: str


class JobStarted(Answer):
    job: JobDetail
    triggers: list[Trigger]


class Redelivered(Answer):
    """The counts of a delivery run; `disabled`: endpoints it disabled."""

    trace_id: TraceId
    planned: int
    sent: int
    failed: int
    skipped: int
    already_sent: int
    disabled: list[str]
    seconds: float


# ---------------------------------------------------------------- data and charts
@dumps(DataPoint, omit=("kpi_id",))
class PointView(Answer):
    """One point: its timestamp, value, metadata, and the job and source it came from."""


class Series(Answer):
    """The points in range, oldest first; `from` and `to` as asked (null: open)."""

    kpi_id: KpiId
    start: datetime | None = Field(alias="from")
    end: datetime | None = Field(alias="to")
    count: int
    truncated: bool
    points: list[PointView]


class ChartView(Answer):
    """A stored chart: where to fetch it (`url`), and `fallback` with the `reason` when it
    could not be drawn after `attempts` tries."""

    chart_id: Id
    kpi_id: KpiId
    format: ChartFileFormat
    content_type: str
    url: str
    fallback: bool
    attempts: int
    created_at: datetime
    trace_id: TraceId | Absent = None
    reason: str | Absent = None


class ItemError(Answer):
    code: str
    message: str
    field: str | Absent = None


class ItemDrawn(Answer):
    index: int
    ok: Literal[True]
    chart: ChartView


class ItemRefused(Answer):
    index: int
    ok: Literal[False]
    error: ItemError


class BatchDrawn(Answer):
    """Per item, in order."""

    results: list[ItemDrawn | ItemRefused]


class ChartHealth(Answer):
    """`ok` when every format renders and the blob store round-trips a probe file, else
    `degraded` with `errors` per format and the blob store's failure in `blobStore`."""

    status: Literal["ok", "degraded"]
    renderer: str
    formats: list[str]
    render_ms: dict[str, float]
    blob_store: str
    errors: dict[str, str] | Absent = None


# ---------------------------------------------------------------- delivery endpoints
@dumps(DeliveryEndpoint, omit=("signing_secret",))
class EndpointView(Answer):
    """An endpoint as answered: its URL masked, never its signing secret (`signed` says
    whether it has one); after a write, the warnings."""

    url: MaskedUrl
    scheme: str
    signed: bool
    warnings: list[str] | Absent = None


class CreatedEndpoint(EndpointView):
    """A new endpoint, with its signing secret (a generic webhook's), shown this once."""

    signing_secret: str | Absent = None


class EndpointList(Answer):
    endpoints: list[EndpointView]
    count: int


class EndpointTested(Answer):
    """A test send's outcome; `error` alone (with no attempt) when the URL's channel
    cannot be read."""

    endpoint_id: str
    url: MaskedUrl
    delivered: bool
    attempts: int
    error: str | None
    channel: str | Absent = None
    status: int | None = None
    gone: bool | Absent = None
    elapsed_ms: float | Absent = None


# ---------------------------------------------------------------- monitoring
class Figures(Answer):
    """count, median, p95 and max of some durations (null with no sample)."""

    count: int
    median: float | None
    p95: float | None
    max: float | None


class QueueDepth(Answer):
    visible: int
    in_flight: int
    dead_letters: int


class JobFigures(Answer):
    """Over the newest jobs: how many are in each status, how long they took (seconds),
    in all and per stage."""

    sampled: int
    by_status: dict[str, int]
    completion_s: Figures
    stages_s: dict[str, Figures]


class KpiFailures(Answer):
    settled: int
    failed: int
    timed_out: int
    rate: float


class FailureRates(Answer):
    """Per KPI, over the newest jobs that settled it: how often it failed or timed out."""

    sampled_jobs: int
    overall: float | None
    kpis: dict[str, KpiFailures]


class RouteFigures(Figures):
    calls: int


class HandlerFigures(Answer):
    scope: str
    routes: dict[str, RouteFigures]


class LlmLatency(Answer):
    median: float
    p95: float
    max: float


class LlmFigures(Answer):
    """The LLM side of the newest jobs that ran a chain (latency per call, ms)."""

    jobs: int
    calls: int
    input_tokens: int
    output_tokens: int
    chains_failed: int
    latency_ms: LlmLatency | None


class NoLlm(Answer):
    """No recent job ran an LLM chain; `reason` says why that may be."""

    jobs: Literal[0]
    latency_ms: None
    reason: str


class EndpointCounts(Answer):
    total: int
    active: int
    disabled: int
    failing: int


class DeliveryFigures(Answer):
    """Delivery counts by status of the newest jobs (per trace id, and in all), and the
    endpoints' state."""

    jobs: dict[str, dict[str, int]]
    totals: dict[str, int]
    endpoints: EndpointCounts


class EmbeddedStorage(Answer):
    backend: Literal["embedded"]
    database_bytes: int
    blob_bytes: int
    blob_files: int
    total_bytes: int


class UnmeasuredStorage(Answer):
    """Storage that is measured elsewhere (CloudWatch), as `reason` says."""

    backend: str
    total_bytes: None
    reason: str


class Metrics(Answer):
    generated_at: datetime
    queues: dict[str, QueueDepth]
    jobs: JobFigures
    kpi_failure_rates: FailureRates
    handlers: HandlerFigures
    llm: LlmFigures | NoLlm
    deliveries: DeliveryFigures
    storage: EmbeddedStorage | UnmeasuredStorage

"""Charts as stored files: render, put in the blob store with the configured retries,
and stand a fallback in for a chart that cannot be drawn (SPEC, Configuration).

Every chart, a job's or an ad-hoc one, ends as a `chart:{chartId}` record pointing at
`charts/{chartId}.{png|svg|txt}`; storing the same chart id again replaces both.
matplotlib is only loaded when a chart is drawn (`charts.render` imports it lazily).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import Field

from metric_stream.bootstrap import Services
from metric_stream.charts.render import (
    ChartFormat,
    ChartSpec,
    chart_for_entry,
    chart_for_kpi,
    fallback_chart,
    render_chart,
)
from metric_stream.errors import InvalidInput, MetricStreamError, NotFound
from metric_stream.models.base import ID_PATTERN, ID_RULE, AdminModel, KpiId, Timestamp, iso, parse
from metric_stream.models.chart import CONTENT_TYPES, EXTENSIONS, ChartFileFormat, ChartRecord
from metric_stream.models.config import FallbackConfig, RetryPolicy
from metric_stream.models.kpi import ChartType, CollectorSource, KpiDefinition
from metric_stream.models.timeseries import DataPoint

log = logging.getLogger("metric_stream.charts")

BLOB_PREFIX = "charts/"
HEALTH_PROBE_PREFIX = f"{BLOB_PREFIX}.health-probe-"
MAX_ID_CHARS = 128
DEFAULT_DAYS = 365
MAX_DAYS = 3650
MAX_POINTS = 20_000  # per KPI: the newest in range (10 years of daily points fit twice)
MAX_REASON_CHARS = 2000

Renderer = Callable[[ChartSpec, ChartFormat], bytes]
"""Draws a spec in a format (`render_chart` by default); ValueError: it never will."""


# ---------------------------------------------------------------- ids and keys
def _check_id(value: str, field: str) -> str:
    if not ID_PATTERN.fullmatch(value):
        raise InvalidInput(f"must be {ID_RULE}", field=field)
    return value


def job_chart_id(trace_id: str, kpi_id: str) -> str:
    """`{traceId}.{kpiId}.{hash}`: a job's chart of a KPI always has the same id. The
    hash of the exact pair keeps apart pairs that read alike (`a.b` + `c`, `a` +
    `b.c`) and stays when a long pair is cut to fit 128 characters."""
    _check_id(trace_id, "traceId")
    _check_id(kpi_id, "kpiId")
    digest = hashlib.sha256(f"{trace_id}\n{kpi_id}".encode()).hexdigest()[:12]
    readable = f"{trace_id}.{kpi_id}"[: MAX_ID_CHARS - len(digest) - 1]
    return f"{readable}.{digest}"


def new_chart_id(now: datetime) -> str:
    """`chart_YYYYMMDD_HHMMSS_<8 hex>` for an ad-hoc chart: sortable by time, unique by
    its random tail."""
    return f"chart_{now.astimezone(UTC):%Y%m%d_%H%M%S}_{secrets.token_hex(4)}"


def chart_blob_key(chart_id: str, fmt: ChartFileFormat) -> str:
    return f"{BLOB_PREFIX}{chart_id}.{EXTENSIONS[fmt]}"


def _describe(error: BaseException) -> str:
    text = getattr(error, "message", None) or str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _shortened(text: str) -> str:
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"


# ---------------------------------------------------------------- storing
def store_chart(
    services: Services,
    spec: ChartSpec,
    *,
    fmt: ChartFormat,
    chart_id: str,
    kpi_id: str,
    trace_id: str | None = None,
    policy: RetryPolicy,
    fallback: FallbackConfig,
    sleep: Callable[[float], None] = time.sleep,
    params: Mapping[str, Any] | None = None,
    render: Renderer | None = None,
) -> ChartRecord:
    """Draw `spec` (with `render`, by default matplotlib's `render_chart`) and store it
    as chart `chart_id`, replacing what was stored under that id.

    Drawing and storing are tried `1 + policy.retries` times, waiting
    `policy.delay(n)` before retry n (a chart drawn once is not drawn again when only
    the blob store failed). A spec with nothing to draw, or one the renderer refuses
    (ValueError), fails the same way every time, so it goes straight to the fallback.
    After the last try, the configured fallback (image in `fmt`, or text) is stored
    instead and the record says why.
    """
    _check_id(chart_id, "chartId")
    _check_id(kpi_id, "kpiId")
    if trace_id is not None:
        _check_id(trace_id, "traceId")
    if fmt not in ("png", "svg"):
        raise InvalidInput("must be 'png' or 'svg'", field="format")
    previous = services.charts.get(chart_id)
    key = chart_blob_key(chart_id, fmt)
    if spec.is_empty:  # no try can change that
        stored, attempts, reason = False, 0, _nothing_to_draw(spec)
    else:
        stored, attempts, reason = _draw_and_put(services, spec, fmt, key, chart_id,
                                                 render or _default_render, policy, sleep)

    file_format: ChartFileFormat = fmt
    if not stored:
        file_format, data, reason = _fallback_file(spec, fallback, reason, fmt)
        key = chart_blob_key(chart_id, file_format)
        services.blobs.put(key, data, content_type=CONTENT_TYPES[file_format])
    record = ChartRecord(
        chart_id=chart_id,
        kpi_id=kpi_id,
        trace_id=trace_id,
        format=file_format,
        content_type=CONTENT_TYPES[file_format],
        blob_key=key,
        fallback=not stored,
        reason=None if stored else _shortened(reason),
        attempts=attempts,
        created_at=services.clock.now(),
        params=dict(params or {}),
    )
    services.charts.put(record)
    if previous is not None and previous.blob_key != key:
        _forget_blob(services, previous.blob_key)
    return record


def _draw_and_put(services: Services, spec: ChartSpec, fmt: ChartFormat, key: str,
                  chart_id: str, draw: Renderer, policy: RetryPolicy,
                  sleep: Callable[[float], None]) -> tuple[bool, int, str]:
    """Whether the chart was stored, after how many tries, and the last failure."""
    data: bytes | None = None
    reason = ""
    for attempt in range(1, policy.retries + 2):
        if attempt > 1:
            sleep(policy.delay(attempt - 1))
        try:
            if data is None:
                data = draw(spec, fmt)
        except ValueError as exc:  # the renderer refuses this spec: so will every retry
            return False, attempt, str(exc)
        except Exception as exc:
            reason = f"drawing failed: {_describe(exc)}"
            log.warning("chart %s, try %d: %s", chart_id, attempt, reason)
            continue
        try:
            services.blobs.put(key, data, content_type=CONTENT_TYPES[fmt])
        except Exception as exc:
            reason = f"storing failed: {_describe(exc)}"
            log.warning("chart %s, try %d: %s", chart_id, attempt, reason)
            continue
        return True, attempt, ""
    return False, policy.retries + 1, reason


def _default_render(spec: ChartSpec, fmt: ChartFormat) -> bytes:
    return render_chart(spec, fmt=fmt)


def _nothing_to_draw(spec: ChartSpec) -> str:
    what = "OHLC candles" if spec.kind == "candlestick" else "points"
    return f"chart {spec.title!r} has no {what} to draw"


def _fallback_file(spec: ChartSpec, config: FallbackConfig, reason: str, fmt: ChartFormat
                   ) -> tuple[ChartFileFormat, bytes, str]:
    """The fallback's format, bytes and the reason to record. When even the fallback
    image cannot be drawn (the renderer itself is broken), the text fallback is used."""
    if config.chart == "image":
        try:
            return fmt, fallback_chart(spec, config, reason, fmt), reason
        except Exception as exc:
            reason = f"{reason}; the fallback image failed too: {_describe(exc)}"
            log.warning("chart %r: %s", spec.title, reason)
            config = config.model_copy(update={"chart": "text"})
    return "text", fallback_chart(spec, config, reason, fmt), reason


def _forget_blob(services: Services, key: str) -> None:
    """Delete the file a replaced record pointed to (another format or a fallback);
    a leftover file is harmless, so a failure here is only logged."""
    try:
        services.blobs.delete(key)
    except MetricStreamError as exc:
        log.warning("could not delete the replaced chart file %s: %s", key, exc.message)


# ---------------------------------------------------------------- on demand
class ChartRequest(AdminModel):
    """Draw one KPI's chart now. `kpiId` is a KPI id, or the entry id of a multi-KPI
    source (one line per KPI it yields, as `multi-line`). The range is `from`..`to`
    (both ISO 8601 with a zone; `to` defaults to now), or the last `days` days
    (default 365) up to `to`. `type` overrides the KPI's chart type."""

    kpi_id: KpiId
    format: ChartFormat = "png"
    type: ChartType | None = None
    start: Timestamp | None = Field(default=None, alias="from")
    end: Timestamp | None = Field(default=None, alias="to")
    days: Annotated[int, Field(strict=True, ge=1, le=MAX_DAYS)] | None = None


def chart_request(body: Any) -> ChartRequest:
    """A generate body as a `ChartRequest`; `InvalidInput` names the wrong field (unknown
    fields are refused). Whether the KPI exists is `generate_chart`'s to say (404)."""
    request = parse(ChartRequest, body)
    if request.start is not None and request.days is not None:
        raise InvalidInput("give either `from` or `days`, not both", field="days")
    if request.start is not None and request.end is not None and request.start > request.end:
        raise InvalidInput("must not be after `to`", field="from")
    return request


def _chart_source(services: Services, kpi_id: str) -> tuple[KpiDefinition, list[str]]:
    """The registry entry to chart and the KPI ids to read: a yielded KPI id alone, or
    every KPI of a multi-KPI entry named by its own id."""
    entry_id = services.registry.kpis.resolve([kpi_id]).get(kpi_id)
    entry = services.registry.kpis.get(entry_id or kpi_id)
    if entry is None or (entry_id is None and not entry.kpi_ids):
        raise NotFound(f"KPI {kpi_id!r} is not in the registry", field="kpiId")
    return entry, [kpi_id] if entry_id is not None else entry.yields


def _is_demo(entry: KpiDefinition, points: Sequence[DataPoint]) -> bool:
    """Demo data is marked `metadata.demo` (collectors.demo), on the entry or the point."""
    source = entry.source
    return (entry.metadata.get("demo") is True
            or (isinstance(source, CollectorSource) and source.collector == "demo")
            or any(p.metadata.get("demo") is True for p in points))


def _newest_points(services: Services, kpi_id: str, start: datetime, end: datetime | None
                   ) -> list[DataPoint]:
    newest = services.timeseries.points(kpi_id, start=start, end=end, limit=MAX_POINTS,
                                        descending=True)
    return newest[::-1]


def generate_chart(services: Services, body: ChartRequest | Any, *,
                   sleep: Callable[[float], None] = time.sleep) -> ChartRecord:
    """Draw and store a KPI's chart from its stored points, with the system config's
    chart retries and fallback. `NotFound` when the KPI is not in the registry."""
    request = body if isinstance(body, ChartRequest) else chart_request(body)
    entry, kpi_ids = _chart_source(services, request.kpi_id)
    whole_entry = kpi_ids != [request.kpi_id]
    if whole_entry and request.type not in (None, "multi-line"):
        raise InvalidInput(f"{request.kpi_id!r} is a multi-KPI source, charted as "
                           f"multi-line; name one of its KPIs {kpi_ids} for a {request.type} "
                           "chart", field="type")
    chart_type = "multi-line" if whole_entry else request.type
    if chart_type is not None:
        entry = entry.model_copy(update={"analysis_config": entry.analysis_config.model_copy(
            update={"chart_type": chart_type})})
    now = services.clock.now()
    start = request.start or (request.end or now) - timedelta(days=request.days or DEFAULT_DAYS)
    points = {k: _newest_points(services, k, start, request.end) for k in kpi_ids}
    everything = [p for series in points.values() for p in series]
    demo = _is_demo(entry, everything)
    if whole_entry:
        spec = chart_for_entry(entry, points, demo=demo)
    else:
        spec = chart_for_kpi(entry, request.kpi_id, points[request.kpi_id], demo=demo)
    params = {**request.to_wire(), "from": iso(start), "points": len(everything),
              "kind": spec.kind, "demo": demo}
    if request.end is not None:
        params["to"] = iso(request.end)
    config = services.config.get()
    return store_chart(services, spec, fmt=request.format, chart_id=new_chart_id(now),
                       kpi_id=request.kpi_id, policy=config.retry.chart,
                       fallback=config.fallback, sleep=sleep, params=params)


def chart_file(services: Services, chart_id: str) -> tuple[ChartRecord, bytes]:
    """A stored chart's record and bytes; `NotFound` when there is no such chart."""
    record = services.charts.get(chart_id) if ID_PATTERN.fullmatch(chart_id) else None
    if record is None:
        raise NotFound(f"chart {chart_id!r} does not exist", field="chartId")
    try:
        return record, services.blobs.get(record.blob_key)
    except NotFound:
        raise NotFound(f"chart {chart_id!r} is recorded but its file is missing from the "
                       "blob store", field="chartId") from None


# ---------------------------------------------------------------- health
_PROBE_START = datetime(2026, 1, 1, tzinfo=UTC)
_PROBE_SPEC = ChartSpec(
    title="health probe",
    series={"probe": [(_PROBE_START + timedelta(days=d), v) for d, v in enumerate((1, 3, 2))]},
    moving_averages=(),
)
_HEALTH_FORMATS: tuple[ChartFormat, ...] = ("png", "svg")
_MAGIC: dict[ChartFormat, bytes] = {"png": b"\x89PNG\r\n\x1a\n", "svg": b"<svg"}


def _renderer() -> str:
    try:
        import matplotlib
    except ImportError as exc:
        return f"matplotlib unavailable: {exc}"
    return f"matplotlib {matplotlib.__version__}"


def _blob_store_check(services: Services) -> str:
    """Put, read back and delete a small probe file (its own key: concurrent checks
    do not see each other's probe)."""
    key = f"{HEALTH_PROBE_PREFIX}{secrets.token_hex(6)}"
    payload = b"metric-stream chart health probe"
    try:
        services.blobs.put(key, payload, content_type="text/plain")
        try:
            if services.blobs.get(key) != payload:
                return "the probe file read back different bytes"
        finally:
            services.blobs.delete(key)
    except Exception as exc:
        return _describe(exc)
    return "ok"


def chart_health(services: Services) -> dict[str, Any]:
    """Draw a tiny chart in each format and round-trip a probe file through the blob
    store: `status` is `ok` when all of it worked, else `degraded` (with `errors`)."""
    renderer = _renderer()
    formats: list[str] = []
    render_ms: dict[str, float] = {}
    errors: dict[str, str] = {}
    for fmt in _HEALTH_FORMATS:
        started = time.perf_counter()
        try:
            data = render_chart(_PROBE_SPEC, fmt=fmt)
            if _MAGIC[fmt] not in data[:512]:
                raise ValueError(f"the renderer's output is not {fmt.upper()}")
        except Exception as exc:
            errors[fmt] = _describe(exc)
            continue
        render_ms[fmt] = round((time.perf_counter() - started) * 1000, 1)
        formats.append(fmt)
    blob_store = _blob_store_check(services)
    healthy = len(formats) == len(_HEALTH_FORMATS) and blob_store == "ok"
    answer: dict[str, Any] = {"status": "ok" if healthy else "degraded", "renderer": renderer,
                              "formats": formats, "renderMs": render_ms, "blobStore": blob_store}
    if errors:
        answer["errors"] = errors
    return answer

"""The packaging stage (SPEC step 5): the job's PDF report and its channel messages.

The PDF goes to the blob store (`reports/YYYY/MM/{traceId}.pdf`, an idempotent put);
the document record and the consolidated package carrying the messages are the
stage's done-records, committed with the job's move to delivery.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from metric_stream.bootstrap import Services
from metric_stream.charts.render import ChartSpec, chart_for_kpi
from metric_stream.errors import NotFound
from metric_stream.models.job import Job, KpiStatus
from metric_stream.models.kpi import CollectorSource, KpiDefinition
from metric_stream.models.report import ConsolidatedPackage, DocumentRecord, KpiPackage
from metric_stream.ports import Op, Put
from metric_stream.report.content import (
    KpiSection,
    LlmReading,
    MissingKpi,
    ReportData,
    SourceLine,
    StageTime,
)
from metric_stream.services.analysis import HISTORY, display_name, report_charts_key
from metric_stream.storage import keys
from metric_stream.storage.collection import to_item

log = logging.getLogger(__name__)

LINK_LIFETIME = timedelta(days=7)  # the longest a SigV4 pre-signed URL may live


def report_key(job: Job) -> str:
    return f"reports/{job.created_at:%Y/%m}/{job.trace_id}.pdf"


def package_job(services: Services, job: Job) -> Sequence[Op]:
    from metric_stream.report.messages import build_messages
    from metric_stream.report.pdf import render_pdf

    consolidated = services.packages.consolidated(job.trace_id)
    if consolidated is None:
        raise NotFound(f"job {job.trace_id} has no consolidated package: the analysis "
                       "stage has not completed", field="traceId")
    report = report_data(services, job, consolidated)
    rendered = render_pdf(report)
    key = report_key(job)
    services.blobs.put(key, rendered.data, content_type="application/pdf")
    _forget_report_charts(services, job)
    url = document_url(services, job.trace_id, key)
    now = services.clock.now()
    document = DocumentRecord(trace_id=job.trace_id, blob_key=key, size_bytes=len(rendered.data),
                              pages=rendered.pages, url=url, demo=job.demo, created_at=now)
    messages = build_messages(summary_of(report, url))
    updated = consolidated.model_copy(update={"messages": messages, "updated_at": now})
    log.info("job %s: report %s (%d pages, %d bytes) and %d channel message(s)", job.trace_id,
             key, rendered.pages, len(rendered.data), len(messages))
    return [Put(keys.document(job.trace_id), to_item(document)),
            Put(keys.consolidated(job.trace_id), to_item(updated))]


def document_url(services: Services, trace_id: str, key: str) -> str:
    """Where the report is read: the public API when one is configured, else the blob
    store's own URL (pre-signed S3, or the file)."""
    if services.settings.public_url and services.settings.backend == "embedded":
        return f"{services.settings.public_url}/api/documents/{trace_id}"
    return services.blobs.url(key, expires_in=LINK_LIFETIME)


def source_text(entry: KpiDefinition) -> str:
    if isinstance(entry.source, CollectorSource):
        return f"built-in collector {entry.source.collector}"
    return f"n8n workflow {entry.source.workflow_id or ''}".strip()


def missing_reason(job: Job, kpi_id: str) -> str:
    state = job.state_of(kpi_id)
    if state.status is KpiStatus.TIMED_OUT:
        return "timed out: no value arrived before the job's fan-in deadline"
    error = state.error or {}
    message = error.get("message") or error.get("reason") or error.get("error")
    return f"failed: {message}" if message else "failed (no reason given)"


def report_data(services: Services, job: Job, consolidated: ConsolidatedPackage) -> ReportData:
    config = services.config.get()
    sources = services.registry.kpi_sources()
    packages = {p.kpi_id: p for p in services.packages.list(job.trace_id)}
    charts = report_charts(services, job)
    sections = [section_of(services, job, packages[k], sources.get(k), config.fallback.chart_text,
                           charts)
                for k in job.kpi_ids if k in packages]
    analysis = consolidated.analysis or {}
    llm = analysis.get("llm") or {}
    entries = {entry.id: entry for entry in sources.values()}
    return ReportData(
        trace_id=job.trace_id, created_at=job.created_at,
        status="partial" if job.partial else "complete", sections=sections, demo=job.demo,
        missing=[MissingKpi(k, display_name(sources.get(k), k), missing_reason(job, k))
                 for k in job.missing],
        disclaimer=config.lifecycle.partial_disclaimer,
        consolidated=consolidated.analytics,
        consolidated_llm=LlmReading.from_wire(analysis.get("overview")),
        llm_status=llm.get("status", "off"),
        llm_usage={k: llm[k] for k in ("calls", "inputTokens", "outputTokens") if k in llm},
        timings=[StageTime(name, t.started_at, t.finished_at) for name, t in job.stages.items()],
        sources=[SourceLine(e.name, source_text(e), e.yields) for e in entries.values()
                 if any(k in job.kpi_ids for k in e.yields)],
        names={k: display_name(sources.get(k), k) for k in job.kpi_ids},
        units={k: sources[k].unit for k in job.kpi_ids if k in sources},
    )


def report_charts(services: Services, job: Job) -> dict[str, ChartSpec | None]:
    """The chart specs the analysis stage built for the report; {} when they cannot be
    read (then each section's points are read again)."""
    from metric_stream.charts.wire import specs_from_json

    try:
        data = services.blobs.get(report_charts_key(job.trace_id))
    except NotFound:
        return {}
    try:
        return specs_from_json(data)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("job %s: unreadable chart specs (%s); reading the points again",
                    job.trace_id, exc)
        return {}


def _forget_report_charts(services: Services, job: Job) -> None:
    try:
        services.blobs.delete(report_charts_key(job.trace_id))
    except Exception:  # left behind, harmless: a retried packaging reads the points
        log.warning("job %s: chart specs not deleted", job.trace_id, exc_info=True)


def section_of(services: Services, job: Job, package: KpiPackage, entry: KpiDefinition | None,
               chart_text: str, charts: Mapping[str, ChartSpec | None] | None = None
               ) -> KpiSection:
    kpi_id = package.kpi_id
    if charts is not None and kpi_id in charts:
        chart = charts[kpi_id]
    else:
        points = services.timeseries.points(kpi_id, start=job.created_at - HISTORY,
                                            end=job.created_at + timedelta(days=1))
        chart = chart_for_kpi(entry, kpi_id, points, demo=job.demo) if entry and points else None
    return KpiSection(
        kpi_id=kpi_id, name=display_name(entry, kpi_id), value=package.value,
        timestamp=package.timestamp, analytics=package.analytics or {},
        unit=entry.unit if entry else "", description=entry.description if entry else "",
        source=source_text(entry) if entry else "", chart=chart,
        chart_note=chart_text,  # shown when there is no chart, or it cannot be drawn
        llm=LlmReading.from_wire(package.analysis),
    )


def summary_of(report: ReportData, url: str | None) -> Any:
    from metric_stream.report.summary import build_summary

    return build_summary(
        trace_id=report.trace_id, created_at=report.created_at, status=report.status,
        demo=report.demo, analytics=report.consolidated, names=report.names,
        units=report.units, latest=_latest(report.sections),
        missing={m.kpi_id: m.reason for m in report.missing},
        headline=(report.consolidated_llm.summary
                  if report.consolidated_llm and report.consolidated_llm.status == "ok"
                  else None),
        llm_status=report.llm_status, report_url=url,
        disclaimer=report.disclaimer if report.missing else None,
    )


def _latest(sections: Sequence[KpiSection]) -> Mapping[str, float]:
    return {s.kpi_id: s.value for s in sections}

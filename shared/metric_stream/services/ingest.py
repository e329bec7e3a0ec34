"""Ingestion: the one path every KPI value takes into metric-stream (n8n callbacks,
built-in collectors and the demo source alike).

An accepted result appends its point(s), creates the job's package for each KPI and
marks each KPI collected in its job, all in one atomic write; a replay changes
nothing; another value for a stored timestamp is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from metric_stream.bootstrap import Services
from metric_stream.errors import ConditionFailed, NotFound, StorageError
from metric_stream.models.base import parse
from metric_stream.models.job import KpiStatus
from metric_stream.models.kpi import N8nSource
from metric_stream.models.report import KpiPackage
from metric_stream.models.timeseries import DataPoint
from metric_stream.models.wire import (
    ErrorReport,
    KpiResult,
    MultiKpiResult,
    extras_of,
    parse_result,
)
from metric_stream.ports import Absent, Item, Key, Op, Put
from metric_stream.storage import keys
from metric_stream.storage.collection import to_item

_RACE_RETRIES = 5


@dataclass
class JobEffect:
    """What a result or error report did to its job."""

    known: bool = False
    settled: list[str] = field(default_factory=list)
    already_settled: list[str] = field(default_factory=list)
    not_in_job: list[str] = field(default_factory=list)


@dataclass
class IngestOutcome:
    trace_id: str
    stored: list[str]
    duplicates: list[str]
    job: JobEffect

    @property
    def status(self) -> str:
        return "stored" if self.stored else "duplicate"

    def to_wire(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "traceId": self.trace_id,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "job": _job_wire(self.job, "collected"),
        }


@dataclass
class ErrorOutcome:
    trace_id: str
    message: str
    job: JobEffect

    def to_wire(self) -> dict[str, Any]:
        return {"status": "recorded" if self.job.settled else "ignored",
                "traceId": self.trace_id, "message": self.message,
                "job": _job_wire(self.job, "failed")}


def _job_wire(effect: JobEffect, verb: str) -> dict[str, Any]:
    return {"known": effect.known, verb: effect.settled,
            "alreadySettled": effect.already_settled, "notInJob": effect.not_in_job}


def _require_known(services: Services, kpi_ids: list[str], field_name: str,
                   prefetched: Mapping[Key, Item] | None = None) -> None:
    known = services.registry.kpis.resolve(kpi_ids, prefetched)
    unknown = [k for k in kpi_ids if k not in known]
    if unknown:
        raise NotFound(f"KPI id(s) {unknown} are not in the registry", field=field_name)


def ingest_result(services: Services, payload: Mapping[str, Any], *,
                  source: str = "n8n") -> IngestOutcome:
    """Validate a result payload (single or multi-KPI) and ingest it."""
    return ingest(services, parse_result(payload), source=source)


def ingest(services: Services, result: KpiResult | MultiKpiResult, *,
           source: str = "n8n") -> IngestOutcome:
    values = result.values
    kpi_ids = list(values)
    now = services.clock.now()
    demo = bool((result.metadata or {}).get("demo"))
    points = []
    for kpi_id, value in values.items():
        data = result.data if isinstance(result, KpiResult) else result.data[kpi_id]
        metadata = extras_of(data)
        if demo:
            metadata["demo"] = True
        # every field comes from the validated result: no second validation on the hot path
        points.append(DataPoint.model_construct(
            kpi_id=kpi_id, timestamp=result.timestamp, value=value, metadata=metadata,
            trace_id=result.trace_id, source=source))
    chart = result.chart if isinstance(result, KpiResult) else None

    # One batch read for the registry check, the job's states and the stored points.
    catalog, jobs, series = services.registry.kpis, services.jobs, services.timeseries
    prefetched: Mapping[Key, Item] | None = services.records.get_many([
        *catalog.resolve_keys(kpi_ids), *jobs.state_keys(result.trace_id, kpi_ids),
        *series.point_keys(points)])
    _require_known(services, kpi_ids, "kpiId" if isinstance(result, KpiResult) else "kpiIds",
                   prefetched)
    for _ in range(_RACE_RETRIES):
        known, states = jobs.kpi_states(result.trace_id, kpi_ids, prefetched)
        effect = JobEffect(known=known)
        also: list[Op] = []
        for p in points:
            state = states.get(p.kpi_id)
            if not known:
                continue
            if state is None:
                effect.not_in_job.append(p.kpi_id)
            elif state is not KpiStatus.PENDING:
                effect.already_settled.append(p.kpi_id)
            else:
                effect.settled.append(p.kpi_id)
                package = KpiPackage.model_construct(
                    trace_id=result.trace_id, kpi_id=p.kpi_id, kpi_type=result.kpi_type,
                    timestamp=result.timestamp, value=p.value, point_metadata=p.metadata,
                    chart=chart, metadata=result.metadata or {}, created_at=now)
                also.append(Put(keys.package(result.trace_id, p.kpi_id), to_item(package),
                                Absent()))
                also.append(services.jobs.mark_kpi_op(result.trace_id, p.kpi_id,
                                                      KpiStatus.COLLECTED, now))
        try:
            appended = series.append(points, also=also, prefetched=prefetched)
        except ConditionFailed:
            prefetched = None  # the job moved on between our read and our write: read again
            continue
        return IngestOutcome(
            trace_id=result.trace_id,
            stored=[p.kpi_id for p in appended.stored],
            duplicates=[p.kpi_id for p in appended.duplicates],
            job=effect,
        )
    raise StorageError("the job kept changing under concurrent writers; try again")


def report_error(services: Services, payload: Mapping[str, Any]) -> ErrorOutcome:
    """Record a collection failure: the KPIs it names (or, without ids, the KPIs of
    the n8n workflow it names) are marked failed in the job, the error kept whole."""
    report = parse(ErrorReport, payload)
    targets = report.targets
    if targets:
        _require_known(services, targets, "kpiId" if report.kpi_id else "kpiIds")
    elif report.workflow_id:
        targets = [k for entry in services.registry.kpis.all()
                   if isinstance(entry.source, N8nSource)
                   and entry.source.workflow_id == report.workflow_id
                   for k in entry.yields]
    known, states = services.jobs.kpi_states(report.trace_id, targets)
    effect = JobEffect(known=known)
    if known:
        detail = report.to_wire()
        for name in ("traceId", "error", "kpiId", "kpiIds"):
            detail.pop(name, None)
        now = services.clock.now()
        for kpi_id in targets:
            if kpi_id not in states:
                effect.not_in_job.append(kpi_id)
            elif services.jobs.mark_kpi(report.trace_id, kpi_id, KpiStatus.FAILED, now,
                                        error=report.error, detail=detail or None):
                effect.settled.append(kpi_id)
            else:
                effect.already_settled.append(kpi_id)
    return ErrorOutcome(trace_id=report.trace_id, message=report.message, job=effect)

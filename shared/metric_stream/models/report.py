"""What the analysis and packaging stages produce for a job."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from metric_stream.models.base import AdminModel, FiniteNumber, Id, KpiId, Timestamp, TraceId
from metric_stream.models.wire import ChartRef


class KpiPackage(AdminModel):
    """`package:{traceId}:{kpiId}`: one KPI's value for a job and, later, its chart and
    analysis."""

    trace_id: TraceId
    kpi_id: KpiId
    kpi_type: Id
    timestamp: Timestamp
    value: FiniteNumber
    point_metadata: dict[str, Any] = Field(default_factory=dict)
    chart: ChartRef | None = None
    chart_key: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    analytics: dict[str, Any] | None = None
    analysis: dict[str, Any] | None = None
    created_at: Timestamp
    updated_at: Timestamp | None = None


class ConsolidatedPackage(AdminModel):
    """`consolidated:{traceId}`: the cross-KPI view of a job."""

    trace_id: TraceId
    kpi_ids: list[KpiId]
    missing_kpi_ids: list[KpiId] = Field(default_factory=list)
    analytics: dict[str, Any] = Field(default_factory=dict)
    analysis: dict[str, Any] | None = None
    """The LLM side: the consolidated reading and how the job's chains went."""
    messages: dict[str, Any] | None = None
    """One brief message per channel type, built once by the packaging stage."""
    created_at: Timestamp
    updated_at: Timestamp | None = None


class DocumentRecord(AdminModel):
    """`document:{traceId}`: the job's PDF report in the blob store."""

    trace_id: TraceId
    blob_key: str = Field(min_length=1, max_length=1024)
    content_type: str = "application/pdf"
    size_bytes: int = Field(ge=0)
    pages: int | None = Field(default=None, ge=0)
    url: str | None = None
    demo: bool = False
    created_at: Timestamp

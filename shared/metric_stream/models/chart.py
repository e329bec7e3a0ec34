"""`chart:{chartId}`: a chart stored in the blob store, or the fallback that stands in
for one that could not be drawn."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from metric_stream.models.base import AdminModel, Id, KpiId, Timestamp, TraceId

ChartFileFormat = Literal["png", "svg", "text"]

CONTENT_TYPES: dict[ChartFileFormat, str] = {
    "png": "image/png",
    "svg": "image/svg+xml",
    "text": "text/plain; charset=utf-8",
}
EXTENSIONS: dict[ChartFileFormat, str] = {"png": "png", "svg": "svg", "text": "txt"}


class ChartRecord(AdminModel):
    """Where a chart's bytes are (`blobKey`) and how they came to be: `fallback` when
    the chart could not be drawn after `attempts` tries, with the `reason`."""

    chart_id: Id
    kpi_id: KpiId
    trace_id: TraceId | None = None
    format: ChartFileFormat
    content_type: str = Field(min_length=1, max_length=200)
    blob_key: str = Field(min_length=1, max_length=1024)
    fallback: bool = False
    reason: str | None = Field(default=None, max_length=2000)
    attempts: int = Field(default=1, ge=0)
    created_at: Timestamp
    params: dict[str, Any] = Field(default_factory=dict)

"""Points of a KPI's time series, and the records a CSV import leaves behind."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field

from metric_stream.models.base import AdminModel, FiniteNumber, Id, KpiId, Timestamp, TraceId


class DataPoint(AdminModel):
    """One value of one KPI at one instant (`timeseries:{kpiId}`, sorted by timestamp)."""

    kpi_id: KpiId
    timestamp: Timestamp
    value: FiniteNumber
    metadata: dict[str, Any] = Field(default_factory=dict)
    trace_id: TraceId | None = None
    source: str | None = Field(default=None, max_length=200)

    def same_value(self, other: DataPoint) -> bool:
        return self.value == other.value


class ImportState(StrEnum):
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"


class ImportStatus(AdminModel):
    """`import-status:{kpiId}:{importId}`: the counts of one CSV import."""

    kpi_id: KpiId
    import_id: Id
    state: ImportState = ImportState.RUNNING
    filename: str | None = Field(default=None, max_length=500)
    rows_total: int = Field(default=0, ge=0)
    rows_imported: int = Field(default=0, ge=0)
    rows_duplicate: int = Field(default=0, ge=0)
    rows_refused: int = Field(default=0, ge=0)
    message: str | None = None
    started_at: Timestamp
    finished_at: Timestamp | None = None


class ImportRowError(AdminModel):
    """`import-errors:{kpiId}:{timestamp}`: one refused CSV row, kept for a while (TTL)."""

    kpi_id: KpiId
    import_id: Id
    row: int = Field(ge=1)
    timestamp: str = Field(default="", max_length=200)
    reason: str
    line: str = Field(default="", max_length=2000)
    recorded_at: Timestamp

"""A job: one run of the daily cycle, named by its trace id, and where each KPI stands."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import Field

from metric_stream.models.base import AdminModel, Id, KpiId, Timestamp, TraceId


class JobStatus(StrEnum):
    COLLECTING = "collecting"
    ANALYSING = "analysing"
    PACKAGING = "packaging"
    DELIVERING = "delivering"
    COMPLETE = "complete"
    PARTIAL = "partial"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.COMPLETE, JobStatus.PARTIAL, JobStatus.FAILED)


class KpiStatus(StrEnum):
    PENDING = "pending"
    COLLECTED = "collected"
    FAILED = "failed"
    TIMED_OUT = "timed_out"

    @property
    def settled(self) -> bool:
        return self is not KpiStatus.PENDING


class KpiState(AdminModel):
    """Where one KPI of a job stands; `error` is the failure object, kept whole."""

    status: KpiStatus = KpiStatus.PENDING
    error: dict[str, Any] | None = None
    detail: dict[str, Any] | None = None
    updated_at: Timestamp | None = None


class StageTiming(AdminModel):
    """When one stage of a job started and finished: `collecting` (created until the
    fan-in), within it `fanout` (triggering every KPI), then `analysing`, `packaging`,
    `delivering`."""

    started_at: Timestamp
    finished_at: Timestamp | None = None


class Job(AdminModel):
    trace_id: TraceId
    kpi_ids: list[KpiId]
    kpis: dict[KpiId, KpiState] = Field(default_factory=dict)
    status: JobStatus = JobStatus.COLLECTING
    created_at: Timestamp
    updated_at: Timestamp | None = None
    timeout_at: Timestamp | None = None
    stages: dict[str, StageTiming] = Field(default_factory=dict)
    schedule_id: Id | None = None
    demo: bool = False
    error: dict[str, Any] | None = None
    finished_at: Timestamp | None = None
    triggered_at: Timestamp | None = None  # when the fan-out claimed the job (once)
    note: str | None = None
    lease_owner: str | None = None  # the worker running the current stage, until lease_until
    lease_until: int | None = None
    lease_stage: str | None = None

    def state_of(self, kpi_id: str) -> KpiState:
        return self.kpis.get(kpi_id) or KpiState()

    def with_status(self, status: KpiStatus) -> list[str]:
        return [k for k in self.kpi_ids if self.state_of(k).status is status]

    @property
    def settled(self) -> bool:
        return all(self.state_of(k).status.settled for k in self.kpi_ids)

    @property
    def missing(self) -> list[str]:
        """KPIs that failed or timed out: the report's partial-data disclaimer names them."""
        return [k for k in self.kpi_ids
                if self.state_of(k).status in (KpiStatus.FAILED, KpiStatus.TIMED_OUT)]

    @property
    def partial(self) -> bool:
        return bool(self.missing)


def new_trace_id(now: datetime) -> str:
    """`trace_YYYYMMDD_HHMMSS_<6 hex>`: sortable by time, unique by its random tail."""
    return f"trace_{now.astimezone(UTC):%Y%m%d_%H%M%S}_{secrets.token_hex(3)}"

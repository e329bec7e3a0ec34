"""Schedules: 5-field cron expressions in UTC that start a job."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from croniter import croniter
from pydantic import AfterValidator, Field, field_validator

from metric_stream.models.base import AdminModel, Id, KpiId, Timestamp, unique_ids


def check_cron(expression: str) -> str:
    """The expression, normalised to single spaces, or a ValueError saying what is wrong."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(
            f"must have 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}"
        )
    normalised = " ".join(fields)
    if not croniter.is_valid(normalised):
        raise ValueError(f"{normalised!r} is not a valid cron expression")
    return normalised


class Schedule(AdminModel):
    """Fires a job at every time its cron expression names (UTC); `kpiIds` restricts the
    job to those KPIs (none: every active KPI)."""

    id: Id
    name: str = Field(default="", max_length=200)
    cron: str = "0 6 * * *"
    active: bool = True
    kpi_ids: Annotated[list[KpiId], AfterValidator(unique_ids)] | None = None
    last_fired_at: Timestamp | None = None
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        return check_cron(value)

    def next_runs(self, after: datetime, count: int = 5) -> list[datetime]:
        """The next `count` fire times after `after`, in UTC (a naive `after` is UTC)."""
        # croniter reads the expression in `after`'s own zone; the cron is in UTC.
        start = after.replace(tzinfo=UTC) if after.tzinfo is None else after.astimezone(UTC)
        it = croniter(self.cron, start)
        return [it.get_next(datetime) for _ in range(count)]

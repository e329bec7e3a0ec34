"""SPEC's record names, built in one place: `timeseries:{kpiId}`, `job:{traceId}`, ...

The partition key is the part a reader asks for as a whole (all points of a KPI,
everything of a job); the sort key orders records within it.
"""

from __future__ import annotations

from datetime import datetime

from metric_stream.models.base import iso
from metric_stream.ports import Key

SINGLE = "#"  # sort key of a partition that holds one record

KPI_REGISTRY = "registry:kpi"
ENDPOINT_REGISTRY = "registry:endpoint"
SCHEDULE_REGISTRY = "registry:schedule"
JOB_INDEX = "jobs"
CONFIG = Key("config:system", SINGLE)


def timeseries(kpi_id: str) -> str:
    return f"timeseries:{kpi_id}"


def point(kpi_id: str, timestamp: datetime) -> Key:
    return Key(timeseries(kpi_id), iso(timestamp))


def job(trace_id: str) -> str:
    return f"job:{trace_id}"


def job_header(trace_id: str) -> Key:
    return Key(job(trace_id), "#job")


def job_kpi(trace_id: str, kpi_id: str) -> Key:
    return Key(job(trace_id), f"kpi:{kpi_id}")


def job_index(created_at: datetime, trace_id: str) -> Key:
    return Key(JOB_INDEX, f"{iso(created_at)}#{trace_id}")


def packages(trace_id: str) -> str:
    return f"package:{trace_id}"


def package(trace_id: str, kpi_id: str) -> Key:
    return Key(packages(trace_id), kpi_id)


def consolidated(trace_id: str) -> Key:
    return Key(f"consolidated:{trace_id}", SINGLE)


def document(trace_id: str) -> Key:
    return Key(f"document:{trace_id}", SINGLE)


def chart(chart_id: str) -> Key:
    return Key(f"chart:{chart_id}", SINGLE)


def deliveries(trace_id: str) -> str:
    return f"delivery:{trace_id}"


def delivery(trace_id: str, endpoint_id: str) -> Key:
    return Key(deliveries(trace_id), endpoint_id)


def import_statuses(kpi_id: str) -> str:
    return f"import-status:{kpi_id}"


def import_status(kpi_id: str, import_id: str) -> Key:
    return Key(import_statuses(kpi_id), import_id)


def import_errors(kpi_id: str) -> str:
    return f"import-errors:{kpi_id}"


def import_error(kpi_id: str, import_id: str, row: int) -> Key:
    # import ids start with their UTC timestamp, so errors sort by import time, then row
    return Key(import_errors(kpi_id), f"{import_id}#{row:09d}")


# ---- blob keys
STAGE_FILES = "stages/"
"""Blobs one stage of a job leaves for the next (deleted by it, or by retention)."""


def stage_file(trace_id: str, name: str) -> str:
    return f"{STAGE_FILES}{trace_id}/{name}"

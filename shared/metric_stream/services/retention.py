"""Retention: points older than the window leave the active store for the blob archive,
so that the store (and every range read) stays the size of the window.

Per KPI and year, the old points are written to `archive/timeseries/{kpiId}/{year}.jsonl.gz`
(gzipped JSON lines, one point's wire form each, sorted by timestamp) and only then
deleted. An existing archive file is merged, not replaced (union by timestamp), so a
run that stopped between export and prune just exports the same points again next
time: no loss, no duplicates. Only the points exported are deleted, never a range, so
a point that arrives meanwhile is not lost either.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from metric_stream.bootstrap import Services
from metric_stream.errors import InvalidInput, StorageError
from metric_stream.models.timeseries import DataPoint
from metric_stream.storage import keys

_TICK = timedelta(microseconds=1)


def archive_key(kpi_id: str, year: int) -> str:
    return f"archive/timeseries/{kpi_id}/{year}.jsonl.gz"


@dataclass
class KpiRetention:
    kpi_id: str
    archived: int = 0
    pruned: int = 0
    files: list[str] = field(default_factory=list)


@dataclass
class RetentionReport:
    cutoff: datetime  # points strictly before it were archived and pruned
    days: int
    dry_run: bool = False
    kpis: list[KpiRetention] = field(default_factory=list)
    stage_files: list[str] = field(default_factory=list)  # left by ended jobs, deleted

    @property
    def archived(self) -> int:
        return sum(k.archived for k in self.kpis)

    @property
    def pruned(self) -> int:
        return sum(k.pruned for k in self.kpis)

    @property
    def files(self) -> list[str]:
        return [f for k in self.kpis for f in k.files]


def apply_retention(services: Services, *, now: datetime | None = None, days: int | None = None,
                    dry_run: bool = False) -> RetentionReport:
    """Archive then prune, for every KPI id the registry yields, the points older than
    `days` (default: the configured `retentionDays`). `dry_run` counts, writes nothing."""
    days = services.config.get().retention_days if days is None else days
    if days < 1:
        raise InvalidInput("must be at least 1", field="days")
    cutoff = (now or services.clock.now()).astimezone(UTC) - timedelta(days=days)
    report = RetentionReport(cutoff=cutoff, days=days, dry_run=dry_run)
    for kpi_id in sorted(services.registry.kpi_sources()):
        report.kpis.append(_retain(services, kpi_id, cutoff, dry_run))
    report.stage_files = _forget_stage_files(services, dry_run)
    return report


def _forget_stage_files(services: Services, dry_run: bool) -> list[str]:
    """Files one stage left for the next (`stages/{traceId}/...`) whose job has ended
    or is gone: the next stage deletes them when it succeeds; a job that ended early
    leaves them behind."""
    left: list[str] = []
    for key in services.blobs.keys(keys.STAGE_FILES):
        trace_id = key.removeprefix(keys.STAGE_FILES).split("/", 1)[0]
        job = services.jobs.get(trace_id)
        if job is None or job.status.terminal:
            left.append(key)
            if not dry_run:
                services.blobs.delete(key)
    return left


def _retain(services: Services, kpi_id: str, cutoff: datetime, dry_run: bool) -> KpiRetention:
    result = KpiRetention(kpi_id)
    oldest = services.timeseries.points(kpi_id, limit=1)
    if not oldest or oldest[0].timestamp >= cutoff:
        return result
    last = cutoff - _TICK
    for year in range(oldest[0].timestamp.year, last.year + 1):
        start = datetime(year, 1, 1, tzinfo=UTC)
        end = min(datetime(year + 1, 1, 1, tzinfo=UTC) - _TICK, last)
        points = services.timeseries.points(kpi_id, start=start, end=end)
        if not points:
            continue
        key = archive_key(kpi_id, year)
        if not dry_run:
            _export(services, key, points)
            services.timeseries.delete(points)
        result.archived += len(points)
        result.pruned += len(points)
        result.files.append(key)
    return result


def _export(services: Services, key: str, points: list[DataPoint]) -> None:
    """Write `points` into the archive file `key`, merged with what it already holds."""
    merged: dict[datetime, dict[str, Any]] = {}
    if services.blobs.exists(key):
        merged.update(_read_archive(key, services.blobs.get(key)))
    for point in points:  # the store's version wins over an older archived copy
        merged[point.timestamp] = point.model_dump(mode="json", by_alias=True)
    lines = [json.dumps(merged[moment], separators=(",", ":"), ensure_ascii=False)
             for moment in sorted(merged)]
    data = gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0)
    services.blobs.put(key, data, content_type="application/gzip")


def read_archive(services: Services, kpi_id: str, year: int) -> list[DataPoint]:
    """The points of one archive file, oldest first (empty if there is none)."""
    key = archive_key(kpi_id, year)
    if not services.blobs.exists(key):
        return []
    items = _read_archive(key, services.blobs.get(key))
    return [DataPoint.model_validate(items[moment]) for moment in sorted(items)]


def _read_archive(key: str, data: bytes) -> dict[datetime, dict[str, Any]]:
    try:
        lines = gzip.decompress(data).decode().splitlines()
        items = [json.loads(line) for line in lines if line.strip()]
        return {datetime.fromisoformat(item["timestamp"]).astimezone(UTC): item
                for item in items}
    except (OSError, EOFError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise StorageError(f"archive {key} is unreadable ({exc}); it was left as it is, "
                           "and the points it would take stay in the store") from None

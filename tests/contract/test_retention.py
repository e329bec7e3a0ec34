"""Retention on every backend: old points archived (exactly them), then pruned; re-runs,
crashes between export and prune, and existing archives lose and double nothing."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta

import pytest

from metric_stream.bootstrap import Services
from metric_stream.clock import ManualClock
from metric_stream.errors import StorageError
from metric_stream.models.config import SystemConfig
from metric_stream.models.kpi import CollectorSource, KpiDefinition
from metric_stream.models.timeseries import DataPoint
from metric_stream.services.retention import apply_retention, archive_key, read_archive

NOW = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)  # the `clock` fixture's time
CUTOFF = NOW - timedelta(days=365)  # 2025-11-29T06:00Z
# behaviour above the stores (the window, the archive format): one backend is enough
embedded_only = pytest.mark.parametrize("services", ["embedded"], indirect=True)


@pytest.fixture
def registry(services: Services) -> None:
    services.registry.kpis.create(KpiDefinition(
        id="btc", name="BTC", kpi_type="price",
        source=CollectorSource(collector="demo", params={"kind": "btc-price"})))
    services.registry.kpis.create(KpiDefinition(
        id="cbbi", name="CBBI", kpi_type="cbbi", kpi_ids=["cbbi-mvrv", "cbbi-rhodl"],
        source=CollectorSource(collector="demo", params={"kind": "multi"})))


def spaced(kpi_id: str, start: datetime, end: datetime, base: float = 100.0) -> list[DataPoint]:
    points, moment, n = [], start, 0
    while moment <= end:
        points.append(DataPoint(kpi_id=kpi_id, timestamp=moment, value=base + n,
                                metadata={"n": n}, source="test"))
        moment += timedelta(days=11)
        n += 1
    return points


def store(services: Services, points: list[DataPoint]) -> None:
    assert services.timeseries.append_many(points).stored == len(points)


def test_old_points_are_archived_exactly_then_pruned(
        services: Services, registry: None) -> None:
    btc = spaced("btc", datetime(2024, 10, 1, tzinfo=UTC), NOW)
    btc.append(DataPoint(kpi_id="btc", timestamp=CUTOFF, value=1.0))  # on the edge: kept
    store(services, btc)
    mvrv = spaced("cbbi-mvrv", datetime(2025, 6, 1, tzinfo=UTC), NOW)
    store(services, mvrv)
    old_btc = [p for p in btc if p.timestamp < CUTOFF]
    old_mvrv = [p for p in mvrv if p.timestamp < CUTOFF]

    report = apply_retention(services)

    assert report.cutoff == CUTOFF
    assert report.days == 365
    by_kpi = {k.kpi_id: k for k in report.kpis}
    assert set(by_kpi) == {"btc", "cbbi-mvrv", "cbbi-rhodl"}
    assert (by_kpi["btc"].archived, by_kpi["btc"].pruned) == (len(old_btc), len(old_btc))
    assert by_kpi["btc"].files == [archive_key("btc", 2024), archive_key("btc", 2025)]
    assert by_kpi["cbbi-mvrv"].files == [archive_key("cbbi-mvrv", 2025)]
    assert (by_kpi["cbbi-rhodl"].archived, by_kpi["cbbi-rhodl"].files) == (0, [])
    assert report.archived == len(old_btc) + len(old_mvrv)

    archived = read_archive(services, "btc", 2024) + read_archive(services, "btc", 2025)
    assert archived == old_btc
    assert read_archive(services, "cbbi-mvrv", 2025) == old_mvrv
    kept = services.timeseries.points("btc")
    assert kept == sorted((p for p in btc if p.timestamp >= CUTOFF), key=lambda p: p.timestamp)
    assert kept[0].timestamp == CUTOFF
    assert services.timeseries.points("cbbi-mvrv") == [p for p in mvrv if p.timestamp >= CUTOFF]

    files = {key: services.blobs.get(key) for key in report.files}
    again = apply_retention(services)  # a re-run adds nothing
    assert again.archived == again.pruned == 0
    assert again.files == []
    assert {key: services.blobs.get(key) for key in report.files} == files


@embedded_only
def test_archive_lines_are_the_points_wire_form_sorted(
        services: Services, registry: None) -> None:
    points = spaced("btc", datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 3, 1, tzinfo=UTC))
    points.append(DataPoint(kpi_id="btc", timestamp=datetime(2025, 3, 5, 0, 0, 0, 500_000,
                                                             tzinfo=UTC), value=2.5))
    store(services, points)
    apply_retention(services)
    data = services.blobs.get(archive_key("btc", 2025))
    lines = gzip.decompress(data).decode().splitlines()
    assert [json.loads(line) for line in lines] == [
        p.model_dump(mode="json", by_alias=True) for p in points]


def test_a_crash_between_export_and_prune_loses_and_doubles_nothing(
        services: Services, registry: None, monkeypatch: pytest.MonkeyPatch) -> None:
    points = spaced("btc", datetime(2025, 1, 1, tzinfo=UTC), NOW)
    store(services, points)
    old = [p for p in points if p.timestamp < CUTOFF]

    def crash(_: list[DataPoint]) -> None:
        raise StorageError("disk gone")

    with monkeypatch.context() as patched:
        patched.setattr(services.timeseries, "delete", crash)
        with pytest.raises(StorageError):
            apply_retention(services)
    assert read_archive(services, "btc", 2025) == old  # exported, not pruned
    assert len(services.timeseries.points("btc")) == len(points)

    report = apply_retention(services)
    assert report.pruned == len(old)
    assert read_archive(services, "btc", 2025) == old
    assert services.timeseries.points("btc") == [p for p in points if p.timestamp >= CUTOFF]


def test_an_existing_archive_is_merged(services: Services, registry: None,
                                       clock: ManualClock) -> None:
    first = spaced("btc", datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 6, 1, tzinfo=UTC))
    store(services, first)
    apply_retention(services)
    # later points, among them one archived before, put back (same value) meanwhile
    later = spaced("btc", datetime(2025, 6, 8, tzinfo=UTC), datetime(2025, 9, 1, tzinfo=UTC),
                   base=500)
    store(services, [*later, first[3]])
    report = apply_retention(services)
    assert report.archived == len(later) + 1
    merged = read_archive(services, "btc", 2025)
    assert merged == sorted([*first, *later], key=lambda p: p.timestamp)
    assert len({p.timestamp for p in merged}) == len(merged)
    assert services.timeseries.points("btc") == []


@embedded_only
def test_a_dry_run_changes_nothing(services: Services, registry: None) -> None:
    points = spaced("btc", datetime(2025, 1, 1, tzinfo=UTC), NOW)
    store(services, points)
    report = apply_retention(services, dry_run=True)
    assert report.dry_run
    assert report.archived == len([p for p in points if p.timestamp < CUTOFF])
    assert report.files == [archive_key("btc", 2025)]
    assert not services.blobs.keys("archive/")
    assert len(services.timeseries.points("btc")) == len(points)


@embedded_only
def test_the_window_comes_from_the_config_or_the_argument(
        services: Services, registry: None, clock: ManualClock) -> None:
    points = spaced("btc", NOW - timedelta(days=70), NOW)
    store(services, points)
    services.config.put(SystemConfig(retention_days=30), clock.now())
    report = apply_retention(services)
    assert report.days == 30
    assert report.archived == len([p for p in points if p.timestamp < NOW - timedelta(days=30)])
    narrower = apply_retention(services, days=7, now=NOW + timedelta(days=1))
    assert narrower.cutoff == NOW - timedelta(days=6)
    assert [p.timestamp for p in services.timeseries.points("btc")] == [
        p.timestamp for p in points if p.timestamp >= NOW - timedelta(days=6)]


@embedded_only
def test_an_unreadable_archive_is_left_alone_and_nothing_pruned(
        services: Services, registry: None) -> None:
    points = spaced("btc", datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 2, 1, tzinfo=UTC))
    store(services, points)
    services.blobs.put(archive_key("btc", 2025), b"not gzip")
    with pytest.raises(StorageError, match="unreadable"):
        apply_retention(services)
    assert services.blobs.get(archive_key("btc", 2025)) == b"not gzip"
    assert len(services.timeseries.points("btc")) == len(points)


def test_files_left_by_ended_jobs_are_deleted(services: Services, clock: ManualClock) -> None:
    """A stage's hand-off file (the report's chart specs) outlives a job that ended before
    the next stage ran; retention deletes those of ended or unknown jobs, only those."""
    from metric_stream.models import Job, JobStatus
    from metric_stream.storage import keys

    now = clock.now()
    services.jobs.create(Job(trace_id="trace-running", created_at=now, kpi_ids=["btc"]))
    services.jobs.create(Job(trace_id="trace-ended", created_at=now, kpi_ids=["btc"],
                             status=JobStatus.FAILED))
    files = {name: keys.stage_file(name, "chart-specs.json")
             for name in ("trace-running", "trace-ended", "trace-gone")}
    for key in files.values():
        services.blobs.put(key, b"{}", content_type="application/json")
    dry = apply_retention(services, dry_run=True)
    assert sorted(dry.stage_files) == sorted([files["trace-ended"], files["trace-gone"]])
    assert all(services.blobs.exists(k) for k in files.values())
    report = apply_retention(services)
    assert sorted(report.stage_files) == sorted([files["trace-ended"], files["trace-gone"]])
    assert services.blobs.exists(files["trace-running"])
    assert not services.blobs.exists(files["trace-ended"])
    assert not services.blobs.exists(files["trace-gone"])

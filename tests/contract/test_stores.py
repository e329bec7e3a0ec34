"""The typed stores (time series, jobs, registry, config, import log) on every backend."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from metric_stream.bootstrap import Services
from metric_stream.clock import ManualClock
from metric_stream.errors import AlreadyExists, ConditionFailed, NotFound, PointConflict
from metric_stream.models import (
    CollectorSource,
    DataPoint,
    DeliveryRecord,
    DeliveryStatus,
    ImportRowError,
    ImportStatus,
    Job,
    JobStatus,
    KpiDefinition,
    KpiPackage,
    KpiStatus,
    SystemConfig,
)
from metric_stream.ports import Absent, Put
from metric_stream.storage import keys

DAY0 = datetime(2026, 1, 1, 6, tzinfo=UTC)


def point(kpi: str, day: int, value: float, **extra: object) -> DataPoint:
    return DataPoint(kpi_id=kpi, timestamp=DAY0 + timedelta(days=day), value=value, **extra)  # type: ignore[arg-type]


def test_append_is_idempotent_and_refuses_a_different_value(services: Services) -> None:
    ts = services.timeseries
    first = ts.append([point("btc", 0, 100.0)])
    assert len(first.stored) == 1
    replay = ts.append([point("btc", 0, 100.0)])
    assert replay.stored == []
    assert len(replay.duplicates) == 1
    with pytest.raises(PointConflict, match=r"already has value 100\.0"):
        ts.append([point("btc", 0, 101.0)])
    assert [p.value for p in ts.points("btc")] == [100.0]


def test_multi_kpi_append_stores_all_points_or_none(services: Services) -> None:
    ts = services.timeseries
    ts.append([point("mvrv", 0, 2.0)])
    with pytest.raises(PointConflict):
        ts.append([point("price", 0, 1.0), point("mvrv", 0, 2.5), point("rhodl", 0, 3.0)])
    assert ts.points("price") == []
    assert ts.points("rhodl") == []
    outcome = ts.append([point("price", 0, 1.0), point("mvrv", 0, 2.0), point("rhodl", 0, 3.0)])
    assert {p.kpi_id for p in outcome.stored} == {"price", "rhodl"}
    assert [p.kpi_id for p in outcome.duplicates] == ["mvrv"]


def test_append_with_extra_operations_is_atomic(services: Services) -> None:
    ts = services.timeseries
    services.records.write([Put(keys.package("t1", "btc"), {"x": 1})])
    with pytest.raises(ConditionFailed):
        ts.append([point("btc", 0, 1.0)], also=[Put(keys.package("t1", "btc"), {}, Absent())])
    assert ts.points("btc") == []


def test_range_reads_stay_within_one_kpi(services: Services) -> None:
    ts = services.timeseries
    ts.append_many([point("btc", d, 100.0 + d) for d in range(365)])
    ts.append_many([point("eth", d, 10.0 + d) for d in range(30)])
    year = ts.points("btc")
    assert len(year) == 365
    assert all(p.kpi_id == "btc" for p in year)
    assert [p.value for p in year[:2]] == [100.0, 101.0]
    window = ts.points("btc", start=DAY0 + timedelta(days=10), end=DAY0 + timedelta(days=12))
    assert [p.value for p in window] == [110.0, 111.0, 112.0]
    latest = ts.latest("btc")
    assert latest is not None
    assert latest.value == 464.0
    assert ts.latest("none") is None


def test_bulk_append_counts_duplicates_and_conflicts(services: Services) -> None:
    ts = services.timeseries
    ts.append([point("btc", 1, 5.0)])
    outcome = ts.append_many([point("btc", 0, 4.0), point("btc", 1, 5.0), point("btc", 2, 6.0)])
    assert (outcome.stored, outcome.duplicates, outcome.conflicts) == (2, 1, [])
    again = ts.append_many([point("btc", 0, 4.0), point("btc", 2, 7.0)])
    assert again.stored == 0
    assert again.duplicates == 1
    assert [p.value for p in again.conflicts] == [7.0]
    assert [p.value for p in ts.points("btc")] == [4.0, 5.0, 6.0]


def make_job(n: int, now: datetime) -> Job:
    ids = [f"kpi-{i:03d}" for i in range(n)]
    return Job(trace_id="trace_20261129_060000_abcdef", kpi_ids=ids, created_at=now)


def test_job_round_trip_and_listing(services: Services, clock: ManualClock) -> None:
    job = services.jobs.create(make_job(3, clock.now()))
    stored = services.jobs.require(job.trace_id)
    assert stored.kpi_ids == job.kpi_ids
    assert all(s.status is KpiStatus.PENDING for s in stored.kpis.values())
    later = Job(trace_id="trace_20261130_060000_123456", kpi_ids=["a"],
                created_at=clock.now() + timedelta(days=1))
    services.jobs.create(later)
    assert [j.trace_id for j in services.jobs.list()] == [later.trace_id, job.trace_id]
    assert services.jobs.get("trace_unknown") is None
    with pytest.raises(NotFound):
        services.jobs.require("trace_unknown")


def test_two_hundred_threads_settle_one_job_with_nothing_lost(services: Services,
                                                              clock: ManualClock) -> None:
    job = services.jobs.create(make_job(200, clock.now()))

    def settle(kpi_id: str) -> bool:
        i = int(kpi_id.rsplit("-", 1)[1])
        if i % 10 == 0:
            return services.jobs.mark_kpi(job.trace_id, kpi_id, KpiStatus.FAILED, clock.now(),
                                          error={"message": f"boom {i}", "code": 500})
        return services.jobs.mark_kpi(job.trace_id, kpi_id, KpiStatus.COLLECTED, clock.now())

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(settle, job.kpi_ids))
    assert all(results)
    stored = services.jobs.require(job.trace_id)
    assert stored.settled
    assert len(stored.with_status(KpiStatus.COLLECTED)) == 180
    assert len(stored.missing) == 20
    assert stored.state_of("kpi-010").error == {"message": "boom 10", "code": 500}
    # a replay after settling changes nothing
    assert not services.jobs.mark_kpi(job.trace_id, "kpi-010", KpiStatus.COLLECTED, clock.now())
    assert services.jobs.require(job.trace_id).state_of("kpi-010").status is KpiStatus.FAILED


def test_job_status_advances_once(services: Services, clock: ManualClock) -> None:
    job = services.jobs.create(make_job(2, clock.now()))
    clock.advance(60)
    with ThreadPoolExecutor(max_workers=10) as pool:
        wins = list(pool.map(
            lambda _: services.jobs.advance(job.trace_id, JobStatus.ANALYSING, clock.now(),
                                            only_from=[JobStatus.COLLECTING],
                                            finish_stage="collecting"), range(10)))
    assert wins.count(True) == 1
    stored = services.jobs.require(job.trace_id)
    assert stored.status is JobStatus.ANALYSING
    assert stored.stages["analysing"].started_at == clock.now()
    assert not services.jobs.advance("trace_none", JobStatus.ANALYSING, clock.now(),
                                     only_from=[JobStatus.COLLECTING])


def kpi(kpi_id: str, **extra: object) -> KpiDefinition:
    return KpiDefinition(id=kpi_id, name=kpi_id.upper(), kpi_type="price",  # type: ignore[arg-type]
                         source=CollectorSource(collector="demo"), **extra)


def test_registry_create_replace_delete(services: Services) -> None:
    kpis = services.registry.kpis
    kpis.create(kpi("btc-price"))
    with pytest.raises(AlreadyExists):
        kpis.create(kpi("btc-price"))
    kpis.replace(kpi("btc-price", description="changed"))
    assert kpis.require("btc-price").description == "changed"
    with pytest.raises(NotFound):
        kpis.replace(kpi("eth-price"))
    kpis.create(kpi("cbbi-multi", kpi_ids=["cbbi-mvrv", "cbbi-rhodl"]))
    assert sorted(services.registry.kpi_sources()) == ["btc-price", "cbbi-mvrv", "cbbi-rhodl"]
    kpis.delete("btc-price")
    with pytest.raises(NotFound):
        kpis.delete("btc-price")
    assert kpis.ids() == ["cbbi-multi"]


def test_packages_deliveries_and_config(services: Services, clock: ManualClock) -> None:
    now = clock.now()
    services.packages.put(KpiPackage(trace_id="t1", kpi_id="btc", kpi_type="price",
                                     timestamp=now, value=1.0, created_at=now))
    assert [p.kpi_id for p in services.packages.list("t1")] == ["btc"]
    services.deliveries.put(DeliveryRecord(trace_id="t1", endpoint_id="e1",
                                           status=DeliveryStatus.SENT, attempts=1))
    assert [d.status for d in services.deliveries.list("t1")] == [DeliveryStatus.SENT]
    assert services.config.get() == SystemConfig()
    changed = SystemConfig.model_validate({"lifecycle": {"fanInTimeoutS": 600}})
    services.config.put(changed, now)
    assert services.config.get().lifecycle.fan_in_timeout_s == 600


def test_import_log_errors_expire(services: Services, clock: ManualClock) -> None:
    now = clock.now()
    status = ImportStatus(kpi_id="btc", import_id="imp_20261129T060000_abc", rows_total=3,
                          rows_imported=2, rows_refused=1, started_at=now)
    services.imports.put_status(status)
    services.imports.add_errors([ImportRowError(kpi_id="btc", import_id=status.import_id, row=2,
                                                reason="value is not a number", recorded_at=now)],
                                now)
    assert services.imports.status("btc", status.import_id) == status
    assert [e.row for e in services.imports.errors("btc", status.import_id)] == [2]
    clock.advance(timedelta(days=31))
    assert services.imports.errors("btc", status.import_id) == []
    assert services.imports.status("btc", status.import_id) == status


def test_kpi_ids_resolve_to_their_entry_and_are_never_yielded_twice(services: Services,
                                                                   clock: ManualClock) -> None:
    kpis = services.registry.kpis
    kpis.create(kpi("cbbi-multi", kpi_ids=["cbbi-mvrv", "cbbi-rhodl"]).stamped(clock.now()))
    kpis.create(kpi("btc-price").stamped(clock.now()))
    assert kpis.resolve(["cbbi-mvrv", "btc-price", "nope"]) == {
        "cbbi-mvrv": "cbbi-multi", "btc-price": "btc-price"}
    with pytest.raises(AlreadyExists, match="cbbi-rhodl"):
        kpis.create(kpi("other-multi", kpi_ids=["cbbi-rhodl", "x"]))
    assert kpis.get("other-multi") is None
    assert kpis.resolve(["x"]) == {}

    clock.advance(1)
    changed = kpis.require("cbbi-multi").model_copy(
        update={"kpi_ids": ["cbbi-mvrv", "cbbi-puell"]})
    kpis.replace(changed.stamped(clock.now()))
    assert kpis.resolve(["cbbi-rhodl", "cbbi-puell"]) == {"cbbi-puell": "cbbi-multi"}
    with pytest.raises(AlreadyExists, match="btc-price"):
        kpis.replace(changed.model_copy(update={"kpi_ids": ["cbbi-mvrv", "btc-price"]}))
    assert kpis.require("cbbi-multi").kpi_ids == ["cbbi-mvrv", "cbbi-puell"]
    kpis.delete("cbbi-multi")
    assert kpis.resolve(["cbbi-mvrv", "cbbi-puell"]) == {}

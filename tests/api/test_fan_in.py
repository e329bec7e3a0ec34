"""Fan-in on ingestion: the callback that settles a job's last KPI (a result or an
error report) moves the job to analysis at once; the callbacks before it do not."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from metric_stream.api.app import build_api
from metric_stream.bootstrap import Services
from metric_stream.clock import ManualClock
from metric_stream.models import CollectorSource, Job, JobStatus, KpiDefinition, KpiStatus
from tests.api.conftest import INGEST_KEY, TRACE, Client, body_of
from tests.conftest import make_services


@pytest.fixture(params=["embedded", "aws"])
def backend(request: pytest.FixtureRequest, tmp_path: Path,
            clock: ManualClock) -> Iterator[Services]:
    if request.param == "aws":
        from moto import mock_aws

        with mock_aws():
            yield make_services("aws", tmp_path, clock, ingestion_key=INGEST_KEY)
    else:
        yield make_services("embedded", tmp_path, clock, ingestion_key=INGEST_KEY)


def start_job(services: Services, count: int, clock: ManualClock) -> list[str]:
    ids = [f"kpi-{i:03d}" for i in range(count)]
    for kpi_id in ids:
        services.registry.kpis.create(KpiDefinition(
            id=kpi_id, name=kpi_id, kpi_type="price", source=CollectorSource(collector="demo")))
    services.jobs.create(Job(trace_id=TRACE, kpi_ids=ids, created_at=clock.now()))
    return ids


def result(kpi_id: str, value: float = 1.0) -> dict[str, object]:
    return {"traceId": TRACE, "kpiId": kpi_id, "kpiType": "price",
            "timestamp": "2026-11-29T06:00:00Z", "data": value}


def test_the_last_callback_moves_the_job_on_at_once(backend: Services,
                                                    clock: ManualClock) -> None:
    ids = start_job(backend, 40, clock)  # more than the records looked at near a callback
    client = Client(build_api(backend))
    order = ids[:]
    random.Random(4).shuffle(order)
    for n, kpi_id in enumerate(order[:-1]):
        response = client.ingest(result(kpi_id, float(n)))
        assert body_of(response)["job"]["collected"] == [kpi_id]
        assert backend.jobs.require(TRACE).status is JobStatus.COLLECTING, kpi_id
    assert backend.queue.depth("analysis").visible == 0
    client.ingest(result(order[-1]))
    assert backend.jobs.require(TRACE).status is JobStatus.ANALYSING
    assert backend.queue.depth("analysis").visible == 1
    replay = client.ingest(result(order[-1]))  # settles nothing: no second hand-off
    assert body_of(replay)["status"] == "duplicate"
    assert backend.queue.depth("analysis").visible == 1


@pytest.mark.parametrize("order", [["data", "error"], ["error", "data"]])
def test_an_error_report_settles_like_a_result(backend: Services, clock: ManualClock,
                                               order: list[str]) -> None:
    ids = start_job(backend, 2, clock)
    client = Client(build_api(backend))
    for kind, kpi_id in zip(order, ids, strict=True):
        assert backend.jobs.require(TRACE).status is JobStatus.COLLECTING
        if kind == "data":
            client.ingest(result(kpi_id))
        else:
            client.ingest({"traceId": TRACE, "kpiId": kpi_id,
                           "error": {"message": "the source is down"}},
                          path="/api/kpi-error")
    job = backend.jobs.require(TRACE)
    assert job.status is JobStatus.ANALYSING
    statuses = {job.state_of(k).status for k in ids}
    assert statuses == {KpiStatus.COLLECTED, KpiStatus.FAILED}
    assert backend.queue.depth("analysis").visible == 1

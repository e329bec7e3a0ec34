"""The cycle's loops in-process: one tick fires due schedules and recovers; the tick
thread outlives a failing tick; a stage worker stops promptly, after finishing the
message in hand."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from metric_stream.bootstrap import Services
from metric_stream.clock import ManualClock
from metric_stream.collectors.demo import demo_registry
from metric_stream.errors import StorageUnavailable
from metric_stream.models import Job, JobStatus, Schedule
from metric_stream.server.loops import CycleLoops, cycle_tick
from metric_stream.services import cycle
from tests.conftest import make_services


@pytest.fixture
def embedded(tmp_path: Path, clock: ManualClock) -> Services:
    services = make_services("embedded", tmp_path, clock)
    for entry in demo_registry(3):
        services.registry.kpis.create(entry)
    return services


def no_network() -> httpx.Client:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"unexpected request to {request.url}")
    return httpx.Client(transport=httpx.MockTransport(refuse))


def test_a_tick_fires_due_schedules_once_and_recovers(embedded: Services,
                                                      clock: ManualClock) -> None:
    clock.set(datetime(2026, 11, 29, 5, 59, 30, tzinfo=UTC))
    embedded.registry.schedules.create(Schedule(id="daily", cron="0 6 * * *",
                                                created_at=clock.now()))
    assert cycle_tick(embedded).fired == []
    clock.advance(60)
    report = cycle_tick(embedded)  # creates the job and queues its fan-out; no HTTP here
    assert [f.schedule_id for f in report.fired] == ["daily"]
    trace_id = report.fired[0].trace_id
    assert trace_id is not None
    job = embedded.jobs.require(trace_id)
    assert job.schedule_id == "daily" and job.status is JobStatus.COLLECTING
    assert job.triggered_at is None
    assert cycle_tick(embedded).fired == []
    with no_network() as http:
        outcomes = cycle.consume(embedded, cycle.FANOUT, cycle.StageWorkers(),
                                 triggers=cycle.Triggers(http))
    assert [o.result for o in outcomes] == ["triggered"]
    job = embedded.jobs.require(trace_id)
    assert job.status is JobStatus.ANALYSING and job.triggered_at is not None  # demo: all in
    embedded.queue.receive("analysis")  # taken by a worker that dies
    clock.advance(embedded.settings.queue_visibility_timeout + 1)
    assert cycle_tick(embedded).recovered == [trace_id]
    wire = report.to_wire()
    assert wire["fired"] == [{"scheduleId": "daily", "due": "2026-11-29T06:00:00+00:00",
                              "traceId": trace_id, "error": None}]


def test_the_tick_thread_survives_a_failing_tick(embedded: Services, clock: ManualClock,
                                                 caplog: pytest.LogCaptureFixture,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real_headers = embedded.jobs.headers

    def flaky_headers(**kwargs: object) -> list[tuple[str, dict[str, object]]]:
        calls.append(1)
        if len(calls) == 1:
            raise StorageUnavailable("the store is down")
        return real_headers()

    monkeypatch.setattr(embedded.jobs, "headers", flaky_headers)
    loops = CycleLoops(embedded, tick_seconds=0.05, stage_queues=())
    with caplog.at_level(logging.INFO, logger="metric_stream.cycle"), loops:
        deadline = time.monotonic() + 5
        while len(calls) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert loops.running
    assert len(calls) >= 3
    assert "tick failed: the store is down; next tick in 0.05 s" in caplog.text
    assert not loops.running


def test_a_stage_worker_finishes_the_message_in_hand_then_stops(embedded: Services) -> None:
    with no_network() as http:
        job, _ = cycle.start_job(embedded, cycle.Triggers(http))
    working, release = threading.Event(), threading.Event()

    def slow_analysis(services: Services, job: Job) -> None:
        working.set()
        release.wait(5)

    loops = CycleLoops(embedded, workers=cycle.StageWorkers({"analysis": slow_analysis}),
                       stage_queues=("analysis",), tick_seconds=3600)
    loops.start()
    try:
        assert working.wait(10), "the analysis worker took the job"
        stopper = threading.Thread(target=loops.stop)
        stopper.start()
        time.sleep(0.2)
        assert stopper.is_alive()  # waiting for the message in hand
        release.set()
        started = time.monotonic()
        stopper.join(10)
        assert not stopper.is_alive() and time.monotonic() - started < 3
    finally:
        release.set()
        loops.stop()
    assert embedded.jobs.require(job.trace_id).status is JobStatus.PACKAGING
    assert embedded.queue.depth("analysis").visible == 0
    assert embedded.queue.depth("packaging").visible == 1


def test_loops_start_once(embedded: Services) -> None:
    loops = CycleLoops(embedded, stage_queues=(), tick_seconds=3600)
    with loops, pytest.raises(RuntimeError, match="already running"):
        loops.start()

"""The daily cycle's machine on every backend: fan-out, fan-in, stage hand-off,
idempotent consumers, recovery, schedules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from metric_stream.bootstrap import Services
from metric_stream.clock import ManualClock
from metric_stream.collectors.demo import demo_registry
from metric_stream.errors import InvalidInput
from metric_stream.models import Job, JobStatus, KpiStatus, N8nSource, Schedule
from metric_stream.services import cycle
from metric_stream.services.schedules import due_time, tick


def seed_demo(services: Services, count: int = 6) -> list[str]:
    for entry in demo_registry(count):
        services.registry.kpis.create(entry)
    return [k for e in services.registry.kpis.all() for k in e.yields]


def no_network() -> httpx.Client:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"unexpected request to {request.url}")
    return httpx.Client(transport=httpx.MockTransport(refuse))


def settled_job(services: Services) -> Job:
    """A job of every registry entry, fanned out (no network: demo collectors) and
    settled: waiting in the analysis queue."""
    with no_network() as http:
        job, _ = cycle.start_job(services, cycle.Triggers(http))
    return job


def run_to_end(services: Services, trace_id: str) -> list[cycle.StageOutcome]:
    outcomes = []
    for queue in ("analysis", "packaging", "delivery"):
        outcomes += cycle.consume(services, queue, cycle.StageWorkers(), wait_seconds=2)
    return outcomes


def test_a_demo_job_runs_end_to_end(services: Services, clock: ManualClock) -> None:
    kpi_ids = seed_demo(services)
    plan = cycle.plan_fan_out(services.registry.kpis.all())
    assert sorted(plan.kpi_ids) == sorted(kpi_ids)
    job = cycle.create_job(services, plan, demo=True)
    with no_network() as http:
        outcomes = cycle.trigger_job(services, job, plan, cycle.Triggers(http))
    assert all(o.ok for o in outcomes), outcomes
    assert cycle.settle_job(services, job.trace_id)
    assert not cycle.settle_job(services, job.trace_id)  # exactly once
    assert services.queue.depth("analysis").visible == 1
    results = run_to_end(services, job.trace_id)
    assert [r.result for r in results] == ["advanced", "advanced", "completed"]
    done = services.jobs.require(job.trace_id)
    assert done.status is JobStatus.COMPLETE
    assert set(done.stages) >= {"collecting", "analysing", "packaging", "delivering"}
    assert all(p.metadata.get("demo") for k in kpi_ids for p in services.timeseries.points(k))


def test_fan_in_waits_then_times_out_and_the_job_is_partial(services: Services,
                                                           clock: ManualClock) -> None:
    seed_demo(services, 3)
    plan = cycle.plan_fan_out(services.registry.kpis.all())
    job = cycle.create_job(services, plan)
    assert not cycle.settle_job(services, job.trace_id)  # nothing in yet, not timed out
    clock.advance(timedelta(seconds=1801))
    assert cycle.settle_job(services, job.trace_id)
    stored = services.jobs.require(job.trace_id)
    assert stored.status is JobStatus.ANALYSING
    assert set(stored.with_status(KpiStatus.TIMED_OUT)) == set(plan.kpi_ids)
    assert "fan-in timeout" in (stored.state_of(plan.kpi_ids[0]).error or {})["message"]
    run_to_end(services, job.trace_id)
    assert services.jobs.require(job.trace_id).status is JobStatus.PARTIAL


def test_a_redelivered_stage_message_does_nothing_twice(services: Services) -> None:
    seed_demo(services, 2)
    job = settled_job(services)
    services.queue.send("analysis", {"traceId": job.trace_id})  # a duplicate delivery
    first = cycle.consume(services, "analysis", cycle.StageWorkers(), wait_seconds=1)
    assert sorted(o.result for o in first) == ["advanced", "already-done"]
    assert services.queue.depth("packaging").visible == 1


def test_stage_work_runs_once_while_claimed(services: Services, clock: ManualClock) -> None:
    seed_demo(services, 2)
    job = settled_job(services)
    stage = cycle.STAGES["analysis"]
    assert cycle.claim_stage(services, job.trace_id, stage, "crashed-worker", 60, clock.now())
    calls: list[str] = []
    workers = cycle.StageWorkers({"analysis": lambda s, j: calls.append(j.trace_id)})
    busy = cycle.run_stage(services, "analysis", {"traceId": job.trace_id}, workers)
    assert busy.result == "busy" and calls == []
    clock.advance(61)  # the crashed worker's claim ran out
    again = cycle.run_stage(services, "analysis", {"traceId": job.trace_id}, workers)
    assert again.result == "advanced" and calls == [job.trace_id]


def test_malformed_stage_messages_are_dead_lettered_with_the_reason(services: Services) -> None:
    services.queue.send("analysis", {"nope": 1})
    services.queue.send("analysis", {"traceId": "bad id!"})
    assert cycle.consume(services, "analysis", cycle.StageWorkers(), wait_seconds=1) == []
    reasons = set()
    for _ in range(20):
        reasons |= {m.reason for m in services.queue.dead_letters("analysis")}
        if len(reasons) == 2:
            break
    assert any("no traceId" in (r or "") for r in reasons)
    assert any("is not an id" in (r or "") for r in reasons)


def test_recover_hands_on_a_job_whose_message_was_lost(services: Services,
                                                      clock: ManualClock) -> None:
    seed_demo(services, 2)
    job = settled_job(services)
    lost = services.queue.receive("analysis")  # a worker took it and died
    assert len(lost) == 1
    assert cycle.recover(services) == []  # too early: the message may still be in flight
    clock.advance(services.settings.queue_visibility_timeout + 1)
    assert cycle.recover(services) == [job.trace_id]
    outcomes = cycle.consume(services, "analysis", cycle.StageWorkers(), wait_seconds=1)
    assert [o.result for o in outcomes] == ["advanced"]


def test_plan_fan_out_validates(services: Services) -> None:
    seed_demo(services, 3)
    entries = services.registry.kpis.all()
    with pytest.raises(InvalidInput, match="not in the registry"):
        cycle.plan_fan_out(entries, ["ghost"])
    one = cycle.plan_fan_out(entries, [entries[0].yields[0]])
    assert one.entries == (entries[0],)
    with pytest.raises(InvalidInput, match="no active KPI"):
        cycle.plan_fan_out([])


def test_unreachable_or_refused_webhooks_fail_their_kpi_with_the_reason(
        services: Services, clock: ManualClock) -> None:
    from metric_stream.models import KpiDefinition

    services.registry.kpis.create(KpiDefinition(
        id="n8n-down", name="down", kpi_type="price",
        source=N8nSource(webhook_url="http://127.0.0.1:9/webhook/down")))
    services.registry.kpis.create(KpiDefinition(
        id="n8n-metadata", name="meta", kpi_type="price",
        source=N8nSource(webhook_url="http://169.254.169.254/latest")))
    plan = cycle.plan_fan_out(services.registry.kpis.all())
    job = cycle.create_job(services, plan)
    slept: list[float] = []
    with httpx.Client() as http:
        outcomes = cycle.trigger_job(services, job, plan, cycle.Triggers(http, sleep=slept.append))
    assert not any(o.ok for o in outcomes)
    stored = services.jobs.require(job.trace_id)
    down = stored.state_of("n8n-down")
    assert down.status is KpiStatus.FAILED and "could not be triggered" in down.error["message"]
    if services.settings.outbound_allow_loopback is False:  # refused, not retried
        assert "loopback" in down.error["message"] and slept == []
    else:  # allowed (as in these tests on both backends): the collection retry policy
        assert slept == [1, 2, 4]
    meta = stored.state_of("n8n-metadata")
    assert meta.status is KpiStatus.FAILED and "metadata" in meta.error["message"]


def test_schedules_fire_once_per_due_time_even_after_missed_ticks(
        services: Services, clock: ManualClock) -> None:
    seed_demo(services, 2)
    start = datetime(2026, 11, 29, 5, 0, tzinfo=UTC)
    clock.set(start)
    services.registry.schedules.create(Schedule(id="daily", cron="0 6 * * *", created_at=start))
    fired: list[datetime] = []

    def fire(schedule: Schedule, due: datetime) -> str:
        fired.append(due)
        return "trace_x"

    assert tick(services, fire) == []
    clock.set(datetime(2026, 11, 29, 6, 7, tzinfo=UTC))  # ticks between 06:00 and 06:07 missed
    assert [f.due for f in tick(services, fire)] == [datetime(2026, 11, 29, 6, tzinfo=UTC)]
    assert tick(services, fire) == []  # a second tick in the same minute: nothing
    clock.set(datetime(2026, 12, 2, 9, 0, tzinfo=UTC))  # down for three days
    assert [f.due for f in tick(services, fire)] == [datetime(2026, 12, 2, 6, tzinfo=UTC)]
    assert len(fired) == 2
    assert due_time(services.registry.schedules.require("daily"), clock.now()) is None


def test_partial_jobs_skip_delivery_when_the_config_says_so(services: Services,
                                                            clock: ManualClock) -> None:
    from metric_stream.models import SystemConfig

    config = SystemConfig.model_validate({"lifecycle": {"deliverPartial": False}})
    services.config.put(config, clock.now())
    seed_demo(services, 2)
    plan = cycle.plan_fan_out(services.registry.kpis.all())
    job = cycle.create_job(services, plan)
    clock.advance(timedelta(seconds=1801))  # nothing collected: every KPI times out
    assert cycle.settle_job(services, job.trace_id)
    outcomes = run_to_end(services, job.trace_id)
    assert [o.result for o in outcomes] == ["advanced", "completed"]
    done = services.jobs.require(job.trace_id)
    assert done.status is JobStatus.PARTIAL
    assert done.note is not None and "not delivered" in done.note
    assert "delivering" not in done.stages


def test_a_scheduled_job_is_fanned_out_once_by_the_fanout_queue(services: Services,
                                                                clock: ManualClock) -> None:
    seed_demo(services, 3)
    job = cycle.schedule_job(services, schedule_id="daily")
    assert services.jobs.require(job.trace_id).triggered_at is None
    lost = services.queue.receive(cycle.FANOUT)  # a worker took the fan-out and died
    assert len(lost) == 1
    assert cycle.recover(services) == []  # not yet: it may still be at work
    clock.advance(services.settings.queue_visibility_timeout + 1)
    assert cycle.recover(services) == [job.trace_id]  # the fan-out is queued again
    services.queue.send(cycle.FANOUT, {"traceId": job.trace_id})  # and a duplicate
    with no_network() as http:
        outcomes = cycle.consume(services, cycle.FANOUT, cycle.StageWorkers(), wait_seconds=1,
                                 triggers=cycle.Triggers(http))
    assert sorted(o.result for o in outcomes) == ["already-done", "triggered"]
    stored = services.jobs.require(job.trace_id)
    assert stored.status is JobStatus.ANALYSING
    assert all(len(services.timeseries.points(k)) == 1 for k in stored.kpi_ids)
    services.queue.send(cycle.FANOUT, {"traceId": job.trace_id})
    with pytest.raises(ValueError, match="needs triggers"):
        cycle.consume(services, cycle.FANOUT, cycle.StageWorkers(), wait_seconds=1)

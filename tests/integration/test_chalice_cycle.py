"""The cycle on Lambda (chalice.test.Client, AWS backend under moto): the schedule
tick starts a job; the stage consumers advance it, answering an SQS partial batch
response that names only the records to retry. And cold: the tick and a consumer
load no heavy library."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from moto import mock_aws

from metric_stream.bootstrap import Services, build_services
from metric_stream.clock import ManualClock
from metric_stream.collectors.demo import demo_registry
from metric_stream.models import Job, JobStatus, Schedule
from metric_stream.services import cycle
from metric_stream.settings import Settings
from tests.conftest import make_services
from tests.integration.test_observability import check_job_lines, json_lines

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"


@pytest.fixture
def lambda_app(tmp_path: Path, clock: ManualClock) -> Iterator[tuple[ModuleType, Services]]:
    sys.path.insert(0, str(FUNCTIONS))
    try:
        import app as chalice_module

        with mock_aws():
            services = make_services("aws", tmp_path, clock)
            for entry in demo_registry(3):
                services.registry.kpis.create(entry)
            chalice_module.use_services(services)
            try:
                yield chalice_module, services
            finally:
                chalice_module.use_services(None)
    finally:
        sys.path.remove(str(FUNCTIONS))


def tick_event(client: Any) -> dict[str, Any]:
    event: dict[str, Any] = client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={},
        resources=["arn:aws:events:us-east-1:123456789012:rule/metric-stream-tick"])
    return event


def sqs_event(client: Any, queue: str, bodies: list[str]) -> dict[str, Any]:
    event: dict[str, Any] = client.events.generate_sqs_event(
        message_bodies=bodies, queue_name=f"metric-stream-{queue}")
    for n, record in enumerate(event["Records"]):
        record["messageId"] = f"message-{n}"  # the generator gives every record the same id
    return event


def started_job(services: Services) -> str:
    """A job whose KPIs are all in: settled, waiting in the analysis stage."""
    import httpx

    with httpx.Client() as http:
        job, _ = cycle.start_job(services, cycle.Triggers(http))
    return job.trace_id


def test_the_tick_starts_a_job_for_a_due_schedule(lambda_app: tuple[ModuleType, Services],
                                                  clock: ManualClock) -> None:
    from chalice.test import Client

    module, services = lambda_app
    clock.set(datetime(2026, 11, 29, 5, 59, 30, tzinfo=UTC))
    services.registry.schedules.create(Schedule(id="daily", cron="0 6 * * *",
                                                created_at=clock.now()))
    with Client(module.app) as client:
        assert client.lambda_.invoke("tick", tick_event(client)).payload["fired"] == []
        clock.advance(60)
        report = client.lambda_.invoke("tick", tick_event(client)).payload
        [fired] = report["fired"]
        assert fired["scheduleId"] == "daily" and fired["error"] is None
        assert client.lambda_.invoke("tick", tick_event(client)).payload["fired"] == []
        job = services.jobs.require(fired["traceId"])
        assert job.schedule_id == "daily" and job.status is JobStatus.COLLECTING
        body = json.dumps({"traceId": fired["traceId"]})
        answer = client.lambda_.invoke("fanout_consumer",
                                       sqs_event(client, "fanout", [body, body])).payload
        assert answer == {"batchItemFailures": []}  # the second one: already triggered
    job = services.jobs.require(fired["traceId"])
    assert job.status is JobStatus.ANALYSING  # the demo collectors answered at once
    assert services.queue.depth("analysis").visible == 1


def test_consumers_advance_a_job_and_report_only_bad_records(
        lambda_app: tuple[ModuleType, Services]) -> None:
    from chalice.test import Client

    module, services = lambda_app
    trace_id = started_job(services)
    good = json.dumps({"traceId": trace_id})
    with Client(module.app) as client:
        answer = client.lambda_.invoke("analysis_consumer", sqs_event(
            client, "analysis", [good, "{not json", json.dumps({"nope": 1}), good])).payload
        # the duplicate of a handled message is no failure; the malformed ones are
        assert answer == {"batchItemFailures": [{"itemIdentifier": "message-1"},
                                                {"itemIdentifier": "message-2"}]}
        assert services.jobs.require(trace_id).status is JobStatus.PACKAGING
        for stage in ("packaging", "delivery"):
            answer = client.lambda_.invoke(f"{stage}_consumer",
                                           sqs_event(client, stage, [good])).payload
            assert answer == {"batchItemFailures": []}
    job = services.jobs.require(trace_id)
    assert job.status is JobStatus.COMPLETE
    assert set(job.stages) >= {"collecting", "analysing", "packaging", "delivering"}


def test_a_stage_held_by_another_worker_is_retried(lambda_app: tuple[ModuleType, Services],
                                                   clock: ManualClock) -> None:
    from chalice.test import Client

    module, services = lambda_app
    trace_id = started_job(services)
    assert cycle.claim_stage(services, trace_id, cycle.STAGES["analysis"], "other", 60,
                             clock.now())
    with Client(module.app) as client:
        answer = client.lambda_.invoke("analysis_consumer", sqs_event(
            client, "analysis", [json.dumps({"traceId": trace_id})])).payload
    assert answer == {"batchItemFailures": [{"itemIdentifier": "message-0"}]}
    assert services.jobs.require(trace_id).status is JobStatus.ANALYSING


def test_a_stage_that_fails_is_retried_without_its_neighbours(
        lambda_app: tuple[ModuleType, Services], monkeypatch: pytest.MonkeyPatch) -> None:
    from chalice.test import Client

    module, services = lambda_app
    broken, fine = started_job(services), started_job(services)

    def analyse(services: Services, job: Job) -> None:
        if job.trace_id == broken:
            raise RuntimeError("the chart renderer crashed")

    monkeypatch.setattr(module, "_workers", cycle.StageWorkers({"analysis": analyse}))
    with Client(module.app) as client:
        answer = client.lambda_.invoke("analysis_consumer", sqs_event(
            client, "analysis", [json.dumps({"traceId": t}) for t in (broken, fine)])).payload
    assert answer == {"batchItemFailures": [{"itemIdentifier": "message-0"}]}
    assert services.jobs.require(broken).status is JobStatus.ANALYSING
    assert services.jobs.require(fine).status is JobStatus.PACKAGING


EVENTS = Path(__file__).resolve().parents[1] / "events"
SQS_TRACE_ID = "trace_20261129_060000_c01d57"  # the job events/sqs-analysis.json names

PROBE = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import app as chalice_app
tick = chalice_app.tick(json.loads(open(sys.argv[2]).read()), None)
consumed = chalice_app.analysis_consumer(json.loads(open(sys.argv[3]).read()), None)
print(json.dumps({"tick": tick, "consumed": consumed,
                  "loaded": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def test_tick_and_consumer_cold_start_load_nothing_heavy(tmp_path: Path) -> None:
    home = tmp_path / "home"
    services = build_services(Settings(home=home))
    services.init()
    entries = demo_registry(2)
    for entry in entries:
        services.registry.kpis.create(entry)
    services.registry.schedules.create(Schedule(
        id="due", cron="* * * * *", created_at=datetime(2026, 1, 1, tzinfo=UTC)))
    services.jobs.create(Job(trace_id=SQS_TRACE_ID, kpi_ids=[k for e in entries for k in e.yields],
                             created_at=datetime.now(UTC), status=JobStatus.ANALYSING))
    env = {**os.environ, "METRIC_STREAM_HOME": str(home), "METRIC_STREAM_BACKEND": "embedded"}
    out = subprocess.run([sys.executable, "-c", PROBE, str(FUNCTIONS),
                          str(EVENTS / "cloudwatch-scheduled.json"),
                          str(EVENTS / "sqs-analysis.json")],
                         env=env, capture_output=True, text=True, timeout=60, check=True).stdout
    result = json.loads(out)
    [fired] = result["tick"]["fired"]
    assert fired["scheduleId"] == "due" and fired["error"] is None
    assert services.jobs.require(fired["traceId"]).schedule_id == "due"
    assert result["consumed"] == {"batchItemFailures": []}
    assert services.jobs.require(SQS_TRACE_ID).status is JobStatus.PACKAGING
    heavy = {"matplotlib", "reportlab", "textual", "boto3", "botocore", "numpy", "moto"}
    assert heavy.isdisjoint(result["loaded"])


def test_lambda_consumers_log_json_lines_with_trace_and_lambda_request_ids(
        lambda_app: tuple[ModuleType, Services], capsys: pytest.CaptureFixture[str]) -> None:
    from chalice.test import Client

    module, services = lambda_app
    module.configure_lambda_logging()  # what the app does on import when on Lambda
    trace_id = started_job(services)
    capsys.readouterr()
    body = json.dumps({"traceId": trace_id})
    with Client(module.app) as client:
        for stage in ("analysis", "packaging", "delivery"):
            answer = client.lambda_.invoke(f"{stage}_consumer", sqs_event(client, stage, [body]))
            assert answer.payload == {"batchItemFailures": []}
    assert services.jobs.require(trace_id).status.terminal
    job_lines = check_job_lines(json_lines(capsys.readouterr().err), trace_id)
    by_stage = {line["stage"]: line["requestId"] for line in job_lines if line.get("result")}
    assert set(by_stage) == {"analysis", "packaging", "delivery"}
    assert len(set(by_stage.values())) == 3  # each invocation's own Lambda request id
    assert all(line.get("requestId") for line in job_lines)

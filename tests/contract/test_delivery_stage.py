"""The delivery stage on every backend, against a receiver on 127.0.0.1: one send per job
and endpoint whatever re-runs, records with attempts and errors, re-sends of the failed
or of one endpoint, who gets a report, endpoint health and auto-disable, operator
alerts sent once."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from metric_stream.bootstrap import Services
from metric_stream.clock import ManualClock
from metric_stream.collectors.demo import demo_registry, seed_history
from metric_stream.models import CollectorSource, KpiDefinition
from metric_stream.models.config import DeliveryConfig, RetryPolicy
from metric_stream.models.delivery import DeliveryEndpoint, DeliveryStatus
from metric_stream.models.job import Job
from metric_stream.services import admin, cycle
from metric_stream.services.alerts import alert_after_delivery
from metric_stream.services.delivery import DeliveryRun, deliver, deliver_job, wants
from metric_stream.services.stages import default_workers
from metric_stream.signing import sign
from tests.conftest import make_services
from tests.delivery_sink import APPRISE_IMPORT, Received, Sink, running_sink

FAST = RetryPolicy(retries=2, delays_s=[0, 0.01])


@pytest.fixture(params=["embedded", "aws"])
def services(request: pytest.FixtureRequest, tmp_path: Path,
             clock: ManualClock) -> Iterator[Services]:
    """The services on each backend, allowed to reach the receiver on loopback, with fast
    retries and an hour of failures before an endpoint is disabled."""

    def build(kind: str) -> Services:
        built = make_services(kind, tmp_path, clock, outbound_allow_loopback=True)
        config = built.config.get()
        built.config.put(config.model_copy(update={
            "retry": config.retry.model_copy(update={"delivery": FAST}),
            "delivery": DeliveryConfig(timeout_s=2, jitter=0, auto_disable_after_s=3600),
        }), clock.now())
        return built

    if request.param == "aws":
        from moto import mock_aws

        with mock_aws():
            yield build("aws")
    else:
        yield build("embedded")


@pytest.fixture
def sink() -> Iterator[Sink]:
    with running_sink() as running:
        yield running


def packaged_job(services: Services, clock: ManualClock) -> Job:
    """A demo job through analysis and packaging: its messages are ready to deliver."""
    entries = demo_registry(3)
    for entry in entries:
        services.registry.kpis.create(entry)
    seed_history(services, entries, 30, (clock.now() - timedelta(days=1)).date())
    with httpx.Client() as http:
        job, _ = cycle.start_job(services, cycle.Triggers(http), demo=True)
    workers = default_workers()
    for queue in ("analysis", "packaging"):
        cycle.consume(services, queue, workers, wait_seconds=0)
    return services.jobs.require(job.trace_id)


def add(services: Services, endpoint_id: str, url: str, **fields: object) -> DeliveryEndpoint:
    endpoint, _ = admin.create_endpoint(services, DeliveryEndpoint.model_validate(
        {"id": endpoint_id, "name": endpoint_id, "url": url, **fields}))
    return endpoint


def webhook_of(services: Services, trace_id: str) -> object:
    consolidated = services.packages.consolidated(trace_id)
    assert consolidated is not None and consolidated.messages is not None
    return consolidated.messages["webhook"]


def assert_signed(received: Received, endpoint: DeliveryEndpoint, message_id: str) -> None:
    headers = received.headers
    assert endpoint.signing_secret and endpoint.signing_secret.startswith("whsec_")
    assert headers["webhook-id"] == message_id
    timestamp = int(headers["webhook-timestamp"])
    assert headers["webhook-signature"] == sign(endpoint.signing_secret, message_id, timestamp,
                                                received.body)


def test_each_endpoint_is_sent_once_and_recorded(services: Services, clock: ManualClock,
                                                 sink: Sink) -> None:
    job = packaged_job(services, clock)
    trace = job.trace_id
    endpoints = {
        "ok-1": add(services, "ok-1", sink.on("/ok-1")),
        "ok-2": add(services, "ok-2", sink.on("/ok-2").replace("http://", "json://")),
        "flaky": add(services, "flaky", sink.on("/flaky", fail=1, fail_status=503)),
        "down": add(services, "down", sink.on("/down", status=500, body=b"maintenance")),
        "gone": add(services, "gone", sink.on("/gone", status=410, body=b"no such hook")),
    }
    run = deliver(services, trace)
    assert (run.planned, run.sent, run.failed, run.already_sent) == (5, 3, 2, 0)
    assert run.disabled == ["gone"]
    assert sink.paths() == {"/ok-1": 1, "/ok-2": 1, "/flaky": 2, "/down": 3, "/gone": 1}

    now = clock.now()
    records = {r.endpoint_id: r for r in services.deliveries.list(trace)}
    assert set(records) == set(endpoints)
    for endpoint_id, attempts in (("ok-1", 1), ("ok-2", 1), ("flaky", 2)):
        record = records[endpoint_id]
        assert record.status is DeliveryStatus.SENT and record.attempts == attempts
        assert record.sent_at == now and record.last_status_code == 200
        assert record.channel == "webhook" and record.last_error is None
    down, gone = records["down"], records["gone"]
    assert down.status is DeliveryStatus.FAILED and down.attempts == 3
    assert down.last_error == "HTTP 500: maintenance" and down.last_status_code == 500
    assert gone.status is DeliveryStatus.FAILED and gone.attempts == 1
    assert gone.last_status_code == 410 and gone.sent_at is None

    webhook = webhook_of(services, trace)
    for endpoint_id in ("ok-1", "ok-2", "flaky"):
        for received in sink.hits(f"/{endpoint_id}"):
            assert json.loads(received.body) == webhook
            assert_signed(received, endpoints[endpoint_id], f"{trace}:{endpoint_id}")

    health = {e.id: e for e in services.registry.endpoints.all()}
    assert health["ok-1"].health.last_success_at == now and health["ok-1"].active
    assert health["down"].active and health["down"].health.consecutive_failures == 1
    assert health["down"].health.failing_since == now
    assert health["down"].health.last_error == "HTTP 500: maintenance"
    assert not health["gone"].active and health["gone"].health.disabled_at == now
    assert health["gone"].health.disabled_reason == (
        "the service says the address is gone (HTTP 410 Gone: no such hook)")


def test_a_rerun_sends_only_what_was_not_sent(services: Services, clock: ManualClock,
                                              sink: Sink) -> None:
    job = packaged_job(services, clock)
    trace = job.trace_id
    add(services, "ok-1", sink.on("/ok-1"))
    add(services, "ok-2", sink.on("/ok-2"))
    add(services, "down", sink.on("/down", status=500))
    first = deliver(services, trace)
    assert (first.sent, first.failed) == (2, 1)

    again = deliver(services, trace)  # a re-run: the sent are not sent again
    assert (again.already_sent, again.planned, again.sent, again.failed) == (2, 1, 0, 1)
    assert sink.paths() == {"/ok-1": 1, "/ok-2": 1, "/down": 6}

    sink.on("/down")  # back up
    add(services, "late", sink.on("/late"))  # no record yet: not a failed one
    retried = deliver(services, trace, failed_only=True)
    assert (retried.planned, retried.sent, retried.skipped, retried.already_sent) == (1, 1, 1, 2)
    assert sink.paths() == {"/ok-1": 1, "/ok-2": 1, "/down": 7}
    down = services.deliveries.get(trace, "down")
    assert down is not None and down.status is DeliveryStatus.SENT and down.attempts == 7

    resent = deliver(services, trace, endpoint_ids=["ok-1"], resend=True)
    assert (resent.planned, resent.sent, resent.already_sent) == (1, 1, 0)
    first_send, second_send = sink.hits("/ok-1")
    assert first_send.headers["webhook-id"] == second_send.headers["webhook-id"] == f"{trace}:ok-1"
    assert first_send.body == second_send.body
    ok = services.deliveries.get(trace, "ok-1")
    assert ok is not None and ok.status is DeliveryStatus.SENT and ok.attempts == 2

    rest = deliver(services, trace)
    assert (rest.planned, rest.sent, rest.already_sent) == (1, 1, 3)
    assert sink.paths() == {"/ok-1": 2, "/ok-2": 1, "/down": 7, "/late": 1}
    assert deliver(services, trace).planned == 0


def test_who_gets_the_report(services: Services, clock: ManualClock, sink: Sink) -> None:
    job = packaged_job(services, clock)
    consolidated = services.packages.consolidated(job.trace_id)
    assert consolidated is not None and not consolidated.analytics.get("alerts")
    services.registry.kpis.create(KpiDefinition(
        id="late-kpi", name="Late", kpi_type="price", source=CollectorSource(collector="demo")))
    add(services, "all", sink.on("/all"))
    add(services, "one-kpi", sink.on("/one-kpi"), kpis=[job.kpi_ids[0]])
    add(services, "other-kpi", sink.on("/other-kpi"), kpis=["late-kpi"])
    alerts_only = add(services, "alerts-only", sink.on("/alerts-only"), kpis="alerts")
    add(services, "inactive", sink.on("/inactive"), active=False)
    add(services, "operator", sink.on("/operator"), operator=True)

    run = deliver(services, job.trace_id)
    assert (run.planned, run.sent) == (2, 2)
    assert sink.paths() == {"/all": 1, "/one-kpi": 1}
    assert {r.endpoint_id for r in services.deliveries.list(job.trace_id)} == {"all", "one-kpi"}

    alerting = consolidated.model_copy(update={"analytics": {
        **consolidated.analytics, "alerts": [{"kpiId": job.kpi_ids[0], "kind": "move"}]}})
    assert wants(alerts_only, job, alerting) and not wants(alerts_only, job, consolidated)


@APPRISE_IMPORT
def test_an_apprise_endpoint_is_delivered_and_recorded(services: Services, clock: ManualClock,
                                                       sink: Sink) -> None:
    job = packaged_job(services, clock)
    add(services, "ntfy", f"ntfy://127.0.0.1:{sink.port}/reports")
    run = deliver(services, job.trace_id)
    assert (run.planned, run.sent) == (1, 1)
    record = services.deliveries.get(job.trace_id, "ntfy")
    assert record is not None and record.status is DeliveryStatus.SENT
    assert record.channel == "apprise" and record.attempts == 1
    (received,) = sink.hits("/")
    payload = json.loads(received.body)
    consolidated = services.packages.consolidated(job.trace_id)
    document = services.packages.document(job.trace_id)
    assert consolidated is not None and consolidated.messages is not None
    assert document is not None and document.url
    assert payload["topic"] == "reports"
    assert payload["title"] == consolidated.messages["email"]["subject"]
    assert document.url in payload["message"]


def test_health_and_auto_disable(services: Services, clock: ManualClock, sink: Sink) -> None:
    job = packaged_job(services, clock)
    trace = job.trace_id
    add(services, "failing", sink.on("/failing", status=500, body=b"still down"))
    add(services, "recovering", sink.on("/recovering", fail=3))  # fails a whole first run
    t0 = clock.now()

    first = deliver(services, trace)
    assert (first.sent, first.failed, first.disabled) == (0, 2, [])
    for endpoint_id in ("failing", "recovering"):
        health = services.registry.endpoints.require(endpoint_id).health
        assert health.consecutive_failures == 1 and health.failing_since == t0
        assert health.last_failure_at == t0 and health.last_status == 500

    clock.advance(timedelta(minutes=30))
    second = deliver(services, trace)
    assert (second.sent, second.failed, second.disabled) == (1, 1, [])
    failing = services.registry.endpoints.require("failing")
    assert failing.active and failing.health.consecutive_failures == 2
    assert failing.health.failing_since == t0  # kept until a success
    recovering = services.registry.endpoints.require("recovering").health
    assert recovering.consecutive_failures == 0 and recovering.failing_since is None
    assert recovering.last_success_at == clock.now() and recovering.last_failure_at == t0

    clock.advance(timedelta(minutes=90))  # t0 + 2 h: failing for longer than the hour
    third = deliver(services, trace)
    assert (third.planned, third.failed, third.disabled) == (1, 1, ["failing"])
    failing = services.registry.endpoints.require("failing")
    assert not failing.active and failing.health.disabled_at == clock.now()
    assert failing.health.disabled_reason == (
        "failing for 0.1 days without a success (3 failures; last: HTTP 500: still down)")
    assert deliver(services, trace).planned == 0  # disabled: no longer a recipient
    assert sink.paths() == {"/failing": 9, "/recovering": 4}

    sink.on("/recovering", status=500)  # fails again, 2 h after its first failure
    resent = deliver(services, trace, endpoint_ids=["recovering"], resend=True)
    assert (resent.failed, resent.disabled) == (1, [])
    recovering = services.registry.endpoints.require("recovering").health
    assert recovering.failing_since == clock.now() and recovering.consecutive_failures == 1


def test_operators_get_the_disabled_alert_once(services: Services, clock: ManualClock,
                                               sink: Sink) -> None:
    job = packaged_job(services, clock)
    trace = job.trace_id
    add(services, "ok", sink.on("/ok"))
    add(services, "gone", sink.on("/gone", status=410, body=b"deleted"))
    ops = add(services, "ops", sink.on("/ops"), operator=True)

    assert deliver_job(services, job) == []
    (alert,) = sink.hits("/ops")
    assert_signed(alert, ops, f"{trace}:alert-disabled:ops")
    body = json.loads(alert.body)
    assert body["type"] == "metric-stream.alert" and body["cause"] == "disabled"
    assert body["scope"] == trace and body["title"] == "1 delivery endpoint(s) disabled"
    assert body["lines"] == [
        "gone: the service says the address is gone (HTTP 410 Gone: deleted)"]

    alert_after_delivery(services, job, DeliveryRun(trace, disabled=["gone"]))  # again
    assert deliver_job(services, job) == []  # the stage re-run
    assert sink.paths() == {"/ok": 1, "/gone": 1, "/ops": 1}


def test_an_endpoint_edited_or_deleted_while_sending_stays_so(
        services: Services, clock: ManualClock, sink: Sink) -> None:
    job = packaged_job(services, clock)
    edited = add(services, "edited", sink.on("/edited", delay=0.4))
    add(services, "deleted", sink.on("/deleted", delay=0.4))

    def edit_while_sending() -> None:
        if sink.wait_for(2):
            admin.replace_endpoint(services, "edited", edited.model_copy(
                update={"name": "Renamed", "active": False}))
            services.registry.endpoints.delete("deleted")

    editor = threading.Thread(target=edit_while_sending)
    editor.start()
    run = deliver(services, job.trace_id)
    editor.join()
    assert run.sent == 2
    saved = services.registry.endpoints.require("edited")
    assert saved.health.last_success_at == clock.now()  # the health is recorded
    assert saved.name == "Renamed" and not saved.active  # and the edit kept
    assert services.registry.endpoints.get("deleted") is None  # not brought back

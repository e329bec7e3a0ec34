"""Admin API: jobs (list, detail, run now), time series range reads and documents."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from metric_stream.bootstrap import Services
from metric_stream.clock import ManualClock
from metric_stream.collectors.demo import demo_registry
from metric_stream.models import DataPoint, Job, KpiStatus
from metric_stream.models.config import DeliveryConfig, RetryPolicy
from metric_stream.models.delivery import DeliveryEndpoint, DeliveryRecord, DeliveryStatus
from metric_stream.models.job import JobStatus, StageTiming
from metric_stream.models.report import ConsolidatedPackage, DocumentRecord
from tests.api.conftest import TRACE, Client
from tests.api.test_admin_registry import admin
from tests.delivery_sink import Sink, running_sink


@pytest.fixture
def demo_ids(services: Services) -> list[str]:
    entries = demo_registry(4)
    for entry in entries:
        services.registry.kpis.create(entry)
    return [e.id for e in entries]


def test_run_now_collects_the_named_demo_kpis(client: Client, services: Services,
                                              demo_ids: list[str]) -> None:
    status, answer = admin(client, "POST", "/api/jobs", {"kpis": demo_ids, "demo": True})
    assert status == 201, answer
    job = answer["job"]
    assert sorted(job["kpiIds"]) == sorted(demo_ids) and job["demo"] is True
    assert {k: s["status"] for k, s in job["kpis"].items()} == dict.fromkeys(demo_ids,
                                                                             "collected")
    assert job["status"] == "analysing"  # every KPI in: fan-in moved it on
    assert sorted(t["entryId"] for t in answer["triggers"]) == sorted(demo_ids)
    assert all(t["ok"] for t in answer["triggers"])
    stored = services.jobs.require(job["traceId"])
    assert stored.demo and all(stored.state_of(k).status is KpiStatus.COLLECTED
                               for k in demo_ids)
    assert all(len(services.timeseries.points(k)) == 1 for k in demo_ids)


def test_run_now_with_an_empty_body_runs_every_active_kpi(client: Client, services: Services,
                                                          demo_ids: list[str]) -> None:
    for fixture_entry in ("btc-price", "fear-greed", "cbbi-multi"):
        assert admin(client, "DELETE", f"/api/kpis/{fixture_entry}")[0] == 200
    demo_off = demo_ids[-1]
    services.registry.kpis.replace(services.registry.kpis.require(demo_off).model_copy(
        update={"active": False}))
    status, answer = admin(client, "POST", "/api/jobs")
    assert status == 201
    assert sorted(answer["job"]["kpiIds"]) == sorted(demo_ids[:-1])
    assert answer["job"]["demo"] is False


def test_run_now_validation(client: Client, services: Services) -> None:
    status, error = admin(client, "POST", "/api/jobs", {"kpis": ["ghost"]})
    assert status == 422 and error["error"]["field"] == "kpis"
    assert "ghost" in error["error"]["message"]
    status, error = admin(client, "POST", "/api/jobs", {"kpis": "btc-price"})
    assert status == 422 and error["error"]["field"] == "kpis"
    status, error = admin(client, "POST", "/api/jobs", {"demo": "yes please"})
    assert status == 422 and error["error"]["field"] == "demo"
    assert services.jobs.list() == []


def test_list_jobs_newest_first_with_limit_and_status(client: Client, services: Services,
                                                      clock: ManualClock) -> None:
    for n in range(3):
        services.jobs.create(Job(trace_id=f"trace_{n}", kpi_ids=["btc-price"],
                                 created_at=clock.now(),
                                 status=JobStatus.COMPLETE if n == 1 else JobStatus.COLLECTING))
        clock.advance(60)
    status, listed = admin(client, "GET", "/api/jobs")
    assert status == 200
    assert [j["traceId"] for j in listed["jobs"]] == ["trace_2", "trace_1", "trace_0"]
    assert listed["jobs"][0]["kpiCounts"]["pending"] == 1
    assert "kpis" not in listed["jobs"][0]  # the detail route has them
    limited = admin(client, "GET", "/api/jobs?limit=2")[1]
    assert [j["traceId"] for j in limited["jobs"]] == ["trace_2", "trace_1"]
    complete = admin(client, "GET", "/api/jobs?status=complete")[1]
    assert [j["traceId"] for j in complete["jobs"]] == ["trace_1"]
    for query, field in (("limit=0", "limit"), ("limit=abc", "limit"), ("limit=201", "limit"),
                         ("status=done", "status")):
        status, error = admin(client, "GET", f"/api/jobs?{query}")
        assert status == 422 and error["error"]["field"] == field


def test_job_detail_has_errors_stages_deliveries_and_document(
        client: Client, services: Services, clock: ManualClock) -> None:
    services.jobs.create(Job(trace_id=TRACE, created_at=clock.now(),
                             kpi_ids=["btc-price", "fear-greed"],
                             stages={"collecting": StageTiming(started_at=clock.now())}))
    error = {"message": "upstream 502", "name": "NodeApiError", "code": 502,
             "stack": "at n8n..."}
    services.jobs.mark_kpi(TRACE, "btc-price", KpiStatus.FAILED, clock.now(), error=error)
    services.jobs.advance(TRACE, JobStatus.ANALYSING, clock.now() + timedelta(seconds=90),
                          only_from=[JobStatus.COLLECTING], finish_stage="collecting")
    secret_url = "https://93.184.215.14/hook/tok-SECRET-123?key=abc-SECRET-456"
    services.registry.endpoints.create(DeliveryEndpoint(id="hook", name="Hook", url=secret_url))
    services.deliveries.put(DeliveryRecord(
        trace_id=TRACE, endpoint_id="hook", status=DeliveryStatus.FAILED, attempts=3,
        last_error=f"HTTP 500 from {secret_url}"))
    services.packages.put_document(DocumentRecord(trace_id=TRACE, blob_key="reports/x.pdf",
                                                  size_bytes=10, created_at=clock.now()))
    response = client.call("GET", f"/api/jobs/{TRACE}", headers={"authorization":
                                                                  "Bearer admin-key-for-tests"})
    assert response.status == 200
    assert b"SECRET" not in response.body
    _, detail = admin(client, "GET", f"/api/jobs/{TRACE}")
    assert detail["status"] == "analysing"
    assert detail["kpis"]["btc-price"] == {"status": "failed", "error": error,
                                           "updatedAt": "2026-11-29T06:00:00Z"}
    assert detail["kpis"]["fear-greed"]["status"] == "pending"
    assert detail["missing"] == ["btc-price"]
    assert detail["stages"]["collecting"]["durationS"] == 90.0
    assert detail["stages"]["analysing"]["startedAt"] == "2026-11-29T06:01:30Z"
    (delivery,) = detail["deliveries"]
    assert delivery["endpointId"] == "hook" and delivery["attempts"] == 3
    assert delivery["url"] == "https://93.184.215.14/***?***"
    assert delivery["lastError"].startswith("HTTP 500 from https://93.184.215.14/***")
    assert detail["document"]["blobKey"] == "reports/x.pdf"
    assert detail["document"]["downloadPath"] == f"/api/documents/{TRACE}"
    assert admin(client, "GET", "/api/jobs/trace_nope")[0] == 404


def test_timeseries_range_read(client: Client, services: Services, clock: ManualClock) -> None:
    start = clock.now() - timedelta(days=5)
    services.timeseries.append([DataPoint(kpi_id="btc-price", timestamp=start + timedelta(days=d),
                                          value=100.0 + d, metadata={"day": d})
                                for d in range(5)])
    services.timeseries.append([DataPoint(kpi_id="cbbi-mvrv", timestamp=start, value=2.0)])
    status, read = admin(client, "GET", "/api/timeseries/btc-price?from=2026-11-25T06:00:00Z"
                                        "&to=2026-11-26T07:00:00%2B01:00")
    assert status == 200
    assert (read["from"], read["to"]) == ("2026-11-25T06:00:00Z", "2026-11-26T06:00:00Z")
    assert [p["value"] for p in read["points"]] == [101.0, 102.0]
    assert read["points"][0] == {"timestamp": "2026-11-25T06:00:00Z", "value": 101.0,
                                 "metadata": {"day": 1}}
    assert read["count"] == 2 and read["truncated"] is False
    everything = admin(client, "GET", "/api/timeseries/btc-price")[1]
    assert [p["value"] for p in everything["points"]] == [100.0, 101.0, 102.0, 103.0, 104.0]
    limited = admin(client, "GET", "/api/timeseries/btc-price?limit=2")[1]
    assert limited["count"] == 2 and limited["truncated"] is True
    yielded = admin(client, "GET", "/api/timeseries/cbbi-mvrv")[1]  # a multi-KPI source's id
    assert [p["value"] for p in yielded["points"]] == [2.0]


@pytest.mark.parametrize(("query", "field"), [
    ("from=yesterday", "from"),
    ("from=2026-11-25T06:00:00", "from"),
    ("to=2026-11-25", "to"),
    ("from=2026-11-26T00:00:00Z&to=2026-11-25T00:00:00Z", "from"),
    ("limit=-1", "limit"),
])
def test_timeseries_bad_parameters_are_named(client: Client, query: str, field: str) -> None:
    status, error = admin(client, "GET", f"/api/timeseries/btc-price?{query}")
    assert status == 422 and error["error"]["field"] == field


def test_timeseries_hints_at_an_unescaped_plus_and_knows_its_kpis(client: Client) -> None:
    status, error = admin(client, "GET", "/api/timeseries/btc-price?from=2026-11-25T06:00:00+01:00")
    assert status == 422 and "%2B" in error["error"]["message"]
    status, error = admin(client, "GET", "/api/timeseries/ghost")
    assert status == 404 and error["error"]["field"] == "kpiId"


def test_documents_are_served_with_their_content_type(client: Client, services: Services,
                                                      clock: ManualClock) -> None:
    pdf = b"%PDF-1.7\n%fake report\n"
    services.blobs.put("reports/2026/11/report.pdf", pdf, content_type="application/pdf")
    services.packages.put_document(DocumentRecord(
        trace_id=TRACE, blob_key="reports/2026/11/report.pdf", size_bytes=len(pdf),
        created_at=clock.now()))
    response = client.call("GET", f"/api/documents/{TRACE}",
                           headers={"authorization": "Bearer admin-key-for-tests"})
    assert response.status == 200 and response.body == pdf
    assert response.headers["content-type"] == "application/pdf"
    assert TRACE in response.headers["content-disposition"]
    status, error = admin(client, "GET", "/api/documents/trace_none")
    assert status == 404 and error["error"]["field"] == "traceId"
    services.packages.put_document(DocumentRecord(
        trace_id="trace_lost", blob_key="reports/gone.pdf", size_bytes=1, created_at=clock.now()))
    status, error = admin(client, "GET", "/api/documents/trace_lost")
    assert status == 404 and "missing" in error["error"]["message"]


@pytest.fixture
def sink() -> Iterator[Sink]:
    with running_sink() as running:
        yield running


def delivered_job(services: Services, clock: ManualClock, sink: Sink) -> None:
    """A complete job whose report went to `ok` and failed at `down` (3 attempts)."""
    config = services.config.get()
    services.config.put(config.model_copy(update={
        "retry": config.retry.model_copy(update={"delivery": RetryPolicy(retries=0,
                                                                         delays_s=[])}),
        "delivery": DeliveryConfig(timeout_s=2, jitter=0)}), clock.now())
    services.jobs.create(Job(trace_id=TRACE, created_at=clock.now(), kpi_ids=["btc-price"],
                             status=JobStatus.COMPLETE))
    services.packages.put_consolidated(ConsolidatedPackage(
        trace_id=TRACE, kpi_ids=["btc-price"], created_at=clock.now(),
        messages={"webhook": {"traceId": TRACE, "summary": "BTC up"}}))
    for endpoint_id, path in (("ok", "/ok"), ("down", "/down")):
        services.registry.endpoints.create(DeliveryEndpoint(
            id=endpoint_id, name=endpoint_id, url=sink.on(path, status=204, body=b"")))
    services.deliveries.put(DeliveryRecord(trace_id=TRACE, endpoint_id="ok",
                                           status=DeliveryStatus.SENT, attempts=1))
    services.deliveries.put(DeliveryRecord(trace_id=TRACE, endpoint_id="down",
                                           status=DeliveryStatus.FAILED, attempts=3,
                                           last_error="HTTP 503"))


def test_redeliver_sends_again_where_it_failed(client: Client, services: Services,
                                               clock: ManualClock, sink: Sink) -> None:
    delivered_job(services, clock, sink)
    status, run = admin(client, "POST", f"/api/jobs/{TRACE}/deliver", {"failedOnly": True})
    assert status == 200, run
    assert (run["traceId"], run["planned"], run["sent"], run["failed"]) == (TRACE, 1, 1, 0)
    assert run["alreadySent"] == 1
    assert [r.path for r in sink.received] == ["/down"]
    record = services.deliveries.get(TRACE, "down")
    assert record is not None and record.status is DeliveryStatus.SENT and record.attempts == 4
    again = admin(client, "POST", f"/api/jobs/{TRACE}/deliver")[1]  # an empty body
    assert (again["planned"], again["alreadySent"]) == (0, 2)


def test_redeliver_to_named_endpoints_resends(client: Client, services: Services,
                                              clock: ManualClock, sink: Sink) -> None:
    delivered_job(services, clock, sink)
    status, run = admin(client, "POST", f"/api/jobs/{TRACE}/deliver", {"endpoints": ["ok"]})
    assert status == 200 and (run["planned"], run["sent"]) == (1, 1)
    assert [r.path for r in sink.received] == ["/ok"]


def test_redeliver_refusals(client: Client, services: Services, clock: ManualClock,
                            sink: Sink) -> None:
    status, error = admin(client, "POST", "/api/jobs/trace_nope/deliver", {})
    assert status == 404
    services.jobs.create(Job(trace_id="trace_early", created_at=clock.now(),
                             kpi_ids=["btc-price"]))
    status, error = admin(client, "POST", "/api/jobs/trace_early/deliver", {})
    assert status == 404 and "no messages" in error["error"]["message"]
    delivered_job(services, clock, sink)
    for body, field in (({"failedOnly": "sometimes"}, "failedOnly"),
                        ({"endpoints": "ok"}, "endpoints"),
                        ({"endpoints": ["ok", "ok"]}, "endpoints"), ({"resend": True}, "resend")):
        status, error = admin(client, "POST", f"/api/jobs/{TRACE}/deliver", body)
        assert status == 422 and error["error"]["field"] == field, body
    status, error = admin(client, "POST", f"/api/jobs/{TRACE}/deliver", {"endpoints": ["ghost"]})
    assert status == 404
    assert sink.received == []

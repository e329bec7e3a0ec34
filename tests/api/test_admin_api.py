"""Admin API as a whole: every admin route wants the admin key, the OpenAPI document
lists every route with its security, and `GET /api/metrics`."""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from typing import Any

import pytest

from metric_stream.api.app import ROUTES, openapi_document
from metric_stream.api.http import HandlerTimings, Route
from metric_stream.bootstrap import Services
from metric_stream.clock import ManualClock
from metric_stream.models import Job, KpiState, KpiStatus
from metric_stream.models.job import JobStatus
from metric_stream.services.admin import storage_usage, summary
from metric_stream.settings import Settings
from tests.api.conftest import INGEST_KEY, Client, body_of
from tests.api.test_admin_registry import admin, kpi

ADMIN_ROUTES = [r for r in ROUTES if r.auth == "admin"]


def concrete(route: Route) -> str:
    return re.sub(r"\{\w+\}", "x", route.path)


@pytest.mark.parametrize("route", ADMIN_ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_every_admin_route_wants_the_admin_key(client: Client, services: Services,
                                               route: Route) -> None:
    for headers in ({}, {"authorization": "Bearer wrong"}, {"x-api-key": INGEST_KEY},
                    {"authorization": f"Bearer {INGEST_KEY}"}):
        response = client.call(route.method, concrete(route), kpi("x"), headers)
        assert response.status == 401, (headers, response.body)
        assert body_of(response)["error"] == {"code": "unauthorized",
                                              "message": "authentication failed"}
        assert response.headers["www-authenticate"] == "Bearer"
    assert services.registry.kpis.get("x") is None


def test_the_admin_api_is_all_there() -> None:
    wanted = {
        ("GET", "/api/kpis"), ("POST", "/api/kpis"), ("GET", "/api/kpis/{id}"),
        ("PUT", "/api/kpis/{id}"), ("DELETE", "/api/kpis/{id}"),
        ("POST", "/api/workflows/{id}/start"), ("POST", "/api/workflows/{id}/stop"),
        ("POST", "/api/workflows/{id}/pause"),
        ("GET", "/api/schedules"), ("POST", "/api/schedules"), ("GET", "/api/schedules/{id}"),
        ("PUT", "/api/schedules/{id}"), ("DELETE", "/api/schedules/{id}"),
        ("GET", "/api/config"), ("PUT", "/api/config"), ("PUT", "/api/config/retry"),
        ("PUT", "/api/config/fallback"),
        ("GET", "/api/jobs"), ("GET", "/api/jobs/{traceId}"), ("POST", "/api/jobs"),
        ("GET", "/api/timeseries/{kpiId}"), ("GET", "/api/documents/{traceId}"),
        ("GET", "/api/endpoints"), ("POST", "/api/endpoints"), ("GET", "/api/endpoints/{id}"),
        ("PUT", "/api/endpoints/{id}"), ("DELETE", "/api/endpoints/{id}"),
        ("POST", "/api/endpoints/{id}/test"), ("GET", "/api/metrics"),
    }
    assert wanted <= {(r.method, r.path) for r in ADMIN_ROUTES}


def test_openapi_lists_every_route_with_its_security(client: Client) -> None:
    served = body_of(client.call("GET", "/api/openapi.json"))
    assert served == openapi_document()
    security: dict[str, list[dict[str, list[str]]]] = {
        "admin": [{"adminKey": []}], "public": [],
        "ingestion": [{"apiKey": []}, {"webhookSignature": []}, {"adminKey": []}],
        "scheduler": [{"adminKey": []}, {"proxySignature": []}]}
    operation_ids = [r.operation_id for r in ROUTES]
    assert len(operation_ids) == len(set(operation_ids))  # Chalice names its views by them
    for route in ROUTES:
        operation = served["paths"][route.path][route.method.lower()]
        assert operation["security"] == security[route.auth], route.path
        assert operation["operationId"] == route.operation_id
        if route.auth != "public":
            assert "401" in operation["responses"]
        if route.request_model is not None:
            assert "requestBody" in operation, route.path
        for name in route.pattern.groupindex:
            assert {"name": name, "in": "path", "required": True,
                    "schema": {"type": "string"}} in operation["parameters"]
    schemas = served["components"]["schemas"]
    assert {"KpiDefinition", "Schedule", "SystemConfig", "RetryConfig", "FallbackConfig",
            "DeliveryEndpoint", "RunJob"} <= set(schemas)
    kpi_body = served["paths"]["/api/kpis"]["post"]["requestBody"]["content"]
    assert kpi_body["application/json"]["schema"] == {"$ref": "#/components/schemas/KpiDefinition"}
    document = served["paths"]["/api/documents/{traceId}"]["get"]["responses"]["200"]
    assert set(document["content"]) == {"application/pdf"}
    deletion = served["paths"]["/api/kpis/{id}"]["delete"]
    assert {p["name"] for p in deletion["parameters"]} == {"id", "force"}
    assert "409" in deletion["responses"]
    workflow = served["paths"]["/api/workflows/{id}/pause"]["post"]["responses"]
    assert {"404", "502", "503"} <= set(workflow)


def finished_job(services: Services, clock: ManualClock, n: int, seconds: int,
                 states: dict[str, KpiStatus]) -> None:
    created = clock.now() + timedelta(minutes=n)
    services.jobs.create(Job(
        trace_id=f"trace_{n:03d}", kpi_ids=list(states), created_at=created,
        kpis={k: KpiState(status=s) for k, s in states.items()},
        status=JobStatus.PARTIAL if KpiStatus.FAILED in states.values() else JobStatus.COMPLETE,
        finished_at=created + timedelta(seconds=seconds)))


def test_metrics(client: Client, services: Services, clock: ManualClock) -> None:
    ok, failed, late = KpiStatus.COLLECTED, KpiStatus.FAILED, KpiStatus.TIMED_OUT
    for n in range(10):
        finished_job(services, clock, n, seconds=60 * (n + 1),
                     states={"btc-price": failed if n < 3 else ok,
                             "fear-greed": late if n == 0 else ok})
    services.jobs.create(Job(trace_id="trace_running", kpi_ids=["btc-price"],
                             created_at=clock.now() + timedelta(hours=1)))
    services.queue.send("analysis", {"traceId": "trace_000"})
    services.queue.send("analysis", {"traceId": "trace_001"})
    services.blobs.put("reports/r.pdf", b"x" * 1000)
    for _ in range(3):
        admin(client, "GET", "/api/kpis")
    client.call("GET", "/api/kpis")  # refused, still timed

    status, metrics = admin(client, "GET", "/api/metrics")
    assert status == 200
    assert metrics["queues"]["analysis"] == {"visible": 2, "inFlight": 0, "deadLetters": 0}
    assert set(metrics["queues"]) == {"fanout", "analysis", "packaging", "delivery"}

    jobs = metrics["jobs"]
    assert jobs["sampled"] == 11
    assert jobs["byStatus"] == {"complete": 7, "partial": 3, "collecting": 1}
    assert jobs["completionS"] == {"count": 10, "median": 330.0, "p95": 600.0, "max": 600.0}

    rates = metrics["kpiFailureRates"]
    assert rates["kpis"]["btc-price"] == {"settled": 10, "failed": 3, "timedOut": 0,
                                          "rate": 0.3}
    assert rates["kpis"]["fear-greed"]["rate"] == 0.1
    assert rates["overall"] == 0.2

    handlers = metrics["handlers"]["routes"]
    assert handlers["GET /api/kpis"]["calls"] == 4 and handlers["GET /api/kpis"]["count"] == 4
    assert handlers["GET /api/kpis"]["p95"] >= handlers["GET /api/kpis"]["median"] > 0
    assert "GET /api/metrics" not in handlers  # recorded once it has answered
    assert metrics["llm"]["latencyMs"] is None and "no provider key" in metrics["llm"]["reason"]

    storage = metrics["storage"]
    assert storage["backend"] == "embedded"
    assert storage["blobBytes"] == 1000 and storage["blobFiles"] == 1
    assert storage["databaseBytes"] > 0
    assert storage["totalBytes"] == storage["databaseBytes"] + 1000
    later = admin(client, "GET", "/api/metrics")[1]
    assert later["handlers"]["routes"]["GET /api/metrics"]["calls"] == 1


def test_storage_usage_on_aws_says_why_it_is_absent() -> None:
    usage = storage_usage(Settings(backend="aws"))
    assert usage["totalBytes"] is None and "CloudWatch" in usage["reason"]


@pytest.mark.parametrize(("values", "expected"), [
    ([], {"count": 0, "median": None, "p95": None, "max": None}),
    ([0.5], {"count": 1, "median": 0.5, "p95": 0.5, "max": 0.5}),
    (list(range(1, 101)), {"count": 100, "median": 50.5, "p95": 95, "max": 100}),
    ([3, 1, 2, 10], {"count": 4, "median": 2.5, "p95": 10, "max": 10}),
])
def test_summary(values: list[float], expected: dict[str, Any]) -> None:
    assert summary(values) == expected


def test_handler_timings_keep_a_bounded_window_across_threads() -> None:
    timings = HandlerTimings(window=1000)

    def record() -> None:
        for _ in range(500):
            timings.record("GET /api/x", 0.001)

    threads = [threading.Thread(target=record) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    calls, recent = timings.snapshot()["GET /api/x"]
    assert calls == 4000 and len(recent) == 1000

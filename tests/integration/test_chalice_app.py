"""The Chalice app answers exactly as the core API does (chalice.test.Client, on the
AWS backend under moto)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from moto import mock_aws

from metric_stream.api.app import build_api
from metric_stream.bootstrap import Services
from metric_stream.clock import ManualClock
from metric_stream.models import CollectorSource, Job, KpiDefinition, KpiStatus
from tests.conftest import make_services

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
KEY = "ingest-test-key"


@pytest.fixture
def chalice_app(tmp_path: Path, clock: ManualClock) -> Iterator[tuple[ModuleType, Services]]:
    sys.path.insert(0, str(FUNCTIONS))
    try:
        import app as chalice_module

        with mock_aws():
            services = make_services("aws", tmp_path, clock, ingestion_key=KEY)
            services.registry.kpis.create(KpiDefinition(
                id="btc-price", name="BTC", kpi_type="price",
                source=CollectorSource(collector="demo")))
            chalice_module.use_api(build_api(services))
            yield chalice_module, services
            chalice_module.use_api(None)
    finally:
        sys.path.remove(str(FUNCTIONS))


def post(client: object, path: str, body: object, key: str = KEY) -> object:
    return client.http.post(path, headers={"content-type": "application/json",  # type: ignore[attr-defined]
                                           "x-api-key": key}, body=json.dumps(body))


def test_ingestion_through_chalice(chalice_app: tuple[ModuleType, Services],
                                   clock: ManualClock) -> None:
    from chalice.test import Client

    module, services = chalice_app
    services.jobs.create(Job(trace_id="trace_1", kpi_ids=["btc-price"], created_at=clock.now()))
    payload = {"traceId": "trace_1", "kpiId": "btc-price", "timestamp": "2026-11-29T06:00:00Z",
               "kpiType": "price", "data": 97000.5}
    with Client(module.app) as client:
        response = post(client, "/api/kpi-data", payload)
        assert response.status_code == 200  # type: ignore[attr-defined]
        assert response.json_body["stored"] == ["btc-price"]  # type: ignore[attr-defined]
        again = post(client, "/api/kpi-data", payload)
        assert again.json_body["status"] == "duplicate"  # type: ignore[attr-defined]
        conflict = post(client, "/api/kpi-data", {**payload, "data": 1.0})
        assert conflict.status_code == 409  # type: ignore[attr-defined]
        bad = post(client, "/api/kpi-data", {**payload, "timestamp": "2026-11-29T06:00:00"})
        assert bad.status_code == 422  # type: ignore[attr-defined]
        assert bad.json_body["error"]["field"] == "timestamp"  # type: ignore[attr-defined]
        denied = post(client, "/api/kpi-data", payload, key="wrong")
        assert denied.status_code == 401  # type: ignore[attr-defined]
        health = client.http.get("/api/health")
        assert health.status_code == 200 and health.json_body["backend"] == "aws"
        spec = client.http.get("/api/openapi.json")
        assert spec.json_body["openapi"] == "3.1.0"
    assert services.jobs.require("trace_1").state_of("btc-price").status is KpiStatus.COLLECTED
    assert [p.value for p in services.timeseries.points("btc-price")] == [97000.5]

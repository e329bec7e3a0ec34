"""The Chalice app answers exactly as the core API does (chalice.test.Client, on the
AWS backend under moto)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import ModuleType

import pytest
from moto import mock_aws

from metric_stream.api.app import build_api
from metric_stream.bootstrap import Services
from metric_stream.clock import ManualClock
from metric_stream.models import (
    CollectorSource,
    DataPoint,
    DocumentRecord,
    Job,
    KpiDefinition,
    KpiStatus,
)
from tests.conftest import make_services

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
KEY = "ingest-test-key"
ADMIN_KEY = "admin-test-key"


@pytest.fixture
def chalice_app(tmp_path: Path, clock: ManualClock) -> Iterator[tuple[ModuleType, Services]]:
    sys.path.insert(0, str(FUNCTIONS))
    try:
        import app as chalice_module

        with mock_aws():
            services = make_services("aws", tmp_path, clock, ingestion_key=KEY,
                                     admin_key=ADMIN_KEY)
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


def test_binary_and_text_answers_through_chalice(chalice_app: tuple[ModuleType, Services],
                                                 clock: ManualClock) -> None:
    """PNG and PDF go out base64-encoded (API Gateway binary types, asked for with a
    matching Accept header); SVG and the JSON answers go out as text."""
    from chalice.test import Client

    module, services = chalice_app
    services.timeseries.append_many([
        DataPoint(kpi_id="btc-price", timestamp=clock.now() - timedelta(days=d),
                  value=97_000.0 + d) for d in range(10)])
    services.blobs.put("reports/trace_1.pdf", b"%PDF-1.7 report", content_type="application/pdf")
    services.packages.put_document(DocumentRecord(
        trace_id="trace_1", blob_key="reports/trace_1.pdf", size_bytes=15,
        created_at=clock.now()))
    admin = {"authorization": f"Bearer {ADMIN_KEY}", "content-type": "application/json"}
    with Client(module.app) as client:
        charts = {}
        for fmt in ("png", "svg"):
            made = client.http.post("/api/charts/generate", headers=admin,
                                    body=json.dumps({"kpiId": "btc-price", "format": fmt}))
            assert made.status_code == 201, made.body
            charts[fmt] = made.json_body["url"]
        png = client.http.get(charts["png"], headers={**admin, "accept": "image/png"})
        assert png.status_code == 200 and png.body.startswith(b"\x89PNG\r\n\x1a\n")
        anything = client.http.get(charts["png"], headers={**admin, "accept": "*/*"})
        assert anything.body == png.body
        svg = client.http.get(charts["svg"], headers=admin)
        assert svg.status_code == 200 and b"<svg" in svg.body
        assert svg.headers["cache-control"] == "private, max-age=86400"
        pdf = client.http.get("/api/documents/trace_1",
                              headers={**admin, "accept": "application/pdf"})
        assert pdf.status_code == 200 and pdf.body == b"%PDF-1.7 report"
        health = client.http.get("/api/charts/health")
        assert health.status_code == 200 and health.json_body["blobStore"] == "ok"

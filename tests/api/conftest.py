"""An API bound to embedded services with keys set, and helpers to call it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest

from metric_stream.api.app import build_api
from metric_stream.api.http import Api, Request, Response
from metric_stream.bootstrap import Services
from metric_stream.clock import ManualClock
from metric_stream.models import CollectorSource, Job, KpiDefinition
from tests.conftest import make_services

INGEST_KEY = "ingest-key-for-tests"
ADMIN_KEY = "admin-key-for-tests"
HMAC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
TRACE = "trace_20261129_060000_abcdef"


class Client:
    def __init__(self, api: Api) -> None:
        self.api = api

    def call(self, method: str, path: str, body: bytes | str | Any = b"",
             headers: dict[str, str] | None = None) -> Response:
        if not isinstance(body, bytes | str):
            body = json.dumps(body)
        raw = body.encode() if isinstance(body, str) else body
        path, _, query = path.partition("?")
        return self.api.handle(Request(method, path, {k.lower(): v for k, v in
                                                      (headers or {}).items()}, raw,
                                       dict(parse_qsl(query))))

    def ingest(self, body: Any, path: str = "/api/kpi-data", key: str = INGEST_KEY) -> Response:
        return self.call("POST", path, body, {"x-api-key": key})


def body_of(response: Response) -> Any:
    return json.loads(response.body)


@pytest.fixture
def services(tmp_path: Path, clock: ManualClock) -> Services:
    services = make_services("embedded", tmp_path, clock, ingestion_key=INGEST_KEY,
                             admin_key=ADMIN_KEY, hmac_secret=HMAC_SECRET)
    for kpi_id in ("btc-price", "fear-greed"):
        services.registry.kpis.create(KpiDefinition(
            id=kpi_id, name=kpi_id, kpi_type="price", source=CollectorSource(collector="demo")))
    services.registry.kpis.create(KpiDefinition(
        id="cbbi-multi", name="CBBI", kpi_type="cbbi-multi",
        source=CollectorSource(collector="cbbi-multi"),
        kpi_ids=["cbbi-mvrv", "cbbi-rhodl", "cbbi-confidence"]))
    return services


@pytest.fixture
def job(services: Services, clock: ManualClock) -> Job:
    return services.jobs.create(Job(
        trace_id=TRACE, created_at=clock.now(),
        kpi_ids=["btc-price", "fear-greed", "cbbi-mvrv", "cbbi-rhodl", "cbbi-confidence"]))


@pytest.fixture
def client(services: Services) -> Client:
    return Client(build_api(services))

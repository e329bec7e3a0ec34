"""The OpenAPI document describes every JSON success answer (no bare `{type: object}`),
and the real answers of every route, on a seeded store, match their description."""

from __future__ import annotations

import copy
import json
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import closing
from dataclasses import replace
from typing import Any

import pytest
from jsonschema import Draft202012Validator, ValidationError
from pydantic import SecretStr

from metric_stream.api.answers import MASKED_URL
from metric_stream.api.app import ROUTES, build_api, openapi_document
from metric_stream.api.http import Request, Response, Route
from metric_stream.api.openapi import build_openapi
from metric_stream.bootstrap import build_services
from metric_stream.errors import StorageUnavailable
from metric_stream.models.delivery import mask_url
from metric_stream.settings import Settings
from metric_stream.signing import sign
from tests.delivery_fakes import FakeHttpServer, Recorded, Reply
from tests.security.conftest import (
    ADMIN_KEY,
    HMAC_SECRET,
    INGEST_KEY,
    InProcess,
    Seeded,
    seed_store,
)
from tests.security.launch import guarded_connects

ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}
INGEST = {"x-api-key": INGEST_KEY}
N8N_KEY = "n8n-answers-key"
BOT = "123456789:ABCdefGhIJKlmnoPQRstuVWxyz0123456789"


# ---------------------------------------------------------------- the document
def resolve(schema: Mapping[str, Any], document: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def described(schema: Mapping[str, Any], document: Mapping[str, Any]) -> bool:
    """Whether a body schema says what the body holds: its properties, or alternatives
    that each do."""
    schema = resolve(schema, document)
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        return all(described(option, document) for option in options)
    return bool(schema.get("properties"))


def json_answers(document: Mapping[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(METHOD, path, status) -> the schema of each JSON answer that is not an error."""
    found = {}
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            for status, response in operation["responses"].items():
                schema = response.get("content", {}).get("application/json", {}).get("schema")
                if schema is not None and schema != {"$ref": "#/components/schemas/Error"}:
                    found[(method.upper(), path, status)] = schema
    return found


def undescribed(document: Mapping[str, Any]) -> list[str]:
    return [f"{method} {path} {status}"
            for (method, path, status), schema in json_answers(document).items()
            if not described(schema, document)]


def conform(document: Mapping[str, Any], method: str, path: str, answer: Response) -> None:
    """`answer` (to `method` on the route `path`) is JSON and matches the document."""
    key = (method, path, str(answer.status))
    assert key in json_answers(document), f"{key} is not a documented JSON answer"
    assert answer.headers["content-type"] == "application/json"
    schema = {**json_answers(document)[key], "components": document["components"]}
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    validator.validate(json.loads(answer.body))


def test_every_json_success_answer_is_described() -> None:
    document = openapi_document()
    assert undescribed(document) == []
    answered = {(m, p) for m, p, status in json_answers(document) if status.startswith("2")}
    assert answered == {(r.method, r.path) for r in ROUTES
                        if r.response_content == "application/json"}


def test_a_route_that_does_not_describe_its_answer_is_caught() -> None:
    def anything(api: Any, request: Request) -> dict[str, Any]:
        return {}

    document = build_openapi([Route("GET", "/api/anything", anything, "public", "Anything",
                                    responses={200: "something"})])
    assert undescribed(document) == ["GET /api/anything 200"]


def test_the_route_table_does_not_load_the_answer_models() -> None:
    probe = "import sys, metric_stream.api.app; print('metric_stream.api.answers' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True).stdout
    assert loaded.strip() == "False"  # the models are built with the document only


@pytest.mark.parametrize("url", [
    "tgram://123:abc/-100", "mailto://user:pass@example.com", "discord://id/token",
    "http://u:p@example.com:8080/p/q?k=v#f", "http://[::1]:9/hook",
    "https://example.com?only=query",
])
def test_the_masked_url_pattern_takes_what_mask_url_makes_of_a_secret(url: str) -> None:
    assert re.search(MASKED_URL, mask_url(url)), mask_url(url)
    assert not re.search(MASKED_URL, url)


@pytest.mark.parametrize("url", ["https://example.com", "http://example.com/",
                                 "https://example.com:8443///"])
def test_a_url_without_a_secret_matches_the_masked_url_pattern(url: str) -> None:
    assert mask_url(url) == url and re.search(MASKED_URL, url)


# ---------------------------------------------------------------- the answers
def n8n_api(request: Recorded) -> Reply:
    """n8n's REST API: every workflow exists; activate and deactivate say so."""
    if request.headers.get("x-n8n-api-key") != N8N_KEY:
        return Reply(401, {"message": "unauthorized"})
    workflow_id = request.path.split("/")[-2]
    return Reply(200, {"id": workflow_id, "active": request.path.endswith("/activate")})


@pytest.fixture(scope="module")
def n8n() -> Iterator[FakeHttpServer]:
    with FakeHttpServer(n8n_api) as server:
        yield server


def settings_for(home: Any, n8n_url: str) -> Settings:
    return Settings(backend="embedded", home=home, admin_key=ADMIN_KEY,
                    ingestion_key=INGEST_KEY, hmac_secret=HMAC_SECRET,
                    n8n_api_url=n8n_url, n8n_api_key=SecretStr(N8N_KEY))


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, n8n: FakeHttpServer) -> Seeded:
    home = tmp_path_factory.mktemp("answers") / "home"
    seeded = seed_store(build_services(settings_for(home, n8n.url)))
    with closing(sqlite3.connect(home / "metric-stream.db")) as db:  # one file to copy
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return seeded


@pytest.fixture
def target(tmp_path: Any, template: Seeded, n8n: FakeHttpServer) -> InProcess:
    """The API on a copy of the seeded store, n8n's API faked."""
    home = tmp_path / "home"
    shutil.copytree(template.home, home)
    services = build_services(settings_for(home, n8n.url))
    return InProcess(replace(template, home=home), build_api(services))


@pytest.fixture
def only_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, replacement in guarded_connects().items():
        monkeypatch.setattr(socket.socket, name, replacement)


class Caller:
    """Calls the API in process and checks each answer against the document."""

    def __init__(self, target: InProcess) -> None:
        self.target = target
        self.document = openapi_document()
        self.checked: set[tuple[str, str]] = set()

    def __call__(self, method: str, path: str, body: Any = None, status: int = 200,
                 headers: Mapping[str, str] = ADMIN, raw: bytes | None = None) -> Any:
        data = raw if raw is not None else b"" if body is None else json.dumps(body).encode()
        answer = self.target.call(method, path, headers, data)
        assert answer.status == status, answer.body
        route = self.target.api.route_for(method, path.partition("?")[0])
        assert route is not None
        conform(self.document, method, route.path, answer)
        self.checked.add((method, route.path))
        return json.loads(answer.body)


def signed(body: bytes, message_id: str) -> dict[str, str]:
    stamp = int(time.time())
    return {"webhook-id": message_id, "webhook-timestamp": str(stamp),
            "webhook-signature": sign(HMAC_SECRET, message_id, stamp, body)}


def test_the_answers_of_every_route_match_the_document(target: InProcess,
                                                       only_loopback: None) -> None:
    entry_id, trace_id = target.seeded.entry_id, target.seeded.trace_id
    call = Caller(target)

    call("GET", "/api/health", headers={})
    call("GET", "/api/openapi.json", headers={})
    call("GET", "/api/charts/health", headers={})
    call("GET", "/api/metrics")

    # ingestion: a settled KPI of a known job, an unknown job, a replayed signed message
    result = {"traceId": trace_id, "kpiId": entry_id, "kpiType": "price",
              "timestamp": "2026-11-30T06:00:00Z", "data": {"value": 12.5, "note": "x"}}
    assert call("POST", "/api/kpi-data", result, headers=INGEST)["job"]["alreadySettled"]
    call("POST", "/api/kpi-data", {**result, "traceId": "trace_unknown"}, 202, INGEST)
    raw = json.dumps({**result, "timestamp": "2026-12-01T06:00:00Z"}).encode()
    call("POST", "/api/kpi-data", headers=signed(raw, "msg_answers"), raw=raw)
    replayed = call("POST", "/api/kpi-data", headers=signed(raw, "msg_answers"), raw=raw)
    assert replayed["status"] == "duplicate" and replayed["webhookId"] == "msg_answers"
    failure = {"traceId": trace_id, "kpiIds": [entry_id], "error": {"message": "down"}}
    call("POST", "/api/kpi-error", failure, headers=INGEST)
    call("POST", "/api/kpi-error", {**failure, "traceId": "trace_unknown"}, 202, INGEST)

    # the registry, a CSV import, schedules
    call("GET", "/api/kpis")
    call("GET", f"/api/kpis/{entry_id}")
    n8n_kpi = {"id": "answers-n8n", "name": "From n8n", "kpiType": "price", "source": {
        "kind": "n8n", "webhookUrl": "http://127.0.0.1:5678/webhook/x", "workflowId": "wf-1"}}
    call("POST", "/api/kpis", n8n_kpi, 201)
    call("PUT", "/api/kpis/answers-n8n", {**n8n_kpi, "unit": "USD"})
    csv = b"timestamp,value,metadata\n2026-11-01T00:00:00Z,1.5,\nnot a time,2,\n"
    imported = call("POST", f"/api/kpis/{entry_id}/import",
                    headers={**ADMIN, "content-type": "text/csv"}, raw=csv)
    assert imported["errors"]
    schedule = {"id": "answers", "cron": "*/15 * * * *", "kpiIds": ["answers-n8n"]}
    call("POST", "/api/schedules", schedule, 201)
    call("GET", "/api/schedules")
    call("GET", "/api/schedules/answers")
    call("PUT", "/api/schedules/answers", {**schedule, "active": False})
    call("POST", "/api/tick")

    # n8n workflow control (pause makes the KPI inactive, start makes it active again)
    assert call("POST", "/api/workflows/wf-1/pause")["kpisChanged"] == ["answers-n8n"]
    call("POST", "/api/workflows/wf-1/stop")
    assert call("POST", "/api/workflows/wf-1/start")["active"] is True
    assert call("DELETE", "/api/kpis/answers-n8n")["warnings"]  # the schedule names it
    call("DELETE", "/api/schedules/answers")

    # config
    config = call("GET", "/api/config")
    call("PUT", "/api/config", config)
    call("PUT", "/api/config/retry", {"collection": {"retries": 0, "delaysS": []}})
    call("PUT", "/api/config/fallback", {"chart": "text"})

    # endpoints: a webhook (its secret shown once), a Telegram bot; a test send that fails
    hook = {"id": "answers-hook", "name": "Hook", "url": "http://127.0.0.1:9/secret?t=1"}
    assert call("POST", "/api/endpoints", hook, 201)["signingSecret"].startswith("whsec_")
    telegram = {"id": "answers-tg", "name": "TG", "url": f"tgram://{BOT}/-100200"}
    assert call("POST", "/api/endpoints", telegram, 201)["url"] == "tgram://***"
    call("GET", "/api/endpoints")
    assert call("GET", "/api/endpoints/answers-hook")["url"] == "http://127.0.0.1:9/***?***"
    call("PUT", "/api/endpoints/answers-hook", {**hook, "url": "http://127.0.0.1:9/***?***"})
    assert call("POST", "/api/endpoints/answers-hook/test")["delivered"] is False

    # jobs: a redelivery (so the job has a failed delivery), the job, a run-now
    call("POST", f"/api/jobs/{trace_id}/deliver", {"endpoints": ["answers-hook"]})
    call("GET", "/api/jobs")
    job = call("GET", f"/api/jobs/{trace_id}")
    assert job["deliveries"] and job["document"] is not None
    call("POST", "/api/jobs", {"kpis": [entry_id], "demo": True}, 201)
    call("DELETE", "/api/endpoints/answers-tg")

    # data and charts
    call("GET", f"/api/timeseries/{entry_id}?from=2020-01-01T00:00:00Z&limit=2")
    call("GET", f"/api/timeseries/{entry_id}")
    call("POST", "/api/charts/generate", {"kpiId": entry_id, "days": 30}, 201)
    batch = call("POST", "/api/charts/batch",
                 {"charts": [{"kpiId": entry_id, "days": 30}, {"kpiId": "ghost"}]})
    assert [item["ok"] for item in batch["results"]] == [True, False]

    every = {(m, p) for m, p, status in json_answers(call.document) if status.startswith("2")}
    assert every - call.checked == set(), "each route's JSON answer is checked here"


def test_a_degraded_chart_health_answer_matches_the_document(
        target: InProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(key: str, data: bytes, content_type: str) -> None:
        raise StorageUnavailable("bucket gone")

    monkeypatch.setattr(target.api.services.blobs, "_put", broken)
    health = Caller(target)("GET", "/api/charts/health", status=503, headers={})
    assert health["status"] == "degraded" and health["blobStore"] != "ok"


# ---------------------------------------------------------------- the check can fail
@pytest.fixture
def kpi_answer(target: InProcess) -> Response:
    return target.call("GET", f"/api/kpis/{target.seeded.entry_id}", ADMIN)


def with_body(answer: Response, change: Any) -> Response:
    body = json.loads(answer.body)
    change(body)
    return Response(answer.status, json.dumps(body).encode(), dict(answer.headers))


def test_the_check_refuses_an_answer_the_document_does_not_describe(
        kpi_answer: Response) -> None:
    document = openapi_document()
    conform(document, "GET", "/api/kpis/{id}", kpi_answer)
    extra = with_body(kpi_answer, lambda body: body.update(secret="x"))
    missing = with_body(kpi_answer, lambda body: body.pop("yields"))
    wrong_type = with_body(kpi_answer, lambda body: body.update(yields="all"))
    for answer in (extra, missing, wrong_type):
        with pytest.raises(ValidationError):
            conform(document, "GET", "/api/kpis/{id}", answer)


def test_the_check_refuses_a_wrong_schema(kpi_answer: Response) -> None:
    document = copy.deepcopy(openapi_document())
    view = document["components"]["schemas"]["KpiView"]
    view["properties"]["yields"] = {"type": "array", "items": {"type": "integer"}}
    with pytest.raises(ValidationError):
        conform(document, "GET", "/api/kpis/{id}", kpi_answer)


@pytest.mark.parametrize("change", [
    pytest.param(lambda body: body.update(url="http://127.0.0.1:9/secret?t=1"), id="unmasked"),
    pytest.param(lambda body: body.update(url=f"tgram://{BOT}/-100200"), id="apprise"),
    pytest.param(lambda body: body.update(signingSecret="whsec_" + "A" * 32), id="secret"),
])
def test_an_endpoint_answer_that_leaks_a_secret_does_not_match(target: InProcess,
                                                               change: Any) -> None:
    answer = target.call("GET", f"/api/endpoints/{target.seeded.endpoint_id}", ADMIN)
    conform(openapi_document(), "GET", "/api/endpoints/{id}", answer)
    with pytest.raises(ValidationError):
        conform(openapi_document(), "GET", "/api/endpoints/{id}", with_body(answer, change))

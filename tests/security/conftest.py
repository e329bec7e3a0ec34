"""What the security tests share: the API's operations read from its own OpenAPI document
(so a route added later is covered without touching these tests), a seeded embedded
store (a demo registry, one finished demo job with its charts and report, a schedule,
an endpoint), a snapshot of everything a store holds, and `metric-stream serve` started
on loopback through `tests.security.launch` (DEBUG logging, no network)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from metric_stream.api.app import build_api, openapi_document
from metric_stream.api.http import Api, Request, Response
from metric_stream.bootstrap import Services, build_services
from metric_stream.models.config import RetryConfig, RetryPolicy
from metric_stream.models.delivery import DeliveryEndpoint
from metric_stream.models.schedule import Schedule
from metric_stream.services import cycle
from metric_stream.services.runner import prepare_demo, run_cycle
from metric_stream.settings import Settings

ADMIN_KEY = "adm-Zq81-security-suite-admin-key"
INGEST_KEY = "ing-Vw47-security-suite-ingest-key"
HMAC_SECRET = "whsec_U2VjdXJpdHlTdWl0ZUhtYWNTZWNyZXQx"
REPO = Path(__file__).resolve().parents[2]
PUBLIC = {("GET", "/api/health"), ("GET", "/api/charts/health"), ("GET", "/api/openapi.json")}


@dataclass(frozen=True)
class Operation:
    """One operation of the OpenAPI document."""

    method: str
    path: str
    security: tuple[str, ...]  # the schemes any one of which opens it; () is public
    path_params: tuple[str, ...]
    body_type: str | None  # the request body's content type, if it takes one

    @property
    def public(self) -> bool:
        return not self.security

    @property
    def ingestion(self) -> bool:
        return "apiKey" in self.security

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    def url(self, **values: str) -> str:
        path = self.path
        for name in self.path_params:
            path = path.replace("{" + name + "}", values[name])
        return path


def operations() -> list[Operation]:
    found = []
    for path, methods in openapi_document()["paths"].items():
        for method, operation in methods.items():
            schemes = tuple(name for option in operation.get("security", [])
                            for name in option)
            params = tuple(p["name"] for p in operation.get("parameters", [])
                           if p["in"] == "path")
            content = operation.get("requestBody", {}).get("content", {})
            found.append(Operation(method.upper(), path, schemes, params,
                                   next(iter(content), None)))
    return found


@dataclass(frozen=True)
class Seeded:
    """The ids of what `seed_store` made: each an id a path parameter can name."""

    home: Path
    entry_id: str  # a single-KPI registry entry (its id is also its KPI id)
    trace_id: str  # a finished demo job with a report document
    chart_id: str
    schedule_id: str
    endpoint_id: str

    def value_for(self, operation: Operation, name: str) -> str:
        """An existing id for the path parameter `name` of `operation`."""
        if name == "traceId":
            return self.trace_id
        if name == "chartId":
            return self.chart_id
        if name == "kpiId":
            return self.entry_id
        if "/schedules/" in operation.path:
            return self.schedule_id
        if "/endpoints/" in operation.path:
            return self.endpoint_id
        if "/workflows/" in operation.path:
            return "wf-1"
        return self.entry_id


def no_network() -> httpx.Client:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"unexpected request to {request.url}")

    return httpx.Client(transport=httpx.MockTransport(refuse))


def seed_store(services: Services, *, endpoint_url: str = "http://127.0.0.1:9/hook") -> Seeded:
    """A demo registry with history, retries without waits, one finished demo job
    (charts and a report), a schedule and a delivery endpoint."""
    services.init()
    prepare_demo(services)
    no_wait = RetryPolicy(retries=1, delays_s=[0])
    config = services.config.get().model_copy(update={"retry": RetryConfig(
        collection=no_wait, chart=no_wait, llm=no_wait, delivery=no_wait)})
    services.config.put(config, services.clock.now())
    with no_network() as http:
        summary = run_cycle(services, cycle.Triggers(http), demo=True, poll_s=0.01)
    assert summary.report is not None, summary.to_wire()
    services.registry.schedules.create(Schedule(id="daily", name="Daily", cron="0 6 * * *",
                                                created_at=services.clock.now()))
    services.registry.endpoints.create(DeliveryEndpoint(id="ops-hook", name="Ops",
                                                        url=endpoint_url))
    entry = next(e for e in services.registry.kpis.all() if not e.kpi_ids)
    with closing(sqlite3.connect(services.settings.database_path)) as db:
        chart = db.execute("SELECT pk FROM records WHERE pk LIKE 'chart:%' LIMIT 1").fetchone()
    return Seeded(services.settings.home, entry.id, summary.job.trace_id,
                  chart[0].removeprefix("chart:"), "daily", "ops-hook")


def keyed_settings(home: Path) -> Settings:
    return Settings(backend="embedded", home=home, admin_key=ADMIN_KEY,
                    ingestion_key=INGEST_KEY, hmac_secret=HMAC_SECRET)


@dataclass
class InProcess:
    """The API on a seeded store, called in this process as a server would call it
    (the path already decoded)."""

    seeded: Seeded
    api: Api

    def call(self, method: str, path: str, headers: Mapping[str, str] | None = None,
             body: bytes = b"", query: Mapping[str, str] | None = None) -> Response:
        path, _, text = path.partition("?")
        return self.api.handle(Request(method, path, {k.lower(): v for k, v in
                                                      (headers or {}).items()}, body,
                                       {**dict(parse_qsl(text)), **(query or {})}))

    def get(self, path: str) -> Any:
        answer = self.call("GET", path, {"authorization": f"Bearer {ADMIN_KEY}"})
        assert answer.status == 200, answer.body
        return json.loads(answer.body)


@pytest.fixture(scope="module")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    home = tmp_path_factory.mktemp("template") / "home"
    seeded = seed_store(build_services(keyed_settings(home)))
    with closing(sqlite3.connect(home / "metric-stream.db")) as db:  # one file to copy
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return seeded


@pytest.fixture
def in_process(seeded_home: Seeded) -> InProcess:
    """The API on a copy of the seeded store."""
    return InProcess(seeded_home, build_api(build_services(keyed_settings(seeded_home.home))))


def request_model(operation: Operation) -> str | None:
    """The name of the model an operation's JSON body is (the first, if several)."""
    if operation.body_type != "application/json":
        return None
    schema = openapi_document()["paths"][operation.path][operation.method.lower()][
        "requestBody"]["content"][operation.body_type]["schema"]
    ref = schema.get("$ref") or (schema.get("oneOf") or [{}])[0].get("$ref", "")
    return str(ref).rsplit("/", 1)[-1] or None


def request_body(target: InProcess, operation: Operation, **ids: str) -> bytes:
    """A body the operation would act on if it were let through (so that a refusal
    that still wrote something shows in the store); `ids` replace the ids it names
    (`id`, `kpiId`, `traceId`)."""
    if operation.body_type is None:
        return b""
    if operation.body_type == "text/csv":
        return b"timestamp,value\n2026-11-01T00:00:00Z,1.5\n"
    seeded = target.seeded
    own = {n: seeded.value_for(operation, n) for n in operation.path_params}
    kpi_id = ids.get("kpiId", seeded.entry_id)
    trace_id = ids.get("traceId", seeded.trace_id)
    model = request_model(operation)
    body: Any
    if model in ("KpiResult", "MultiKpiResult"):
        body = {"traceId": trace_id, "kpiId": kpi_id, "kpiType": "price",
                "timestamp": "2026-11-30T06:00:00Z", "data": 12.5}
    elif model == "ErrorReport":
        body = {"traceId": trace_id, "kpiIds": [kpi_id],
                "error": {"message": "refused?", "name": "Probe"}}
    elif model == "KpiDefinition":
        body = target.get(f"/api/kpis/{seeded.entry_id}") | {
            "id": ids.get("id", own.get("id", "new-kpi"))}
        if "kpiId" in ids:  # as a KPI id the entry yields
            body["kpiIds"] = [ids["kpiId"]]
    elif model == "Schedule":
        body = {"id": ids.get("id", own.get("id", "new-schedule")), "cron": "0 7 * * *",
                "kpiIds": [kpi_id]}
    elif model == "DeliveryEndpoint":
        body = {"id": ids.get("id", own.get("id", "new-endpoint")), "name": "New",
                "url": "http://127.0.0.1:9/new", "kpis": [kpi_id]}
    elif model == "SystemConfig":
        body = target.get("/api/config")
        body["lifecycle"]["fanInTimeoutS"] = 999
    elif model == "RetryConfig":
        body = {"collection": {"retries": 0, "delaysS": []}}
    elif model == "FallbackConfig":
        body = {"chart": "text"}
    elif model == "ChartRequest":
        body = {"kpiId": kpi_id, "days": 30}
    elif model == "ChartBatch":
        body = {"charts": [{"kpiId": kpi_id, "days": 30}]}
    elif model == "RunJob":
        body = {"kpis": [kpi_id], "demo": True}
    elif model == "Redeliver":
        body = {"endpoints": [ids["id"]]} if "id" in ids else {}
    else:  # a model added later: any JSON still has to be refused
        body = {}
    return json.dumps(body).encode()


def store_snapshot(home: Path) -> dict[str, Any]:
    """Every record (the expiring `webhook-id` marks aside), every queued message and
    every blob file's digest of the embedded store at `home`."""
    with closing(sqlite3.connect(home / "metric-stream.db")) as db:
        records = db.execute("SELECT pk, sk, body FROM records WHERE pk != 'webhook-id' "
                             "ORDER BY pk, sk").fetchall()
        queued = db.execute("SELECT id, queue, body FROM queue_messages ORDER BY id").fetchall()
    blobs = {str(p.relative_to(home)): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted((home / "blobs").rglob("*")) if p.is_file()}
    return {"records": records, "queue": queued, "blobs": blobs}


def file_tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**values: str) -> dict[str, str]:
    """This process's environment without metric-stream's or the LLM providers'
    variables, plus `values`; `tests.security.launch` importable."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("METRIC_STREAM_") and not k.endswith("_API_KEY")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["METRIC_STREAM_LOG_LEVEL"] = "debug"
    env.update(values)
    return env


@dataclass
class Served:
    url: str
    home: Path
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> str:
        """Stop the server (SIGTERM, then wait); its whole output."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.log.read_text(errors="replace")


def start_serve(home: Path, env: Mapping[str, str], *options: str, cwd: Path,
                auth: httpx.Auth | None = None) -> Served:
    """`metric-stream serve` on a free loopback port in one process (DEBUG logging, no
    network), its output in a file beside `cwd`; returns once it answers."""
    port = free_port()
    log = cwd / f"serve-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.security.launch", "--home", str(home), "serve",
             "--port", str(port), "--workers", "1", *options],
            env=dict(env), cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    served = Served(f"http://127.0.0.1:{port}", home, process, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited: {served.stop()}")
        try:
            if httpx.get(f"{served.url}/api/health", auth=auth,
                         timeout=1).status_code == 200:
                return served
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"serve did not start: {served.stop()}")


@pytest.fixture
def seeded_home(tmp_path: Path, seeded_template: Seeded) -> Seeded:
    """A copy of the seeded store (made once per module)."""
    home = tmp_path / "home"
    shutil.copytree(seeded_template.home, home)
    return replace(seeded_template, home=home)


def serve_seeded(seeded: Seeded, cwd: Path, **env: str) -> Served:
    """`metric-stream serve --no-workers` on the seeded store, with the test keys."""
    return start_serve(seeded.home, clean_env(
        METRIC_STREAM_ADMIN_KEY=ADMIN_KEY, METRIC_STREAM_INGESTION_KEY=INGEST_KEY,
        METRIC_STREAM_HMAC_SECRET=HMAC_SECRET, **env), "--no-workers", cwd=cwd)


@pytest.fixture
def served(tmp_path: Path, seeded_home: Seeded) -> Iterator[Served]:
    server = serve_seeded(seeded_home, tmp_path)
    yield server
    server.stop()

"""Secrets never leak. A whole cycle runs with distinctive secret values everywhere a
secret can be set (the API keys, the HMAC and proxy secrets, n8n's key, the three LLM
providers' keys, and a delivery endpoint whose URL carries a password and a token and
which has a signing secret), with DEBUG logging, the LLM providers and n8n faked on
loopback answering errors: `metric-stream serve` (behind the proxy signature),
`metric-stream run --demo`, `metric-stream deliver`, API calls that succeed and calls
that fail. Then every output is searched for every secret, in the forms it could take
on the way (as is, URL-encoded, base64, as Basic credentials): the commands' output,
the server's log, every GET route's answer, the failed calls' errors, the report's
text, every stored record and blob, and each screen of the admin console.

Masked forms (`***`) are fine. The endpoint's registry record is searched like every
other: its URL and signing secret are sealed at rest (`storage/sealing.py`), so neither
the record nor the raw SQLite files (database, write-ahead log) hold them, nor the
record key that seals them (set here in the environment)."""

from __future__ import annotations

import base64
import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Generator, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from urllib.parse import parse_qsl, quote

import httpx
import pytest
from pypdf import PdfReader

from metric_stream.api.proxy import ORIGIN, SIGNATURE, TIMESTAMP, proxy_signature
from metric_stream.bootstrap import build_services
from metric_stream.settings import Settings
from tests.delivery_fakes import FakeHttpServer, Recorded, Reply
from tests.llm_fakes import FakeProviders, error
from tests.security.conftest import (
    clean_env,
    operations,
    seed_store,
    start_serve,
)

pytestmark = pytest.mark.slow

ENDPOINT_USER = "reports"
SECRETS = {
    "admin key": "AdmSecret-7c41f0e9d2",
    "ingestion key": "IngSecret-5b93a1c7e4",
    "HMAC secret": "whsec_SG1hY1NlY3JldDRlOGEyZjljMWQ3",
    "proxy secret": "PrxSecret-2e8d6b0a95",
    "n8n API key": "N8nSecret-9a1c4e7b30",
    "OpenRouter key": "sk-or-OrSecret-6f2b8d1e47",
    "Gemini key": "AIzaGemSecret-1d7c3a9e52",
    "Anthropic key": "sk-ant-AntSecret-8e5f2c0b16",
    "endpoint password": "EpPassword-3c9e1a7f58",
    "endpoint path token": "EpPathToken-4f8a2d6c19",
    "endpoint query token": "EpQueryToken-0b7e5c3a82",
    "endpoint signing secret": "whsec_RXBTaWduaW5nU2VjcmV0NmExZDNm",
    "record key": "UmVjS2V5LXNlYWxzLWVuZHBvaW50cy0zMmJ5dGVzISE=",
}


def forms(value: str) -> set[str]:
    """A secret as it could appear on its way: as is, URL-encoded, base64 (alone, and
    as the Basic credentials of the endpoint's user)."""
    found = {value, quote(value, safe=""), base64.b64encode(value.encode()).decode()}
    basic = base64.b64encode(f"{ENDPOINT_USER}:{value}".encode()).decode()
    return found | {basic}


class ProxySigned(httpx.Auth):
    """Signs every request as the Cloudflare Worker proxy does (`api/proxy.py`)."""

    def __init__(self, secret: str, credentials: dict[str, str] | None = None) -> None:
        self.secret = secret
        self.credentials = credentials or {}

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response,
                                                             None]:
        stamp = str(int(time.time()))
        query = dict(parse_qsl(request.url.query.decode()))
        request.headers.update(self.credentials)
        request.headers[TIMESTAMP] = stamp
        request.headers[ORIGIN] = "forward"
        request.headers[SIGNATURE] = proxy_signature(
            self.secret, stamp, "forward", request.method, request.url.path, query,
            request.read())
        yield request


@dataclass
class Outputs:
    """Everything the cycle showed or kept, by where it was found."""

    texts: dict[str, str] = field(default_factory=dict)
    allowed: dict[str, set[str]] = field(default_factory=dict)  # where a secret may be
    home: Path = Path()
    settings_env: dict[str, str] = field(default_factory=dict)
    trace_id: str = ""

    def add(self, where: str, text: str | bytes, *, allowed: set[str] | None = None) -> None:
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        self.texts[where] = self.texts.get(where, "") + text
        if allowed:
            self.allowed[where] = allowed

    def leaks(self, prefix: str = "") -> list[str]:
        found = []
        for where, text in self.texts.items():
            if not where.startswith(prefix):
                continue
            for name, value in SECRETS.items():
                if name in self.allowed.get(where, set()):
                    continue
                for form in forms(value):
                    if form in text:
                        at = text.index(form)
                        found.append(f"{name} in {where}: ...{text[max(0, at - 120):at + 60]}")
                        break
        return found


def environment(folder: Path, llm: FakeProviders, n8n: FakeHttpServer) -> dict[str, str]:
    return clean_env(
        METRIC_STREAM_ADMIN_KEY=SECRETS["admin key"],
        METRIC_STREAM_INGESTION_KEY=SECRETS["ingestion key"],
        METRIC_STREAM_HMAC_SECRET=SECRETS["HMAC secret"],
        METRIC_STREAM_PROXY_SECRET=SECRETS["proxy secret"],
        METRIC_STREAM_N8N_API_URL=n8n.url,
        METRIC_STREAM_N8N_API_KEY=SECRETS["n8n API key"],
        OPENROUTER_API_KEY=SECRETS["OpenRouter key"],
        GEMINI_API_KEY=SECRETS["Gemini key"],
        ANTHROPIC_API_KEY=SECRETS["Anthropic key"],
        METRIC_STREAM_RECORD_KEY=SECRETS["record key"],
        METRIC_STREAM_OPENROUTER_BASE_URL=llm.base_url("openrouter"),
        METRIC_STREAM_GEMINI_BASE_URL=llm.base_url("gemini"),
        METRIC_STREAM_ANTHROPIC_BASE_URL=llm.base_url("anthropic"),
        METRIC_STREAM_LOG_LEVEL="debug",
        HOME=str(folder),
    )


def command(outputs: Outputs, env: dict[str, str], cwd: Path, *argv: str) -> int:
    done = subprocess.run([sys.executable, "-m", "tests.security.launch", "--debug", *argv],
                          env=env, cwd=cwd, capture_output=True, timeout=300, check=False)
    label = "command `metric-stream " + " ".join(argv) + "`"
    outputs.add(f"{label} stdout", done.stdout)
    outputs.add(f"{label} stderr", done.stderr)
    return done.returncode


def receiver_answer(request: Recorded) -> Reply:
    if request.path.startswith("/failing"):  # a receiver echoing the URL in its error
        return Reply(500, f"upstream down for {request.path}?{request.query}")
    return Reply(200, {"ok": True})


@pytest.fixture(scope="module")
def cycle_outputs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outputs]:
    folder = tmp_path_factory.mktemp("secrets")
    home = folder / "home"
    store = home / "demo"  # where `run --demo` keeps its store
    with (FakeProviders(lambda call: error(call.provider, 400, "bad request")) as llm,
          FakeHttpServer(Reply(500, {"message": "n8n exploded"})) as n8n,
          FakeHttpServer(receiver_answer) as receiver):
        env = environment(folder, llm, n8n)
        seeded = seed_store(build_services(Settings(backend="embedded", home=store)))
        outputs = Outputs(home=store, settings_env=env)
        proxy = ProxySigned(SECRETS["proxy secret"])
        admin = ProxySigned(SECRETS["proxy secret"],
                            {"authorization": f"Bearer {SECRETS['admin key']}"})
        served = start_serve(store, env, "--tick-seconds", "1", cwd=folder, auth=proxy)
        try:
            with httpx.Client(base_url=served.url, auth=admin, timeout=60) as api:
                call_the_api(api, outputs, receiver, seeded.entry_id)
                assert command(outputs, env, folder, "--home", str(home), "run", "--demo") in (
                    0, 3)
                trace_id = api.get("/api/jobs").json()["jobs"][0]["traceId"]
                outputs.trace_id = trace_id
                command(outputs, env, folder, "--home", str(store), "deliver", trace_id)
                command(outputs, env, folder, "--home", str(store), "deliver", trace_id,
                        "--failed-only")
                read_every_get_route(api, outputs, trace_id, seeded.entry_id)
        finally:
            outputs.add("server log", served.stop())
        assert receiver.requests, "the endpoints were delivered to"
        assert llm.calls, "the LLM chains ran"
        read_the_store(outputs, store)
        yield outputs


def call_the_api(api: httpx.Client, outputs: Outputs, receiver: FakeHttpServer,
                 entry_id: str) -> None:
    password, token, query = (SECRETS["endpoint password"], SECRETS["endpoint path token"],
                              SECRETS["endpoint query token"])
    base = receiver.url.replace("http://", f"http://{ENDPOINT_USER}:{password}@")
    for endpoint_id, path in (("team-hook", "hook"), ("broken-hook", "failing")):
        body = {"id": endpoint_id, "name": endpoint_id, "kpis": "all",
                "url": f"{base}/{path}/{token}?token={query}",
                "signingSecret": SECRETS["endpoint signing secret"]}
        created = api.post("/api/endpoints", json=body)
        assert created.status_code == 201, created.text
        assert created.json()["signingSecret"] == SECRETS["endpoint signing secret"]
        # the one answer that shows the signing secret, once, by design
        outputs.add(f"POST /api/endpoints ({endpoint_id})", created.text,
                    allowed={"endpoint signing secret"})
        tested = api.post(f"/api/endpoints/{endpoint_id}/test")
        outputs.add(f"POST /api/endpoints/{endpoint_id}/test", tested.text)
    changed = api.put("/api/endpoints/team-hook",
                      json={"id": "team-hook", "name": "Team", "kpis": "all"})
    outputs.add("PUT /api/endpoints/team-hook", changed.text)
    assert changed.status_code == 200, changed.text
    failures = [
        ("POST", "/api/workflows/wf-1/start", {}),  # n8n answers 500: a 502
        ("POST", "/api/tick", {}),
        ("POST", "/api/kpi-data", {"x-api-key": "wrong"}),
        ("GET", "/api/kpis", {"authorization": "Bearer wrong"}),
        ("POST", "/api/endpoints", {}),  # no body
        ("POST", "/api/charts/generate", {}),
    ]
    for method, path, headers in failures:
        answer = api.request(method, path, headers=headers)
        outputs.add(f"{method} {path} {headers}", answer.text)
    unsigned = httpx.get(api.base_url.copy_with(path="/api/kpis"),
                         headers={"authorization": f"Bearer {SECRETS['admin key']}"})
    assert unsigned.status_code == 403
    outputs.add("GET /api/kpis without the proxy signature", unsigned.text)
    generated = api.post("/api/charts/generate", json={"kpiId": entry_id, "days": 30})
    outputs.add("POST /api/charts/generate", generated.text)


def read_every_get_route(api: httpx.Client, outputs: Outputs, trace_id: str,
                         entry_id: str) -> None:
    charts = [c for c in read_records(outputs.home) if c[0].startswith("chart:")]
    ids = {"traceId": trace_id, "chartId": charts[-1][0].removeprefix("chart:"),
           "kpiId": entry_id}
    by_path = {"/api/schedules/": "daily", "/api/endpoints/": "broken-hook",
               "/api/kpis/": entry_id}
    for operation in operations():
        if operation.method != "GET":
            continue
        values = {n: ids.get(n) or next(v for p, v in by_path.items() if p in operation.path)
                  for n in operation.path_params}
        answer = api.get(operation.url(**values))
        assert answer.status_code in (200, 503), (operation.label, answer.text[:300])
        where = f"GET {operation.path}"
        if answer.headers["content-type"] == "application/pdf":
            reader = PdfReader(BytesIO(answer.content))
            outputs.add(f"{where} (the report's text)",
                        "\n".join(page.extract_text() or "" for page in reader.pages))
        outputs.add(where, answer.content)
    for job in api.get("/api/jobs").json()["jobs"]:
        outputs.add(f"GET /api/jobs/{job['traceId']}", api.get(f"/api/jobs/{job['traceId']}").text)


def read_records(home: Path) -> list[tuple[str, str, str]]:
    with closing(sqlite3.connect(home / "metric-stream.db")) as db:
        rows = db.execute("SELECT pk, sk, body FROM records").fetchall()
        rows += db.execute("SELECT queue, id, body FROM queue_messages").fetchall()
    return [(str(pk), str(sk), str(body)) for pk, sk, body in rows]


def read_the_store(outputs: Outputs, home: Path) -> None:
    for pk, sk, body in read_records(home):
        outputs.add(f"stored record {pk} / {sk}", body)
    for path in sorted(home.rglob("*")):  # the raw database, its WAL and every blob
        if not path.is_file():
            continue
        where = f"file {path.relative_to(home)}"
        outputs.add(where, path.read_bytes())
        if path.suffix == ".pdf":
            reader = PdfReader(path)
            outputs.add(f"{where} (text)",
                        "\n".join(page.extract_text() or "" for page in reader.pages))


def test_the_search_finds_a_secret_in_any_of_its_forms() -> None:
    password = SECRETS["endpoint password"]
    for text in (password, quote(password), base64.b64encode(f"reports:{password}".encode())):
        planted = Outputs()
        planted.add("somewhere", b"... " + (text if isinstance(text, bytes) else text.encode()))
        assert len(planted.leaks()) == 1
    masked = Outputs()
    masked.add("somewhere", "http://reports:***@hooks.example.com/***?***")
    assert masked.leaks() == []


def test_the_cycle_ran_through_everything(cycle_outputs: Outputs) -> None:
    texts = cycle_outputs.texts
    assert any("(text)" in where and "DEMO" in text for where, text in texts.items())
    assert any(w.startswith("stored record consolidated:") for w in texts)
    assert any(w.startswith("stored record delivery:") for w in texts)
    log = texts["server log"]
    assert " DEBUG " in log, "the server logged at DEBUG"
    assert "n8n answered 500" in texts["POST /api/workflows/wf-1/start {}"]
    # the endpoints' URLs are shown masked
    assert "***" in texts["GET /api/endpoints"]


@pytest.mark.parametrize("where", ["command", "server log", "POST ", "PUT ", "GET "])
def test_no_secret_in_outputs_and_answers(cycle_outputs: Outputs, where: str) -> None:
    assert cycle_outputs.leaks(where) == []


def test_no_secret_in_the_report(cycle_outputs: Outputs) -> None:
    assert [w for w in cycle_outputs.texts if w.endswith("(text)")]
    assert [leak for leak in cycle_outputs.leaks() if "(text)" in leak.split(": ...")[0]] == []


def test_no_secret_in_stored_records_and_files(cycle_outputs: Outputs) -> None:
    texts = cycle_outputs.texts
    assert {"file metric-stream.db", "stored record registry:endpoint / team-hook",
            "stored record registry:endpoint / broken-hook"} <= set(texts)
    assert cycle_outputs.leaks("stored record") == []
    assert cycle_outputs.leaks("file ") == []
    endpoint = json.loads(texts["stored record registry:endpoint / team-hook"])
    assert endpoint["sealed"].startswith("v1.")  # what delivery needs, sealed
    assert endpoint["maskedUrl"].endswith("/***?***")


@pytest.mark.anyio
async def test_no_secret_on_the_console_screens(cycle_outputs: Outputs,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from metric_stream_tui.app import AdminApp
    from metric_stream_tui.client import LocalClient
    from metric_stream_tui.screens.endpoint_form import EndpointForm
    from metric_stream_tui.screens.job_detail import JobDetailScreen
    from metric_stream_tui.sections import SECTIONS
    from tests.tui.conftest import settle

    for name, value in cycle_outputs.settings_env.items():
        if name.startswith("METRIC_STREAM_") or name.endswith("_API_KEY"):
            monkeypatch.setenv(name, value)
    settings = Settings(home=cycle_outputs.home)
    assert settings.admin_key is not None  # the console runs with the secrets set
    screens: dict[str, str] = {}
    for section in SECTIONS:
        client = LocalClient(settings)
        app = AdminApp(client, refresh_s=None, cursor_blink=False, start=section.name)
        async with app.run_test(size=(160, 50)) as pilot:
            await settle(pilot)
            screens[f"console section {section.name}"] = app.export_screenshot()
            if section.name == "jobs":
                await app.push_screen(JobDetailScreen(cycle_outputs.trace_id))
                await settle(pilot)
                screens["console job detail"] = app.export_screenshot()
            if section.name == "endpoints":
                entry = await client.endpoint("team-hook")
                await app.push_screen(EndpointForm(entry))
                await settle(pilot)
                screens["console endpoint form"] = app.export_screenshot()
    assert "Dashboard" in screens["console section dashboard"]
    for where, svg in screens.items():
        cycle_outputs.add(where, svg)
    assert cycle_outputs.leaks("console") == []




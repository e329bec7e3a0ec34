"""Observability of a whole cycle: `metric-stream run` and `serve` log JSON lines (every
stderr line one object) in which every line about the job carries its trace id, and the
lines of an HTTP request its request id; the job record keeps each stage's timings
(`GET /api/jobs/{traceId}`); `GET /api/metrics` covers SPEC's list after a cycle."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from metric_stream.api.app import build_api
from metric_stream.api.http import Api, Request
from metric_stream.bootstrap import Services, build_services
from metric_stream.clock import SystemClock
from metric_stream.collectors.demo import demo_registry, seed_history
from metric_stream.models import KpiDefinition, N8nSource
from metric_stream.services import cycle
from metric_stream.services.runner import run_cycle
from metric_stream.services.stages import default_workers
from metric_stream.settings import Settings
from tests.conftest import make_services
from tests.integration.test_analysis_llm import answer, configure
from tests.integration.test_serve import free_port
from tests.llm_fakes import KEY, PROVIDERS, FakeProviders

ADMIN_KEY = "observability-admin-key"
JOB_LOGGERS = ("metric_stream.services.", "metric_stream.cycle", "metric_stream.ingest")
STAGES = ("collecting", "fanout", "analysing", "packaging", "delivering")


def json_lines(err: str) -> list[dict[str, Any]]:
    """Every line of `err` parsed: each one must be a JSON object with the base fields."""
    parsed = []
    for line in err.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            raise AssertionError(f"a stderr line is not JSON: {line!r}") from None
        assert isinstance(item, dict) and {"time", "level", "logger", "message"} <= set(item)
        parsed.append(item)
    return parsed


def check_job_lines(lines: list[dict[str, Any]], trace_id: str) -> list[dict[str, Any]]:
    """The job's lines: those that name it, and those its stages log while it runs
    (between its first and last line). Each must carry its trace id; returns them."""
    named = [n for n, line in enumerate(lines) if trace_id in line["message"]]
    assert named, f"no line names {trace_id}"
    window = lines[named[0]:named[-1] + 1]
    job_lines = [line for line in window
                 if trace_id in line["message"]
                 or (line["logger"].startswith(JOB_LOGGERS) and "job" in line["message"])]
    wrong = [line for line in job_lines if line.get("traceId") != trace_id]
    assert not wrong, wrong
    other = [line for line in lines if "trace_" in line["message"] and trace_id
             not in line["message"]]
    assert not other, other  # one job in this run: no other trace id anywhere
    return job_lines


def test_a_demo_run_logs_json_lines_carrying_its_trace_id(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "metric_stream.cli.main", "--home", str(tmp_path / "h"),
         "run", "--demo", "--json", "--log-format", "json", "--log-level", "debug"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert done.returncode == 0, done.stderr
    trace_id = json.loads(done.stdout)["traceId"]
    lines = json_lines(done.stderr)
    assert any("DEMO" in line["message"] for line in lines)  # the banner, as a JSON line
    job_lines = check_job_lines(lines, trace_id)
    loggers = {line["logger"] for line in job_lines}
    assert {"metric_stream.services.analysis", "metric_stream.services.packaging",
            "metric_stream.services.delivery", "metric_stream.cycle"} <= loggers
    stages = [line.get("stage") for line in job_lines if line.get("result")]
    assert stages == ["analysis", "packaging", "delivery"]
    assert job_lines[-1]["message"] == f"job {trace_id}: complete"


def test_text_lines_show_the_trace_id(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "metric_stream.cli.main", "--home", str(tmp_path / "h"),
         "--log-level", "info", "run", "--demo", "--json"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert done.returncode == 0, done.stderr
    trace_id = json.loads(done.stdout)["traceId"]
    about = [line for line in done.stderr.splitlines() if f"job {trace_id}" in line]
    assert len(about) >= 5
    assert all(f" [{trace_id}] job {trace_id}" in line for line in about), about


def start_serve(home: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    """`metric-stream serve` on a free port (stderr kept apart), once it answers."""
    port = free_port()
    env = {**os.environ, "METRIC_STREAM_HOME": str(home), "METRIC_STREAM_ADMIN_KEY": ADMIN_KEY,
           "PYTHONDONTWRITEBYTECODE": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "metric_stream.cli.main", "serve", "--port", str(port), *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"serve did not start: {stop(process)}")


def stop(process: subprocess.Popen[str]) -> str:
    """SIGTERM, and what it wrote to stderr; a process that ignores it is killed."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        _, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
    return err


def test_a_cycle_under_serve_logs_json_lines_with_trace_and_request_ids(tmp_path: Path) -> None:
    home = tmp_path / "home"
    services = build_services(Settings(home=home))
    services.init()
    for entry in demo_registry(4):
        services.registry.kpis.create(entry)
    process, url = start_serve(home, "--workers", "2", "--tick-seconds", "1",
                               "--log-format", "json")
    admin = {"authorization": f"Bearer {ADMIN_KEY}"}
    try:
        started = httpx.post(f"{url}/api/jobs", headers={**admin, "x-request-id": "req-obs-1"},
                             json={}, timeout=30)
        assert started.status_code == 201, started.text
        trace_id = started.json()["job"]["traceId"]
        deadline = time.monotonic() + 30
        while not services.jobs.require(trace_id).status.terminal:
            assert time.monotonic() < deadline, "the job did not finish under serve"
            time.sleep(0.2)
        detail = httpx.get(f"{url}/api/jobs/{trace_id}", headers=admin, timeout=10).json()
    finally:
        err = stop(process)
    assert process.returncode == 0, err
    lines = json_lines(err)
    job_lines = check_job_lines(lines, trace_id)
    [created] = [line for line in job_lines if "created with" in line["message"]]
    assert created["requestId"] == "req-obs-1"  # logged by an HTTP worker process
    assert {line.get("stage") for line in job_lines if line.get("result")} == {
        "analysis", "packaging", "delivery"}  # logged by the stage workers
    assert any(line["logger"] == "uvicorn.error" for line in lines)  # uvicorn's, as JSON too
    check_stage_timings(detail)


def check_stage_timings(detail: dict[str, Any]) -> None:
    """Each stage on the job record, in order, each within the job's life."""
    stages = detail["stages"]
    assert list(stages) == list(STAGES)
    created = datetime.fromisoformat(detail["createdAt"])
    finished = datetime.fromisoformat(detail["finishedAt"])
    for name in STAGES:
        start = datetime.fromisoformat(stages[name]["startedAt"])
        end = datetime.fromisoformat(stages[name]["finishedAt"])
        assert created <= start <= end <= finished, name
        assert stages[name]["durationS"] == pytest.approx((end - start).total_seconds(),
                                                          abs=0.001)
    for before, after in itertools.pairwise(STAGES[2:]):
        assert stages[before]["finishedAt"] == stages[after]["startedAt"]
    assert stages["collecting"]["finishedAt"] == stages["analysing"]["startedAt"]
    assert 0 <= detail["fanInWaitS"] <= stages["collecting"]["durationS"]


# ---------------------------------------------------------------- metrics after a cycle
@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Any:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    with FakeProviders(answer) as providers:
        yield providers


def admin_get(api: Api, path: str) -> dict[str, Any]:
    response = api.handle(Request("GET", path, {"authorization": f"Bearer {ADMIN_KEY}"}))
    assert response.status == 200, response.body
    body: dict[str, Any] = json.loads(response.body)
    return body


def test_metrics_cover_the_spec_after_a_demo_cycle(tmp_path: Path, fake: FakeProviders) -> None:
    settings: dict[str, object] = {"admin_key": ADMIN_KEY}
    for provider in PROVIDERS:
        settings[f"{provider}_base_url"] = fake.base_url(provider)
        settings[f"{provider}_api_key"] = KEY
    services: Services = make_services("embedded", tmp_path, SystemClock(),  # type: ignore[arg-type]
                                       **settings)
    entries = demo_registry(3)
    for entry in entries:
        services.registry.kpis.create(entry)
    services.registry.kpis.create(KpiDefinition(  # refused address: fails every run
        id="n8n-refused", name="refused", kpi_type="price",
        source=N8nSource(webhook_url="http://169.254.169.254/hook")))
    seed_history(services, entries, 60, (services.clock.now() - timedelta(days=1)).date())
    configure(services)
    with httpx.Client() as http:
        summary = run_cycle(services, cycle.Triggers(http), workers=default_workers(),
                            poll_s=0.05)
    assert summary.job.status.value == "partial"
    api = build_api(services)
    admin_get(api, "/api/kpis")
    detail = admin_get(api, f"/api/jobs/{summary.job.trace_id}")
    metrics = admin_get(api, "/api/metrics")

    # queue depth: every stage queue, empty once the job is done
    assert set(metrics["queues"]) == {"fanout", "analysis", "packaging", "delivery"}
    for depth in metrics["queues"].values():
        assert depth == {"visible": 0, "inFlight": 0, "deadLetters": 0}
    # job completion times, overall and per stage
    jobs = metrics["jobs"]
    assert jobs["sampled"] == 1 and jobs["byStatus"] == {"partial": 1}
    completion = jobs["completionS"]
    assert completion["count"] == 1 and 0 < completion["median"] < 120
    assert completion["median"] >= sum(detail["stages"][s]["durationS"]
                                       for s in ("analysing", "packaging", "delivering"))
    assert set(jobs["stagesS"]) == set(STAGES)
    assert all(s["count"] == 1 and s["median"] >= 0 for s in jobs["stagesS"].values())
    # KPI failure rates
    rates = metrics["kpiFailureRates"]
    assert rates["kpis"]["n8n-refused"] == {"settled": 1, "failed": 1, "timedOut": 0,
                                            "rate": 1.0}
    collected = [k for k in summary.job.kpi_ids if k != "n8n-refused"]
    assert all(rates["kpis"][k]["rate"] == 0.0 for k in collected)
    assert rates["overall"] == pytest.approx(1 / (len(collected) + 1), abs=1e-4)
    # handler execution times (this process's API)
    routes = metrics["handlers"]["routes"]
    for route in ("GET /api/kpis", "GET /api/jobs/{traceId}"):
        assert routes[route]["calls"] == 1 and routes[route]["median"] > 0
    # LLM latency (and calls, tokens)
    llm = metrics["llm"]
    assert llm["jobs"] == 1 and llm["calls"] == len(fake.calls) > 0
    assert llm["chainsFailed"] == 0 and llm["inputTokens"] > 0
    assert 0 < llm["latencyMs"]["median"] <= llm["latencyMs"]["p95"] <= llm["latencyMs"]["max"]
    # storage usage: the database, the report and the charts
    storage = metrics["storage"]
    assert storage["backend"] == "embedded" and storage["databaseBytes"] > 0
    assert storage["blobFiles"] >= 1 + len(collected)
    assert storage["totalBytes"] == storage["databaseBytes"] + storage["blobBytes"]


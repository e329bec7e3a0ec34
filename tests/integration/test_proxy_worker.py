"""The Cloudflare Worker proxy for real, under `wrangler dev` (workerd, offline), in
front of `metric-stream serve` in proxy mode on 127.0.0.1: callbacks land, admin routes
need a Cloudflare Access token (checked against a local JWKS), `serve` refuses what did
not come through the proxy, the cron trigger ticks, and upstream failures come back as
our JSON errors. Slow: each `wrangler dev` takes a few seconds to start."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from metric_stream.bootstrap import Services, build_services
from metric_stream.models import CollectorSource, KpiDefinition, Schedule
from metric_stream.settings import Settings
from tests.integration.wrangler_support import (
    ADMIN_KEY,
    AUDIENCE,
    INGEST_KEY,
    ISSUER,
    PROXY_SECRET,
    AccessKeys,
    Process,
    jwks_server,
    start_serve,
    start_worker,
)

pytestmark = pytest.mark.slow

KPI = "btc-price-usd"


@dataclass
class Stack:
    serve: Process
    worker: Process
    keys: AccessKeys
    home: Path

    def services(self) -> Services:
        return build_services(Settings(home=self.home))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("proxy")
    home = root / "home"
    services = build_services(Settings(home=home))
    services.init()
    services.registry.kpis.create(KpiDefinition(
        id=KPI, name="BTC", kpi_type="price", source=CollectorSource(collector="demo")))
    keys = AccessKeys()
    with jwks_server(keys) as jwks_url:
        serve = start_serve(home, root)
        try:
            worker = start_worker(serve.url, root, {
                "PROXY_SECRET": PROXY_SECRET, "ACCESS_JWKS_URL": jwks_url,
                "ACCESS_AUD": AUDIENCE, "ACCESS_ISSUER": ISSUER})
            try:
                yield Stack(serve, worker, keys, home)
            finally:
                worker.stop()
        finally:
            serve.stop()


def error_of(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"].startswith("application/json"), response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) >= {"code", "message"}
    return error


def admin(stack: Stack, token: str | None = None) -> dict[str, str]:
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    if token:
        headers["cf-access-jwt-assertion"] = token
    return headers


# ---------------------------------------------------------------- through the proxy
def test_an_n8n_callback_through_the_proxy_lands(stack: Stack) -> None:
    body = {"traceId": "trace_20261205_060000_abcdef", "kpiId": KPI, "kpiType": "price",
            "timestamp": "2026-12-05T06:00:00Z", "data": 97_123.5}
    answer = httpx.post(f"{stack.worker.url}/api/kpi-data", json=body,
                        headers={"x-api-key": INGEST_KEY}, timeout=10)
    assert answer.status_code in (200, 201, 202), answer.text
    points = stack.services().timeseries.points(KPI, start=datetime(2026, 12, 5, tzinfo=UTC),
                                                end=datetime(2026, 12, 6, tzinfo=UTC))
    assert [p.value for p in points] == [97_123.5]


def test_a_callback_without_its_key_is_refused_by_metric_stream(stack: Stack) -> None:
    answer = httpx.post(f"{stack.worker.url}/api/kpi-data", json={"kpiId": KPI}, timeout=10)
    assert answer.status_code == 401
    assert error_of(answer)["code"] == "unauthorized"


def test_public_routes_pass(stack: Stack) -> None:
    answer = httpx.get(f"{stack.worker.url}/api/health", timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.headers.get("x-request-id")


# ---------------------------------------------------------------- Cloudflare Access
def test_an_admin_call_without_an_access_token_is_refused(stack: Stack) -> None:
    answer = httpx.get(f"{stack.worker.url}/api/kpis", headers=admin(stack), timeout=10)
    assert answer.status_code == 403
    assert error_of(answer)["code"] == "forbidden"


def test_an_admin_call_with_an_access_token_from_the_jwks_passes(stack: Stack) -> None:
    answer = httpx.get(f"{stack.worker.url}/api/kpis",
                       headers=admin(stack, stack.keys.token()), timeout=10)
    assert answer.status_code == 200, answer.text
    assert KPI in json.dumps(answer.json())


@pytest.mark.parametrize("problem", ["expired", "audience", "issuer", "signature", "kid"])
def test_a_bad_access_token_is_refused_without_echoing_it(stack: Stack, problem: str) -> None:
    keys = stack.keys
    if problem == "expired":
        token = keys.token(expires_in=-3600)
    elif problem == "audience":
        token = keys.token(audience="another-application")
    elif problem == "issuer":
        token = keys.token(issuer="https://someone-else.cloudflareaccess.com")
    elif problem == "signature":
        token = AccessKeys(kid=keys.kid).token()  # the right kid, another key
    else:
        token = keys.token(kid="unknown-kid")
    answer = httpx.get(f"{stack.worker.url}/api/kpis", headers=admin(stack, token), timeout=10)
    assert answer.status_code == 403, answer.text
    assert error_of(answer)["code"] == "forbidden"
    assert token not in answer.text and token.split(".")[2] not in answer.text


# ---------------------------------------------------------------- around the proxy
def test_a_request_straight_to_serve_is_refused_in_proxy_mode(stack: Stack) -> None:
    for headers in ({}, admin(stack), {
            "x-metric-stream-proxy-timestamp": str(int(time.time())),
            "x-metric-stream-proxy-origin": "forward",
            "x-metric-stream-proxy-signature": "v1=" + "ab" * 32}):
        answer = httpx.get(f"{stack.serve.url}/api/kpis", headers=headers, timeout=10)
        assert answer.status_code == 403
        assert "through the metric-stream proxy" in error_of(answer)["message"]


def test_the_cron_trigger_makes_a_tick_that_starts_a_job(stack: Stack) -> None:
    services = stack.services()
    services.registry.schedules.create(Schedule(
        id="every-minute", cron="* * * * *",
        created_at=datetime.now(UTC) - timedelta(minutes=3)))
    before = {j.trace_id for j in services.jobs.list(limit=50)}
    answer = httpx.get(f"{stack.worker.url}/__scheduled", params={"cron": "* * * * *"},
                       timeout=30)
    assert answer.status_code == 200, answer.text
    deadline = time.monotonic() + 20
    started: set[str] = set()
    while time.monotonic() < deadline and not started:
        started = {j.trace_id for j in services.jobs.list(limit=50)} - before
        time.sleep(0.2)
    assert len(started) == 1, stack.worker.output()
    schedule = services.registry.schedules.get("every-minute")
    assert schedule is not None and schedule.last_fired_at is not None


# ---------------------------------------------------------------- upstream failures
class FlakyUpstream:
    """An upstream that hangs on /api/hang, answers an HTML 500 page elsewhere, and can
    be shut down (then nothing listens on its port)."""

    def __init__(self) -> None:
        release = self.release = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.startswith("/api/hang"):
                    release.wait(30)
                    return
                page = b"<html><body><h1>502 Bad Gateway</h1>nginx</body></html>"
                self.send_response(500)
                self.send_header("content-type", "text/html")
                self.send_header("content-length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def shut(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def flaky(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FlakyUpstream, Process]]:
    upstream = FlakyUpstream()
    worker = start_worker(upstream.url, tmp_path_factory.mktemp("flaky"), {
        "PROXY_SECRET": PROXY_SECRET, "ACCESS_DISABLED": "true",
        "UPSTREAM_TIMEOUT_MS": "1500", "MAX_BODY_BYTES": "1024",
        "RATE_LIMIT_PER_MINUTE": "0"})
    try:
        yield upstream, worker
    finally:
        worker.stop()
        upstream.shut()


def test_an_upstream_that_hangs_is_a_json_504(flaky: tuple[FlakyUpstream, Process]) -> None:
    _, worker = flaky
    started = time.monotonic()
    answer = httpx.get(f"{worker.url}/api/hang", timeout=20)
    assert answer.status_code == 504
    assert error_of(answer)["code"] == "upstream_timeout"
    assert time.monotonic() - started < 10


def test_an_upstream_html_error_page_becomes_a_json_502(
        flaky: tuple[FlakyUpstream, Process]) -> None:
    _, worker = flaky
    answer = httpx.get(f"{worker.url}/api/health", timeout=20)
    assert answer.status_code == 502
    error = error_of(answer)
    assert error["code"] == "upstream_error" and "500" in error["message"]
    assert "<html" not in answer.text


def test_an_oversized_body_is_a_json_413_before_it_reaches_upstream(
        flaky: tuple[FlakyUpstream, Process]) -> None:
    _, worker = flaky
    answer = httpx.post(f"{worker.url}/api/kpi-data", content=b"x" * 4096,
                        headers={"content-type": "application/json"}, timeout=20)
    assert answer.status_code == 413
    assert error_of(answer)["code"] == "payload_too_large"


def test_an_upstream_that_is_down_is_a_json_502(flaky: tuple[FlakyUpstream, Process]) -> None:
    upstream, worker = flaky
    upstream.shut()
    with socket.socket() as probe:  # nothing listens there any more
        assert probe.connect_ex(("127.0.0.1", int(upstream.url.rsplit(":", 1)[1]))) != 0
    answer = httpx.get(f"{worker.url}/api/health", timeout=20)
    assert answer.status_code == 502
    assert error_of(answer)["code"] == "upstream_error"

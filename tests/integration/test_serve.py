"""`metric-stream serve` over real sockets on 127.0.0.1: the API, size limits, and a
graceful shutdown that loses nothing it accepted."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from metric_stream.bootstrap import build_services
from metric_stream.models import CollectorSource, KpiDefinition
from metric_stream.settings import Settings

KEY = "serve-test-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    home: Path
    process: subprocess.Popen[str]


def start_server(home: Path, port: int | None = None) -> Server:
    port = port or free_port()
    env = {**os.environ, "METRIC_STREAM_HOME": str(home), "METRIC_STREAM_INGESTION_KEY": KEY}
    process = subprocess.Popen(
        [sys.executable, "-m", "metric_stream.cli.main", "serve", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                return Server(url, home, process)
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    output, _ = process.communicate()
    raise AssertionError(f"serve did not start: {output}")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    home = tmp_path / "home"
    services = build_services(Settings(home=home))
    services.init()
    for i in range(50):
        services.registry.kpis.create(KpiDefinition(
            id=f"kpi-{i}", name=f"KPI {i}", kpi_type="price",
            source=CollectorSource(collector="demo")))
    srv = start_server(home)
    yield srv
    if srv.process.poll() is None:
        srv.process.terminate()
    srv.process.communicate(timeout=60)


def result(kpi: int, minute: int, value: float = 1.0) -> dict[str, object]:
    return {"traceId": "trace_serve", "kpiId": f"kpi-{kpi}", "kpiType": "price",
            "timestamp": f"2026-11-29T06:{minute:02d}:00Z", "data": value}


def test_ingestion_over_http(server: Server) -> None:
    with httpx.Client(base_url=server.url, headers={"x-api-key": KEY}) as client:
        first = client.post("/api/kpi-data", json=result(1, 0, 42.0))
        assert first.status_code == 202 and first.json()["stored"] == ["kpi-1"]
        assert int(first.headers["content-length"]) == len(first.content)
        assert client.post("/api/kpi-data", json=result(1, 0, 42.0)).json()["status"] == \
            "duplicate"
        assert client.post("/api/kpi-data", json=result(1, 0, 43.0)).status_code == 409
        bad = client.post("/api/kpi-data", content=b"{nope", headers={"content-type":
                                                                     "application/json"})
        assert bad.status_code == 400
        huge = client.post("/api/kpi-data", content=b"x" * (300 * 1024))
        assert huge.status_code == 413
        assert client.post("/api/kpi-data", json=result(1, 1),
                           headers={"x-api-key": "nope"}).status_code == 401
        spec = client.get("/api/openapi.json").json()
        assert "/api/kpi-data" in spec["paths"]
    points = build_services(Settings(home=server.home)).timeseries.points("kpi-1")
    assert [p.value for p in points] == [42.0]


def test_sigterm_finishes_accepted_requests_and_loses_nothing(server: Server) -> None:
    payloads = [result(k, m, float(k * 100 + m)) for m in range(8) for k in range(50)]

    def send(body: dict[str, object]) -> tuple[dict[str, object], int | None]:
        try:
            response = httpx.post(f"{server.url}/api/kpi-data", json=body,
                                  headers={"x-api-key": KEY}, timeout=30)
            return body, response.status_code
        except httpx.HTTPError:
            return body, None  # refused: never accepted

    with ThreadPoolExecutor(max_workers=32) as pool:
        futures = [pool.submit(send, p) for p in payloads]
        time.sleep(0.3)
        server.process.send_signal(signal.SIGTERM)
        outcomes = [f.result() for f in futures]
    assert server.process.wait(timeout=60) == 0
    accepted = [body for body, status in outcomes if status is not None and status < 300]
    assert accepted, "some requests were served before the shutdown"
    assert all(status in (None, 202) for _, status in outcomes)
    services = build_services(Settings(home=server.home))
    for body in accepted:
        points = services.timeseries.points(str(body["kpiId"]))
        assert body["data"] in [p.value for p in points], body
    stored = sum(len(services.timeseries.points(f"kpi-{k}")) for k in range(50))
    assert stored >= len(accepted)


def test_a_port_in_use_is_a_clear_error(server: Server, tmp_path: Path) -> None:
    port = int(server.url.rsplit(":", 1)[1])
    result_ = subprocess.run(
        [sys.executable, "-m", "metric_stream.cli.main", "--home", str(tmp_path / "other"),
         "serve", "--port", str(port)], capture_output=True, text=True, timeout=60, check=False)
    assert result_.returncode != 0
    assert "cannot serve on 127.0.0.1" in result_.stderr
    assert "Traceback" not in result_.stderr


def test_workers_do_not_outlive_a_killed_supervisor(server: Server) -> None:
    children = subprocess.run(["pgrep", "-P", str(server.process.pid)], capture_output=True,
                              text=True, check=False).stdout.split()
    assert len(children) >= 2  # the HTTP workers (and multiprocessing's resource tracker)
    server.process.kill()
    server.process.wait(timeout=10)
    deadline = time.monotonic() + 30
    alive = children
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in alive if Path(f"/proc/{pid}").exists()
                 and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()]
        time.sleep(0.2)
    assert alive == []

"""`metric-stream serve --emulate-aws`: the aws backend against a moto server that
serve starts and stops: a result ingested over HTTP lands in (emulated) DynamoDB."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx

from metric_stream.bootstrap import build_services
from metric_stream.clock import SystemClock
from metric_stream.collectors.demo import demo_registry
from metric_stream.models import Job, JobStatus, Schedule
from metric_stream.settings import Settings
from tests.integration.test_serve import free_port

KEY = "emulate-aws-key"
SCHEDULE = "daily-just-past"
QUEUES = ("fanout", "analysis", "packaging", "delivery")


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class Emulated:
    url: str
    endpoint: str
    moto_port: int
    log_path: Path
    process: subprocess.Popen[str]

    def stop(self) -> None:
        """SIGTERM, as an operator would; kill only if it does not stop in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_emulated(tmp_path: Path, *options: str) -> Emulated:
    """`serve --emulate-aws` on free ports, once it answers /api/health (init has run)."""
    port, moto_port = free_port(), free_port()
    log_path = tmp_path / "serve.log"
    env = {**os.environ, "METRIC_STREAM_INGESTION_KEY": KEY}
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "metric_stream.cli.main", "serve", "--emulate-aws",
             "--port", str(port), "--moto-port", str(moto_port), *options],
            env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    server = Emulated(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{moto_port}", moto_port,
                      log_path, process)
    deadline = time.monotonic() + 40
    health = None
    while time.monotonic() < deadline and process.poll() is None:
        try:
            health = httpx.get(f"{server.url}/api/health", timeout=2)
            if health.status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    if health is None or health.status_code != 200 or health.json()["backend"] != "aws":
        server.stop()
        raise AssertionError(log_path.read_text())
    return server


def test_serve_emulating_aws_ingests_into_moto(tmp_path: Path) -> None:
    server = start_emulated(tmp_path, "--workers", "2")
    url, endpoint, log_path, process = server.url, server.endpoint, server.log_path, server.process
    moto_port = server.moto_port
    try:
        assert f"emulating AWS with moto at {endpoint}" in log_path.read_text()

        seed = tmp_path / "seed.json"
        seed.write_text(json.dumps([{"id": "btc-price", "name": "BTC", "kpiType": "price",
                                     "source": {"kind": "collector", "collector": "demo"}}]))
        subprocess.run([sys.executable, "-m", "metric_stream.cli.main", "--backend", "aws",
                        "init", "--no-defaults", "--seed", str(seed)],
                       env={**os.environ, "METRIC_STREAM_AWS_ENDPOINT_URL": endpoint},
                       capture_output=True, text=True, timeout=60, check=True)
        response = httpx.post(f"{url}/api/kpi-data", headers={"x-api-key": KEY}, timeout=10,
                              json={"traceId": "trace_emulated", "kpiId": "btc-price",
                                    "kpiType": "price", "timestamp": "2026-11-29T06:00:00Z",
                                    "data": 97000.5})
        assert response.status_code == 202, response.text
        assert response.json()["stored"] == ["btc-price"]
        services = build_services(Settings(backend="aws", aws_endpoint_url=endpoint))
        assert [p.value for p in services.timeseries.points("btc-price")] == [97000.5]
    finally:
        server.stop()
    assert process.returncode == 0, log_path.read_text()
    assert not listening(moto_port)  # the moto server stopped with serve


def test_serve_emulating_aws_runs_a_scheduled_job_to_complete(tmp_path: Path) -> None:
    """The same cycle as `serve` on the embedded backend (test_serve_cycle): the tick
    fires a due schedule once, and the stage workers take the job to `complete`, here
    on DynamoDB, S3 and SQS as emulated by moto."""
    jobs: list[Job] = []
    fired_at = None
    depths: dict[str, tuple[int, int, int]] = {}
    server = start_emulated(tmp_path, "--tick-seconds", "1", "--workers", "1")
    endpoint, log_path, process = server.endpoint, server.log_path, server.process
    moto_port = server.moto_port
    try:
        # serve has run init (table, bucket, queues) before it answers: seed only now
        services = build_services(Settings(backend="aws", aws_endpoint_url=endpoint))
        for entry in demo_registry(3):
            services.registry.kpis.create(entry)
        # Daily, at the minute that just passed: due at the first tick, and not again for a
        # day, so a second job would be a double fire (an every-minute cron would fire
        # again, rightly, if the test crossed a minute boundary). Created last: the tick
        # sees the whole registry.
        now = SystemClock().now()
        just_past = now - timedelta(minutes=1)
        services.registry.schedules.create(Schedule(
            id=SCHEDULE, cron=f"{just_past.minute} {just_past.hour} * * *",
            created_at=now - timedelta(minutes=2)))

        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and process.poll() is None:
            jobs = [j for j in services.jobs.list() if j.schedule_id == SCHEDULE]
            if jobs and all(j.status.terminal for j in jobs):
                break
            time.sleep(0.5)
        time.sleep(2)  # two more ticks: the schedule must not fire again
        jobs = [j for j in services.jobs.list() if j.schedule_id == SCHEDULE]
        assert process.poll() is None, log_path.read_text()
        fired_at = services.registry.schedules.require(SCHEDULE).last_fired_at
        depths = {queue: (d.visible, d.in_flight, d.dead_letters)  # read while moto runs
                  for queue in QUEUES
                  for d in [services.queue.depth(queue)]}
    finally:
        server.stop()
    output = log_path.read_text()
    assert process.returncode == 0, output
    assert not listening(moto_port)
    assert len(jobs) == 1, (jobs, output)  # fired once, though the tick ran every second
    job = jobs[0]
    assert job.status is JobStatus.COMPLETE, (job.status, output)
    assert len(job.kpi_ids) == 3
    assert set(job.stages) >= {"collecting", "analysing", "packaging", "delivering"}
    assert f"created job {job.trace_id}" in output
    assert fired_at is not None
    assert depths == dict.fromkeys(QUEUES, (0, 0, 0)), depths

"""`metric-stream serve` runs the whole cycle: its tick fires a due schedule, the job
fans out to the demo collectors, settles, and its stage workers take it through
analysis, packaging and delivery to `complete`; `--no-workers` serves the API only."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from metric_stream.bootstrap import Services, build_services
from metric_stream.clock import SystemClock
from metric_stream.collectors.demo import demo_registry
from metric_stream.models import Job, JobStatus, Schedule
from metric_stream.settings import Settings
from tests.integration.test_serve import free_port

KEY = "serve-cycle-key"


def prepare_home(home: Path) -> Services:
    """A demo registry of 4 KPIs and a schedule that is due at the first tick."""
    services = build_services(Settings(home=home))
    services.init()
    for entry in demo_registry(4):
        services.registry.kpis.create(entry)
    services.registry.schedules.create(Schedule(
        id="every-minute", cron="* * * * *",
        created_at=SystemClock().now() - timedelta(minutes=2)))
    return services


def start_serve(home: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    env = {**os.environ, "METRIC_STREAM_HOME": str(home), "METRIC_STREAM_INGESTION_KEY": KEY}
    process = subprocess.Popen(
        [sys.executable, "-m", "metric_stream.cli.main", "serve", "--port", str(port), *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    stop(process)
    raise AssertionError(f"serve did not start: {process.stdout.read() if process.stdout else ''}")


def stop(process: subprocess.Popen[str]) -> str:
    """SIGTERM, and the output; a process that ignores it is killed."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        output, _ = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return output


def scheduled_jobs(services: Services) -> list[Job]:
    return [j for j in services.jobs.list() if j.schedule_id == "every-minute"]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_due_schedule_runs_to_complete_under_serve(tmp_path: Path, workers: str) -> None:
    home = tmp_path / "home"
    services = prepare_home(home)
    process, _ = start_serve(home, "--tick-seconds", "1", "--workers", workers)
    try:
        deadline = time.monotonic() + 30
        jobs: list[Job] = []
        while time.monotonic() < deadline:
            jobs = scheduled_jobs(services)
            if jobs and jobs[0].status.terminal:
                break
            time.sleep(0.2)
    finally:
        output = stop(process)
    assert process.returncode == 0, output
    assert len(jobs) == 1, output  # fired once, though the tick ran every second
    job = jobs[0]
    assert job.status is JobStatus.COMPLETE, (job.status, output)
    assert len(job.kpi_ids) == 4
    assert set(job.stages) >= {"collecting", "analysing", "packaging", "delivering"}
    assert f"created job {job.trace_id}" in output
    assert services.registry.schedules.require("every-minute").last_fired_at is not None
    for stage in ("analysis", "packaging", "delivery"):
        depth = services.queue.depth(stage)
        assert (depth.visible, depth.in_flight, depth.dead_letters) == (0, 0, 0)


def test_no_workers_serves_the_api_only(tmp_path: Path) -> None:
    home = tmp_path / "home"
    services = prepare_home(home)
    process, url = start_serve(home, "--tick-seconds", "0.5", "--workers", "1", "--no-workers")
    try:
        time.sleep(2)  # four ticks' worth
        assert httpx.get(f"{url}/api/health", timeout=5).status_code == 200
    finally:
        output = stop(process)
    assert process.returncode == 0, output
    assert scheduled_jobs(services) == []
    assert services.registry.schedules.require("every-minute").last_fired_at is None
    assert "cycle running" not in output

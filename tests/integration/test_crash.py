"""Crash tests: a stage worker SIGKILLed at each stage boundary and in the middle of a
stage; after a restart the job completes, no stage completes twice, nothing is lost."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from metric_stream.bootstrap import build_services
from metric_stream.collectors.demo import demo_registry
from metric_stream.models import JobStatus
from metric_stream.services import cycle
from metric_stream.settings import Settings

pytestmark = pytest.mark.slow

WORKER = r"""
import os, signal, sys, time
from metric_stream.bootstrap import build_services
from metric_stream.ports import Key, Update
from metric_stream.services import cycle
from metric_stream.settings import Settings

home, crash = sys.argv[1], sys.argv[2]
services = build_services(Settings(home=home, queue_visibility_timeout=2))
PREVIOUS = {"packaging": "analysis", "delivery": "packaging"}

def work_for(queue):
    def work(services, job):
        print(f"working {queue}", flush=True)
        time.sleep(0.4)  # the middle of a stage
        return [Update(Key("completions:" + job.trace_id, queue), add={"n": 1})]
    return work

if crash.startswith("after-commit:"):
    stage = crash.split(":", 1)[1]
    send, ack = services.queue.send, services.queue.ack
    def crash_send(queue, body, **kw):
        if PREVIOUS.get(queue) == stage:  # the stage committed; its hand-off not sent yet
            os.kill(os.getpid(), signal.SIGKILL)
        return send(queue, body, **kw)
    def crash_ack(queue, message):
        if queue == stage:  # committed, message not yet acknowledged
            os.kill(os.getpid(), signal.SIGKILL)
        return ack(queue, message)
    services.queue.send, services.queue.ack = crash_send, crash_ack

workers = cycle.StageWorkers({q: work_for(q) for q in cycle.STAGES})
print("ready", flush=True)
while True:
    for queue in cycle.STAGES:
        cycle.consume(services, queue, workers, wait_seconds=0.1, lease_s=2)
    cycle.recover(services)
"""


def start_worker(home: Path, crash: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", WORKER, str(home), crash],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop(worker: subprocess.Popen[str]) -> str:
    if worker.poll() is None:
        worker.kill()
    out, _ = worker.communicate(timeout=30)
    return out


def new_job(home: Path) -> str:
    services = build_services(Settings(home=home))
    services.init()
    if not services.registry.kpis.ids():
        for entry in demo_registry(3):
            services.registry.kpis.create(entry)
    with httpx.Client() as http:
        job, _ = cycle.start_job(services, cycle.Triggers(http), demo=True)
    return job.trace_id


def wait_for_end(home: Path, trace_id: str, seconds: float = 40) -> JobStatus:
    services = build_services(Settings(home=home))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = services.jobs.require(trace_id).status
        if status.terminal:
            return status
        time.sleep(0.2)
    return services.jobs.require(trace_id).status


def completions(home: Path, trace_id: str) -> dict[str, int]:
    services = build_services(Settings(home=home))
    return {sk: int(item["n"]) for sk, item in services.records.query(f"completions:{trace_id}")}


@pytest.mark.parametrize("crash", ["after-commit:analysis", "after-commit:packaging",
                                   "after-commit:delivery", "mid-stage"])
def test_a_killed_worker_loses_nothing_and_repeats_nothing(tmp_path: Path, crash: str) -> None:
    home = tmp_path / "home"
    trace_id = new_job(home)
    first = start_worker(home, crash)
    try:
        if crash == "mid-stage":
            assert first.stdout is not None
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:  # kill it while it works on a stage
                if first.stdout.readline().startswith("working packaging"):
                    break
            time.sleep(0.1)
            first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=30) == -signal.SIGKILL
    finally:
        stop(first)
    assert not build_services(Settings(home=home)).jobs.require(trace_id).status.terminal \
        or crash == "after-commit:delivery"
    second = start_worker(home, "none")
    try:
        assert wait_for_end(home, trace_id) is JobStatus.COMPLETE
    finally:
        output = stop(second)
    assert completions(home, trace_id) == {"analysis": 1, "packaging": 1, "delivery": 1}, output
    services = build_services(Settings(home=home))
    job = services.jobs.require(trace_id)
    assert all(len(services.timeseries.points(k)) == 1 for k in job.kpi_ids)

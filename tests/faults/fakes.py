"""Fakes for the fault tests: n8n workflows that call back (or not), a webhook receiver
that answers 503 when told, an SMTP server that is down until brought up, an LLM
provider that fails at random (reproducibly), and the processes of `serve`.

Each listens on 127.0.0.1 in threads of its own and records what it did, so a test can
compare what the system stored with what the outside world sent and received.
"""

from __future__ import annotations

import json
import random
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

import httpx

from tests.delivery_fakes import HOST, FakeHttpServer, FakeSmtpServer, Mail, Recorded, Reply
from tests.llm_fakes import Call, FakeProviders, error, ok
from tests.llm_fakes import Reply as LlmReply

Mode = Literal["answer", "upstream-timeout", "gateway-timeout", "silent"]
"""How a workflow answers its trigger: calls the value back; reports its source's timeout
to /api/kpi-error; answers 504 to the trigger itself; or never calls back at all."""

CALLBACK_PATIENCE_S = 60.0  # n8n's "Retry On Fail", stretched over a restart of serve


@dataclass
class Callback:
    """One callback a workflow made (retried until serve answered other than 5xx)."""

    trace_id: str
    kpi_id: str
    route: str
    body: dict[str, Any]
    status: int | None = None
    attempts: int = 0

    @property
    def accepted(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class FakeN8n:
    """n8n's webhooks, one per KPI (`/webhook/{kpiId}`): answers each trigger as `modes`
    says (default: the value in `values` is called back to `api_url`)."""

    def __init__(self, ingestion_key: str) -> None:
        self.ingestion_key = ingestion_key
        self.api_url = ""
        self.modes: dict[str, Mode] = {}
        self.values: dict[str, float] = {}
        self.triggers: list[dict[str, Any]] = []
        self.callbacks: list[Callback] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                status = fake._triggered(body)
                answer = b'{"message":"Workflow was started"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((HOST, 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def webhook_url(self, kpi_id: str) -> str:
        return f"http://{HOST}:{self._server.server_address[1]}/webhook/{kpi_id}"

    def _triggered(self, trigger: dict[str, Any]) -> int:
        kpi_id = str(trigger["kpiId"])
        with self._lock:
            self.triggers.append(trigger)
            mode = self.modes.get(kpi_id, "answer")
            value = self.values.get(kpi_id, 1.0)
        if mode == "gateway-timeout":
            return 504
        if mode == "silent":
            return 200
        common = {"traceId": trigger["traceId"], "kpiId": kpi_id,
                  "timestamp": trigger["timestamp"]}
        if mode == "answer":
            callback = Callback(trigger["traceId"], kpi_id, "/api/kpi-data", {
                **common, "kpiType": trigger["kpiType"], "data": {"value": value},
                "metadata": {"workflowId": f"wf-{kpi_id}"}})
        else:
            callback = Callback(trigger["traceId"], kpi_id, "/api/kpi-error", {
                **common, "component": "HTTP Request", "workflowId": f"wf-{kpi_id}",
                "executionId": str(len(self.triggers)), "retryCount": 2,
                "error": {"name": "NodeApiError", "code": "ECONNABORTED",
                          "message": "timeout of 3000ms exceeded"}})
        thread = threading.Thread(target=self._call_back, args=(callback,), daemon=True)
        with self._lock:
            self.callbacks.append(callback)
            self._threads.append(thread)
        thread.start()
        return 200

    def _call_back(self, callback: Callback) -> None:
        deadline = time.monotonic() + CALLBACK_PATIENCE_S
        with httpx.Client(timeout=5) as http:
            while not self._closing.is_set() and time.monotonic() < deadline:
                callback.attempts += 1
                try:
                    answer = http.post(self.api_url + callback.route, json=callback.body,
                                       headers={"X-API-Key": self.ingestion_key})
                except httpx.HTTPError:  # serve is down or restarting: try again
                    self._closing.wait(0.2)
                    continue
                if answer.status_code >= 500 or answer.status_code == 429:
                    self._closing.wait(0.2)
                    continue
                callback.status = answer.status_code
                return

    def accepted(self, trace_id: str) -> dict[str, float]:
        """The values serve took for the job, by KPI."""
        with self._lock:
            return {c.kpi_id: float(c.body["data"]["value"]) for c in self.callbacks
                    if c.trace_id == trace_id and c.route == "/api/kpi-data" and c.accepted}

    def triggered(self, trace_id: str) -> set[str]:
        with self._lock:
            return {str(t["kpiId"]) for t in self.triggers if t["traceId"] == trace_id}

    def of(self, trace_id: str) -> list[Callback]:
        with self._lock:
            return [c for c in self.callbacks if c.trace_id == trace_id]

    def wait_idle(self, seconds: float) -> bool:
        """Wait for every callback under way to finish; False if some still retry."""
        deadline = time.monotonic() + seconds
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in threads)

    def close(self) -> None:
        self._closing.set()
        self.wait_idle(10)
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


class WebhookSink:
    """A webhook receiver: the next `failures[path]` requests to a path answer 503, the
    rest 200; every request is kept with the status it got."""

    def __init__(self) -> None:
        self.failures: dict[str, int] = {}
        self.answered: list[tuple[Recorded, int]] = []
        self._lock = threading.Lock()
        self.server = FakeHttpServer(self._respond).start()

    @property
    def url(self) -> str:
        return self.server.url

    def _respond(self, request: Recorded) -> Reply:
        with self._lock:
            left = self.failures.get(request.path, 0)
            if left:
                self.failures[request.path] = left - 1
            status = 503 if left else 200
            self.answered.append((request, status))
        return Reply(status, "Service Unavailable" if left else "ok")

    def received(self, webhook_id: str) -> list[tuple[Recorded, int]]:
        with self._lock:
            return [(r, s) for r, s in self.answered if r.headers.get("webhook-id") == webhook_id]

    def close(self) -> None:
        self.server.stop()


class FlakySmtp:
    """An SMTP server that refuses connections (its port held, not listening) until
    `up()` starts the fake server on that port."""

    def __init__(self) -> None:
        self._hold: socket.socket | None = socket.socket()
        self._hold.bind((HOST, 0))
        self.port: int = self._hold.getsockname()[1]
        self.server: FakeSmtpServer | None = None

    def up(self) -> None:
        if self._hold is not None:
            self._hold.close()
            self._hold = None
        self.server = FakeSmtpServer(port=self.port).__enter__()

    def url(self, to: str) -> str:
        return (f"mailto://{HOST}:{self.port}/?to={to}&from=reports@example.com"
                "&starttls=no")

    def mails(self, message_id: str) -> list[Mail]:
        if self.server is None:
            return []
        return [m for m in list(self.server.mails)
                if m.message["X-Metric-Stream-Id"] == message_id]

    def close(self) -> None:
        if self.server is not None:
            self.server.__exit__(None, None, None)
        if self._hold is not None:
            self._hold.close()


@dataclass
class FlakyLlm:
    """Anthropic's API answering 500 to about half the calls, decided by (seed, cycle,
    chain, step, attempt) so that a seed replays the same failures whatever the order of
    the calls. `outcomes` keeps each chain's calls in order (chain: KPI id or
    "consolidated")."""

    seed: int
    cycle: int = 0
    outcomes: dict[str, list[int]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def respond(self, call: Call) -> LlmReply:
        chain = call.kpi_id or "consolidated"
        with self._lock:
            calls = self.outcomes.setdefault(chain, [])
            draw = random.Random(f"{self.seed}:{self.cycle}:{chain}:{call.step}:{len(calls)}")
            status = 500 if draw.random() < 0.5 else 200
            calls.append(status)
        if status == 500:
            return error("anthropic", 500, "Internal server error")
        return ok("anthropic", f"Reading of {chain}.")

    def next_cycle(self, cycle: int) -> None:
        with self._lock:
            self.cycle = cycle
            self.outcomes = {}

    def failed_chains(self) -> set[str]:
        """The chains whose last call failed: those the job must report failed."""
        with self._lock:
            return {chain for chain, calls in self.outcomes.items() if calls[-1] == 500}


@contextmanager
def flaky_llm(seed: int) -> Iterator[tuple[FakeProviders, FlakyLlm]]:
    llm = FlakyLlm(seed)
    with FakeProviders(llm.respond) as fake:
        yield fake, llm


# ---------------------------------------------------------------- serve's processes
def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def http_workers(pid: int) -> list[int]:
    """uvicorn's HTTP worker processes under `serve` (not multiprocessing's tracker)."""
    workers = []
    for child in children(pid):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in command:
            workers.append(child)
    return workers


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class Drained:
    """A started `serve` whose output is read as it comes (a full pipe would block it)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> list[int]:
        """SIGKILL serve; its HTTP workers (which get SIGTERM when it dies) are returned."""
        workers = http_workers(self.pid)
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)
        return workers

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)
        self._reader.join(10)  # the killed serve's HTTP workers may hold the pipe a while
        if not self._reader.is_alive() and self.process.stdout is not None:
            self.process.stdout.close()
        return "".join(self.lines)


__all__ = ["Callback", "Drained", "FakeN8n", "FlakyLlm", "FlakySmtp", "Mode", "WebhookSink",
           "alive", "children", "flaky_llm", "http_workers"]

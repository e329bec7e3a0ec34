"""The n8n exports (n8n/*.json) in a real n8n 1.x: each workflow, triggered the way the
scheduler triggers it, fetches its source (a local server replaying recorded answers),
and its value arrives through `metric-stream serve`'s ingestion API with the source's
own timestamp; a failing source reaches `/api/kpi-error` and fails its KPI in the job.

n8n comes from ../shared/tools/n8n-local (`n8n-local install`, once per machine); the
test skips, saying so, where it is not installed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from metric_stream.bootstrap import Services, build_services
from metric_stream.models.job import Job, KpiState, KpiStatus
from metric_stream.models.kpi import KpiDefinition, N8nSource
from metric_stream.models.wire import KpiTrigger, MultiKpiTrigger
from metric_stream.settings import Settings

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
N8N_LOCAL = Path(__file__).resolve().parents[3] / "shared" / "tools" / "n8n-local"
EXPORTS = sorted((REPO / "n8n").glob("*.json"))
RECORDED = Path(__file__).resolve().parent / "n8n_recorded"
SOURCES: list[dict[str, Any]] = json.loads((RECORDED / "sources.json").read_text())["sources"]
INGESTION_KEY = "n8n-test-ingestion-key"
CMC_KEY = "n8n-test-cmc-key"
SETTLE_TIMEOUT_S = 60.0
# how n8n-local runs n8n; the credential import below runs the same binary the same way
# (N8N_RUNNERS_ENABLED=true runs the Code nodes in n8n's task runner instead)
N8N_ENV = {"N8N_DIAGNOSTICS_ENABLED": "false", "N8N_VERSION_NOTIFICATIONS_ENABLED": "false",
           "N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS": "false",
           "N8N_RUNNERS_ENABLED": os.environ.get("N8N_RUNNERS_ENABLED", "false")}


# -- a local stand-in for the sources ---------------------------------------------------


@dataclass
class RecordedSources:
    """Answers each source route with its recorded JSON, or with what a test puts in
    `overrides` (status, body); remembers every request (path with query, headers)."""

    routes: dict[str, bytes]
    overrides: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        route = path.split("?", 1)[0]
        with self.lock:
            self.requests.append((path, headers))
            if route in self.overrides:
                return self.overrides[route]
        if route in self.routes:
            return 200, self.routes[route]
        return 404, b'{"error": "no recorded answer for this path"}'

    def hits(self, route: str) -> list[tuple[str, dict[str, str]]]:
        with self.lock:
            return [r for r in self.requests if r[0].split("?", 1)[0] == route]


def serve_recorded(sources: RecordedSources) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = sources.answer(self.path, dict(self.headers.items()))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# -- processes ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def n8n_status() -> str:
    if not N8N_LOCAL.is_file():
        pytest.skip(f"n8n is not available: {N8N_LOCAL} (shared/tools/n8n-local) is missing")
    done = subprocess.run(["bash", str(N8N_LOCAL), "status"], capture_output=True, text=True,
                          timeout=60, check=False)
    if done.stdout.startswith("not installed"):
        pytest.skip(f"n8n is not installed ({N8N_LOCAL.name} status: "
                    f"{done.stdout.splitlines()[0]}); install it once with: "
                    f"bash {N8N_LOCAL} install")
    return done.stdout


def n8n_local(*args: str, env: dict[str, str], timeout: float = 180) -> str:
    done = subprocess.run(["bash", str(N8N_LOCAL), *args], capture_output=True, text=True,
                          env=env, timeout=timeout, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"n8n-local {args[0]} failed ({done.returncode}):\n{output}"
    return output


def n8n_pids(user_folder: Path) -> list[int]:
    """The `n8n start` processes that use this data folder. n8n-local keeps one pid file
    (and one log) per install, which another run on the machine may overwrite; the data
    folder, unique per run, says which n8n is ours."""
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if (b"start" in cmdline and any(part.endswith(b"/n8n") for part in cmdline)
                and f"N8N_USER_FOLDER={user_folder}".encode() in environ):
            pids.append(int(proc.name))
    return pids


def stop_n8n(n8n_dir: Path, user_folder: Path, env: dict[str, str]) -> None:
    """Stop our n8n: through n8n-local while its pid file names ours, else ourselves."""
    pid_file = n8n_dir / "n8n.pid"
    ours = n8n_pids(user_folder)
    no_proc = not Path("/proc/self/environ").exists()  # then only n8n-local can tell
    if no_proc or (pid_file.exists() and pid_file.read_text().strip() in map(str, ours)):
        subprocess.run(["bash", str(N8N_LOCAL), "stop"], env=env, timeout=60, check=False,
                       capture_output=True)

    def send(sig: signal.Signals) -> None:
        for pid in n8n_pids(user_folder):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, sig)  # n8n-local starts n8n with setsid: its own group

    send(signal.SIGTERM)
    deadline = time.monotonic() + 30
    while n8n_pids(user_folder) and time.monotonic() < deadline:
        time.sleep(0.5)
    send(signal.SIGKILL)


def import_credentials(n8n_bin: Path, folder: Path, env: dict[str, str]) -> None:
    """The two Header Auth credentials the exports refer to, with the exports' ids."""
    refs = {ref["id"]: ref["name"] for path in EXPORTS
            for node in json.loads(path.read_text())["nodes"]
            for ref in node.get("credentials", {}).values()}
    headers = {"metric-stream ingestion key": ("X-API-Key", INGESTION_KEY),
               "CoinMarketCap API key": ("X-CMC_PRO_API_KEY", CMC_KEY)}
    assert sorted(refs.values()) == sorted(headers)
    credentials = [{"id": cred_id, "name": name, "type": "httpHeaderAuth",
                    "data": {"name": headers[name][0], "value": headers[name][1]}}
                   for cred_id, name in refs.items()]
    file = folder / "credentials.json"
    file.write_text(json.dumps(credentials))
    done = subprocess.run([str(n8n_bin), "import:credentials", f"--input={file}"], env=env,
                          capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0 and "Successfully imported 2 credentials" in done.stdout, (
        done.stdout + done.stderr)
    file.unlink()


def wait_until(ready: Callable[[], bool], timeout: float, what: str,
               details: Callable[[], str] = lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{details()}")


def webhook_registered(url: str) -> bool:
    """Whether n8n has registered the (POST) webhook: it then answers a GET with a 404
    that points to POST (before that, "not registered", or Express's "Cannot GET")."""
    try:
        return "make a POST request" in httpx.get(url, timeout=2).text
    except httpx.HTTPError:
        return False


def api_healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


# -- the environment: recorded sources, metric-stream serve, n8n with every export -----


@dataclass
class Stack:
    services: Services
    definitions: dict[str, KpiDefinition]
    sources: RecordedSources
    diagnostics: Callable[[], str]


def workflow_id(src: dict[str, Any]) -> str:
    export: dict[str, Any] = json.loads((REPO / "n8n" / src["export"]).read_text())
    return str(export["id"])


def registry_entries(n8n_url: str) -> list[dict[str, Any]]:
    """The registry entry of each source's KPI(s), pointing at its workflow's webhook."""
    entries = []
    for src in SOURCES:
        export = json.loads((REPO / "n8n" / src["export"]).read_text())
        [hook] = [n for n in export["nodes"] if n["type"] == "n8n-nodes-base.webhook"]
        entries.append({**src["kpi"], "source": {
            "kind": "n8n", "webhookUrl": f"{n8n_url}/webhook/{hook['parameters']['path']}",
            "workflowId": workflow_id(src)}})
    return entries


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    status = n8n_status()
    n8n_dir = Path(status.split(" in ", 1)[1].splitlines()[0].strip())
    tmp = tmp_path_factory.mktemp("n8n-workflows")
    home, n8n_folder = tmp / "home", tmp / "n8n"
    n8n_folder.mkdir()
    base_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("METRIC_STREAM_", "N8N_"))}
    n8n_env = {**base_env, **N8N_ENV, "N8N_USER_FOLDER": str(n8n_folder)}
    if "N8N_PEER_DIR" in os.environ:
        n8n_env["N8N_PEER_DIR"] = os.environ["N8N_PEER_DIR"]

    sources = RecordedSources({src["route"]: (RECORDED / src["recorded"]).read_bytes()
                               for src in SOURCES})
    recorded_server = serve_recorded(sources)
    recorded_url = f"http://127.0.0.1:{recorded_server.server_address[1]}"
    api_url = f"http://127.0.0.1:{free_port()}"
    n8n_port = free_port()
    n8n_url = f"http://127.0.0.1:{n8n_port}"

    seed = tmp / "kpis.json"
    seed.write_text(json.dumps(registry_entries(n8n_url)))
    ms_env = {**base_env, "METRIC_STREAM_HOME": str(home),
              "METRIC_STREAM_INGESTION_KEY": INGESTION_KEY}
    cli = [sys.executable, "-m", "metric_stream.cli.main"]
    subprocess.run([*cli, "--home", str(home), "init", "--seed", str(seed)], env=ms_env,
                   check=True, capture_output=True, timeout=60)

    serve_log = (tmp / "serve.log").open("w")
    serve = subprocess.Popen([*cli, "serve", "--port", api_url.rsplit(":", 1)[1]],
                             env=ms_env, stdout=serve_log, stderr=subprocess.STDOUT)
    n8n_started = False

    def diagnostics() -> str:
        log = n8n_dir / "n8n.log"
        executions = subprocess.run(["bash", str(N8N_LOCAL), "executions", "10"], env=n8n_env,
                                    capture_output=True, text=True, timeout=60, check=False)
        return ("\n--- n8n executions (id status workflow error):\n" + executions.stdout
                + "\n--- n8n.log (tail; the log of the latest n8n-local start on this machine):\n"
                + (log.read_text(errors="replace")[-3000:] if log.exists() else "(none)")
                + "\n--- serve.log (tail):\n"
                + (tmp / "serve.log").read_text(errors="replace")[-3000:])

    try:
        wait_until(lambda: api_healthy(api_url), 30, "metric-stream serve")
        import_credentials(n8n_dir / "node_modules" / ".bin" / "n8n", n8n_folder, n8n_env)
        n8n_local("import", *map(str, EXPORTS), env=n8n_env)
        start_env = {**n8n_env, "METRIC_STREAM_API_URL": api_url,
                     **{src["env"]: recorded_url + src["basePath"] for src in SOURCES}}
        n8n_started = True
        n8n_local("start", str(n8n_port), env=start_env)
        # n8n-local's readiness check reads the log of whichever run started last: check
        # ourselves that our n8n registered every webhook
        for entry in registry_entries(n8n_url):
            hook = entry["source"]["webhookUrl"]
            wait_until(partial(webhook_registered, hook), 60, f"n8n to register {hook}",
                       diagnostics)
        yield Stack(
            services=build_services(Settings(backend="embedded", home=home)),
            definitions={d["id"]: KpiDefinition.model_validate(d)
                         for d in registry_entries(n8n_url)},
            sources=sources,
            diagnostics=diagnostics,
        )
    finally:
        if n8n_started:
            stop_n8n(n8n_dir, n8n_folder, n8n_env)
        serve.terminate()
        try:
            serve.wait(timeout=20)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait()
        serve_log.close()
        recorded_server.shutdown()
        recorded_server.server_close()


# -- triggering, the way the scheduler does ----------------------------------------------


def trigger(stack: Stack, definition: KpiDefinition, trace_id: str) -> None:
    """Create the job and POST the KPI's trigger to its webhook."""
    now = datetime.now(UTC)
    stack.services.jobs.create(Job(trace_id=trace_id, kpi_ids=definition.yields,
                                   created_at=now))
    common = {"trace_id": trace_id, "timestamp": now, "kpi_type": definition.kpi_type}
    body = (MultiKpiTrigger(kpi_ids=definition.kpi_ids, **common) if definition.kpi_ids
            else KpiTrigger(kpi_id=definition.id, **common))
    assert isinstance(definition.source, N8nSource)
    answer = httpx.post(definition.source.webhook_url, json=body.to_wire(), timeout=10)
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"status": "accepted"}


def settled(stack: Stack, trace_ids: list[str]) -> dict[str, dict[str, KpiState]]:
    """Each job's KPI states once every KPI of every job has settled."""
    def done() -> bool:
        jobs = [stack.services.jobs.require(t) for t in trace_ids]
        return all(job.settled for job in jobs)

    wait_until(done, SETTLE_TIMEOUT_S, f"the jobs {trace_ids} to settle", stack.diagnostics)
    return {t: {k: stack.services.jobs.require(t).state_of(k)
                for k in stack.services.jobs.require(t).kpi_ids} for t in trace_ids}


def test_every_workflow_delivers_its_source_value_with_the_source_timestamp(
    stack: Stack,
) -> None:
    run = datetime.now(UTC).strftime("%H%M%S")
    traces = {src["kpi"]["id"]: f"trace_n8n_{run}_{src['kpi']['id']}" for src in SOURCES}
    for src in SOURCES:
        trigger(stack, stack.definitions[src["kpi"]["id"]], traces[src["kpi"]["id"]])
    states = settled(stack, list(traces.values()))

    for src in SOURCES:
        trace_id = traces[src["kpi"]["id"]]
        expected_at = datetime.fromisoformat(src["expected"]["timestamp"])
        for kpi_id, value in src["expected"]["values"].items():
            state = states[trace_id][kpi_id]
            assert state.status is KpiStatus.COLLECTED, (
                f"{src['export']}: {kpi_id} is {state.status}: {state.error}{stack.diagnostics()}")
            [point] = stack.services.timeseries.points(kpi_id)
            assert (point.value, point.timestamp) == (value, expected_at), src["export"]
            assert point.trace_id == trace_id
            assert point.source == "n8n"
            package = stack.services.packages.get(trace_id, kpi_id)
            assert package is not None
            assert package.metadata["workflowId"] == workflow_id(src)

    # the sources were asked as the exports say, the CoinMarketCap key from its credential
    [(path, _)] = stack.sources.hits("/coingecko/simple/price")
    assert "ids=bitcoin" in path and "include_last_updated_at=true" in path
    [(_, cmc_headers)] = stack.sources.hits("/cmc/v1/global-metrics/quotes/latest")
    assert {k.lower(): v for k, v in cmc_headers.items()}["x-cmc_pro_api_key"] == CMC_KEY
    # the Fear & Greed point keeps the classification as point metadata
    [fng] = stack.services.timeseries.points("fear-greed-index")
    assert fng.metadata == {"classification": "Fear"}


def test_failing_sources_are_reported_to_kpi_error(stack: Stack) -> None:
    stack.sources.overrides["/alternative-me/fng/"] = (
        500, b'{"error": "upstream unavailable"}')
    stack.sources.overrides["/coingecko/simple/price"] = (
        200, b'{"error_code": 429, "status": {"error_message": "rate limited"}}')
    try:
        tried_before = len(stack.sources.hits("/alternative-me/fng/"))
        points_before = {k: len(stack.services.timeseries.points(k))
                         for k in ("fear-greed-index", "btc-price-usd")}
        run = datetime.now(UTC).strftime("%H%M%S")
        fng_trace, cg_trace = f"trace_n8n_{run}_fng_down", f"trace_n8n_{run}_cg_garbled"
        trigger(stack, stack.definitions["fear-greed-index"], fng_trace)
        trigger(stack, stack.definitions["btc-price-usd"], cg_trace)
        states = settled(stack, [fng_trace, cg_trace])
    finally:
        stack.sources.overrides.clear()

    fng = states[fng_trace]["fear-greed-index"]
    assert fng.status is KpiStatus.FAILED, stack.diagnostics()
    assert fng.error is not None and fng.detail is not None
    assert fng.error["node"] == "Fetch Fear & Greed"
    assert fng.error["status"] == 500
    assert fng.error["message"].startswith("Fetch Fear & Greed: 500")
    assert "upstream unavailable" in fng.error["message"]
    assert fng.detail["workflowId"] == "ms-fear-greed"
    assert fng.detail["executionId"]
    assert fng.detail["component"] == "n8n: metric-stream: Fear & Greed index"
    # retried as the export says (maxTries 4) before giving up
    assert len(stack.sources.hits("/alternative-me/fng/")) - tried_before == 4

    garbled = states[cg_trace]["btc-price-usd"]
    assert garbled.status is KpiStatus.FAILED, stack.diagnostics()
    assert garbled.error is not None
    assert garbled.error["node"] == "Format result"
    assert garbled.error["message"].startswith("Format result: CoinGecko has no quote for bitcoin")

    # nothing was stored for either
    assert {k: len(stack.services.timeseries.points(k))
            for k in ("fear-greed-index", "btc-price-usd")} == points_before

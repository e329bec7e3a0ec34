"""Admin API: n8n workflow control, against a local fake that speaks n8n's routes
(`POST /api/v1/workflows/{id}/activate|deactivate`, `X-N8N-API-KEY`)."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from metric_stream.api.app import build_api
from metric_stream.bootstrap import Services
from metric_stream.clock import ManualClock
from metric_stream.models import KpiDefinition, N8nSource
from metric_stream.services.cycle import plan_fan_out
from tests.api.conftest import ADMIN_KEY, Client
from tests.api.test_admin_registry import admin
from tests.conftest import make_services

N8N_KEY = "n8n-api-key-for-tests"
_ROUTE = re.compile(r"^/api/v1/workflows/([^/]+)/(activate|deactivate)$")


@dataclass
class FakeN8n:
    url: str
    workflows: dict[str, bool]
    calls: list[tuple[str, str]] = field(default_factory=list)


def _handler(state: FakeN8n) -> type[BaseHTTPRequestHandler]:
    class N8nApi(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.headers.get("X-N8N-API-KEY") != N8N_KEY:
                return self._answer(401, {"message": "unauthorized"})
            match = _ROUTE.match(self.path)
            if match is None:
                return self._answer(404, {"message": "not found"})
            workflow_id, verb = match.groups()
            state.calls.append((workflow_id, verb))
            if workflow_id == "broken":
                return self._answer(500, {"message": "Workflow could not be activated: "
                                                     "no trigger node"})
            if workflow_id not in state.workflows:
                return self._answer(404, {"message": "Not Found"})
            state.workflows[workflow_id] = verb == "activate"
            return self._answer(200, {"id": workflow_id, "name": f"wf {workflow_id}",
                                      "active": state.workflows[workflow_id]})

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return N8nApi


@pytest.fixture
def n8n() -> Iterator[FakeN8n]:
    state = FakeN8n("", {"wf-cmc": False, "wf-cbbi": True, "broken": False})
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


def n8n_kpi(kpi_id: str, workflow_id: str, *, active: bool = True) -> KpiDefinition:
    return KpiDefinition(id=kpi_id, name=kpi_id, kpi_type="price", active=active,
                         source=N8nSource(webhook_url=f"http://127.0.0.1:9/webhook/{kpi_id}",
                                          workflow_id=workflow_id))


@pytest.fixture
def wired(n8n: FakeN8n, tmp_path: Path, clock: ManualClock) -> tuple[Client, Services]:
    services = make_services("embedded", tmp_path, clock, admin_key=ADMIN_KEY,
                             n8n_api_url=n8n.url + "/", n8n_api_key=N8N_KEY)
    for entry in (n8n_kpi("cmc-dominance", "wf-cmc"), n8n_kpi("cmc-total", "wf-cmc"),
                  n8n_kpi("cmc-off", "wf-cmc", active=False), n8n_kpi("cbbi", "wf-cbbi")):
        services.registry.kpis.create(entry)
    return Client(build_api(services)), services


def active_ids(services: Services) -> list[str]:
    return sorted(plan_fan_out(services.registry.kpis.all()).kpi_ids)


def test_start_activates_the_workflow(wired: tuple[Client, Services], n8n: FakeN8n) -> None:
    client, _ = wired
    status, answer = admin(client, "POST", "/api/workflows/wf-cmc/start")
    assert status == 200, answer
    assert answer == {"workflowId": "wf-cmc", "action": "start", "active": True,
                      "kpisChanged": []}
    assert n8n.calls == [("wf-cmc", "activate")] and n8n.workflows["wf-cmc"] is True


def test_stop_deactivates_and_leaves_the_kpis_active(wired: tuple[Client, Services],
                                                     n8n: FakeN8n) -> None:
    client, services = wired
    status, answer = admin(client, "POST", "/api/workflows/wf-cbbi/stop")
    assert status == 200 and answer["active"] is False and answer["kpisChanged"] == []
    assert n8n.calls == [("wf-cbbi", "deactivate")] and n8n.workflows["wf-cbbi"] is False
    assert active_ids(services) == ["cbbi", "cmc-dominance", "cmc-total"]


def test_pause_skips_the_kpis_until_start(wired: tuple[Client, Services], n8n: FakeN8n,
                                          clock: ManualClock) -> None:
    client, services = wired
    n8n.workflows["wf-cmc"] = True
    clock.advance(60)
    status, answer = admin(client, "POST", "/api/workflows/wf-cmc/pause")
    assert status == 200
    assert answer["active"] is False and answer["kpisChanged"] == ["cmc-dominance", "cmc-total"]
    assert n8n.workflows["wf-cmc"] is False
    assert active_ids(services) == ["cbbi"]  # jobs skip the paused KPIs
    paused = services.registry.kpis.require("cmc-total")
    assert paused.metadata["pausedByWorkflow"] == "wf-cmc"
    assert paused.updated_at == clock.now()

    status, answer = admin(client, "POST", "/api/workflows/wf-cmc/start")
    assert status == 200 and answer["kpisChanged"] == ["cmc-dominance", "cmc-total"]
    assert active_ids(services) == ["cbbi", "cmc-dominance", "cmc-total"]
    assert "pausedByWorkflow" not in services.registry.kpis.require("cmc-total").metadata
    assert services.registry.kpis.require("cmc-off").active is False  # the operator's choice
    assert n8n.calls == [("wf-cmc", "deactivate"), ("wf-cmc", "activate")]


def test_unknown_workflows_and_n8n_failures(wired: tuple[Client, Services], n8n: FakeN8n) -> None:
    client, services = wired
    status, error = admin(client, "POST", "/api/workflows/wf-ghost/pause")
    assert status == 404 and "wf-ghost" in error["error"]["message"]
    assert "n8n answered 404" in error["error"]["message"]
    status, error = admin(client, "POST", "/api/workflows/broken/pause")
    assert status == 502 and error["error"]["code"] == "upstream_error"
    assert "500" in error["error"]["message"] and "no trigger node" in error["error"]["message"]
    assert active_ids(services) == ["cbbi", "cmc-dominance", "cmc-total"]  # nothing changed
    status, error = admin(client, "POST", "/api/workflows/-bad/start")
    assert status == 422 and error["error"]["field"] == "id"
    assert admin(client, "GET", "/api/workflows/wf-cmc/start")[0] == 405


def test_a_wrong_n8n_key_or_no_n8n_is_a_502(n8n: FakeN8n, tmp_path: Path,
                                            clock: ManualClock) -> None:
    wrong_key = make_services("embedded", tmp_path / "a", clock, admin_key=ADMIN_KEY,
                              n8n_api_url=n8n.url, n8n_api_key="not-the-key")
    status, error = admin(Client(build_api(wrong_key)), "POST", "/api/workflows/wf-cmc/start")
    assert status == 502 and "401" in error["error"]["message"]
    assert "not-the-key" not in error["error"]["message"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    down = make_services("embedded", tmp_path / "b", clock, admin_key=ADMIN_KEY,
                         n8n_api_url=f"http://127.0.0.1:{closed}/api/v1", n8n_api_key=N8N_KEY)
    status, error = admin(Client(build_api(down)), "POST", "/api/workflows/wf-cmc/start")
    assert status == 502 and "did not answer" in error["error"]["message"]
    assert n8n.calls == []


def test_without_n8n_settings_the_answer_is_503(client: Client) -> None:
    status, error = admin(client, "POST", "/api/workflows/wf-cmc/stop")
    assert status == 503 and error["error"]["code"] == "unavailable"
    assert "METRIC_STREAM_N8N_API_URL" in error["error"]["message"]

"""The Workflows screen: the n8n KPIs of the registry, and start / stop / pause against a
fake n8n on 127.0.0.1 (its public API's activate and deactivate routes, as n8n answers
them), the API's own error when n8n is not configured, and the empty registry."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from textual.widgets import Static

from metric_stream.bootstrap import build_services
from metric_stream.clock import ManualClock
from metric_stream.models import KpiDefinition, N8nSource
from metric_stream.services.runner import prepare_demo
from metric_stream.settings import Settings
from metric_stream_tui.client import LocalClient
from metric_stream_tui.modals import ConfirmModal
from metric_stream_tui.screens.workflows import WorkflowsScreen
from tests.tui.conftest import NOW, Console, local_console, notes, screen_of, select, settle

pytestmark = pytest.mark.anyio
WORKFLOW = "ms-fear-greed"
API_KEY = "n8n-test-key"


@dataclass
class FakeN8n:
    """n8n's `POST /api/v1/workflows/{id}/activate|deactivate`: known workflows answer
    the workflow with its new `active`, others 404 as n8n does."""

    url: str = ""
    workflows: dict[str, bool] = field(default_factory=lambda: {WORKFLOW: True})
    calls: list[str] = field(default_factory=list)


@pytest.fixture
def n8n() -> Iterator[FakeN8n]:
    fake = FakeN8n()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            fake.calls.append(self.path)
            parts = self.path.strip("/").split("/")  # api v1 workflows {id} {verb}
            workflow, verb = parts[3], parts[4]
            if self.headers.get("X-N8N-API-KEY") != API_KEY:
                self.answer(401, {"message": "unauthorized"})
            elif workflow not in fake.workflows:
                self.answer(404, {"message": "Not Found"})
            else:
                fake.workflows[workflow] = verb == "activate"
                self.answer(200, {"id": workflow, "active": fake.workflows[workflow]})

        def answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()
    thread.join()


def n8n_console(n8n_url: str | None) -> Console:
    """The demo registry plus two KPIs fed by one n8n workflow (and, with `n8n_url`,
    the API configured to control n8n there)."""
    clock = ManualClock(NOW)
    settings = Settings(backend="embedded", home=Path("home"), n8n_api_url=n8n_url,
                        n8n_api_key=SecretStr(API_KEY) if n8n_url else None)
    services = build_services(settings, clock=clock)
    services.init()
    prepare_demo(services)
    for kpi_id, name in (("fear-greed-index", "Fear & Greed"),
                         ("fear-greed-class", "Fear & Greed class")):
        services.registry.kpis.create(KpiDefinition(
            id=kpi_id, name=name, kpi_type="index", source=N8nSource(
                webhook_url="https://n8n:s3cret@n8n.example.com/webhook/fear-greed",
                workflow_id=WORKFLOW)).stamped(NOW))
    services.registry.kpis.create(KpiDefinition(
        id="unlinked", name="No workflow id", kpi_type="index",
        source=N8nSource(webhook_url="https://n8n.example.com/webhook/other")).stamped(NOW))
    return Console(services, LocalClient(settings, clock=clock, services=services), clock)


async def test_lists_the_n8n_kpis(n8n: FakeN8n) -> None:
    console = n8n_console(n8n.url)
    async with console.run(start="workflows") as (app, pilot):
        screen = screen_of(app, WorkflowsScreen)
        assert sorted(r["id"] for r in screen.rows) == [
            "fear-greed-class", "fear-greed-index", "unlinked"]
        row = [str(c) for c in screen.table.get_row("fear-greed-index")]
        assert row[:4] == [WORKFLOW, "fear-greed-index", "Fear & Greed", "n8n.example.com"]
        assert "on" in row[4]
        await select(pilot, "unlinked")
        await pilot.press("s")
        assert any("names no workflow id" in n for n in notes(app))
        assert n8n.calls == []


async def test_start_stop_and_pause(n8n: FakeN8n) -> None:
    console = n8n_console(n8n.url)
    async with console.run(start="workflows") as (app, pilot):
        await select(pilot, "fear-greed-index")
        await pilot.press("x")  # stop asks first
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("n")
        assert n8n.calls == []
        await pilot.press("x", "y")
        await settle(pilot)
        assert n8n.calls == [f"/api/v1/workflows/{WORKFLOW}/deactivate"]
        assert f"Workflow {WORKFLOW} stopped (n8n: inactive)" in notes(app)
        await pilot.press("p")
        assert isinstance(app.screen, ConfirmModal)
        assert "fear-greed-class, fear-greed-index" in app.screen.question
        await pilot.press("y")
        await settle(pilot)
        assert any("KPIs made inactive: fear-greed-class, fear-greed-index" in n
                   for n in notes(app))
        assert not console.services.registry.kpis.require("fear-greed-index").active
        screen = screen_of(app, WorkflowsScreen)
        assert "off" in str(screen.table.get_row("fear-greed-index")[4])
        assert "paused" in str(screen.table.get_row("fear-greed-index")[5])
        await pilot.press("s")  # start needs no confirmation
        await settle(pilot)
        assert n8n.workflows[WORKFLOW] is True
        assert any(n.startswith(f"Workflow {WORKFLOW} started (n8n: active); KPIs made "
                                "active again") for n in notes(app))
        assert console.services.registry.kpis.require("fear-greed-index").active


async def test_an_unknown_workflow_is_n8n_s_404(n8n: FakeN8n) -> None:
    n8n.workflows.clear()
    async with n8n_console(n8n.url).run(start="workflows") as (app, pilot):
        await select(pilot, "fear-greed-index")
        await pilot.press("s")
        await settle(pilot)
        assert any(f"n8n has no workflow '{WORKFLOW}'" in n for n in notes(app))
        assert screen_of(app, WorkflowsScreen).table.row_count == 3  # still usable


async def test_n8n_not_configured_is_said() -> None:
    async with n8n_console(None).run(start="workflows") as (app, pilot):
        await select(pilot, "fear-greed-index")
        await pilot.press("s")
        await settle(pilot)
        assert any("n8n workflow control is not configured" in n for n in notes(app))


async def test_no_n8n_kpi_says_how_to_link_one() -> None:
    async with local_console().run(start="workflows") as (app, pilot):
        empty = str(screen_of(app, WorkflowsScreen).query_one("#empty", Static).render())
        assert "No KPI is fed by an n8n workflow" in empty and "workflow id" in empty
        await pilot.press("s", "x", "p")  # nothing selected: nothing happens
        assert not isinstance(app.screen, ConfirmModal)

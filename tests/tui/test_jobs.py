"""The jobs list and a job's detail: the partial job said plainly, its failed KPI's
whole error object, deliveries with attempts and last error; run now; re-deliver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from textual.widgets import DataTable

from metric_stream.models.config import DeliveryConfig, RetryPolicy
from metric_stream.models.delivery import DeliveryStatus
from metric_stream_tui.app import AdminApp
from metric_stream_tui.modals import ConfirmModal
from metric_stream_tui.screens.job_detail import JobDetailScreen
from metric_stream_tui.screens.jobs import JobsScreen
from tests.delivery_sink import Sink, running_sink
from tests.tui.conftest import (
    COMPLETE,
    FAILED,
    FAILED_KPI,
    PARTIAL,
    Console,
    screen_of,
    settle,
)

pytestmark = pytest.mark.anyio


def text(app: AdminApp, selector: str) -> str:
    return str(app.screen.query_one(selector).render())


async def test_the_list_says_partial_plainly(console: Console) -> None:
    async with console.run(start="jobs") as (app, pilot):
        table = screen_of(app, JobsScreen).table
        rows = {str(table.coordinate_to_cell_key((r, 0)).row_key.value): table.get_row_at(r)
                for r in range(table.row_count)}
        assert list(rows) == [PARTIAL, COMPLETE, FAILED]  # newest first
        assert str(rows[PARTIAL][2]) == "partial — 1 of 12 KPIs missing"
        assert str(rows[FAILED][2]) == "failed — 12 of 12 KPIs missing"
        assert str(rows[COMPLETE][2]) == "complete"
        assert str(rows[COMPLETE][4]) == "42 s"  # 41.5 s
        await pilot.press("slash", *"fail")
        assert table.row_count == 1


async def test_a_job_in_detail_and_back(console: Console) -> None:
    async with console.run(start="jobs") as (app, pilot):
        await pilot.press("enter")
        await settle(pilot)
        detail = app.screen
        assert isinstance(detail, JobDetailScreen) and detail.trace_id == PARTIAL
        head = text(app, "#head")
        assert "PARTIAL — 1 of 12 KPIs missing" in head and f"missing: {FAILED_KPI}" in head
        kpis = detail.query_one("#kpis", DataTable)
        assert kpis.coordinate_to_cell_key((0, 0)).row_key.value == FAILED_KPI  # failures first
        error = text(app, "#error")
        assert '"name": "NodeApiError"' in error and '"node": "HTTP Request"' in error
        await pilot.press("down")
        assert "has no error" in text(app, "#error")
        stages = detail.query_one("#stages", DataTable)
        assert [str(stages.get_row_at(r)[0]) for r in range(stages.row_count)] == [
            "collecting", "analysing", "packaging", "delivering"]
        deliveries = detail.query_one("#deliveries", DataTable)
        failed = [str(c) for c in deliveries.get_row("ops-hook")]
        assert failed[:4] == ["Ops webhook", "webhook", "failed", "3"]
        assert failed[5] == "503: HTTP 503: upstream maintenance until 07:00"
        assert "1 failed" in text(app, "#deliveries-title")
        assert "partial" in text(app, "#llm") and "demo-cbbi-mvrv step 2" in text(app, "#llm")
        assert f"https://reports.example.com/api/documents/{PARTIAL}" in text(app, "#report")
        await pilot.press("o")
        assert app.clipboard == f"https://reports.example.com/api/documents/{PARTIAL}"
        await pilot.press("escape")
        assert isinstance(app.screen, JobsScreen)


async def test_run_now(console: Console) -> None:
    async with console.run(start="jobs", demo=True) as (app, pilot):
        await pilot.press("n")
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("y")
        await settle(pilot)
        detail = app.screen
        assert isinstance(detail, JobDetailScreen)
        job = console.services.jobs.require(detail.trace_id)
        assert job.demo and len(job.kpi_ids) == 12
        assert detail.job is not None and detail.job["traceId"] == job.trace_id
        await pilot.press("escape")
        await settle(pilot)
        assert screen_of(app, JobsScreen).table.row_count == 4


@pytest.fixture
def sink() -> Iterator[Sink]:
    with running_sink() as running:
        yield running


async def test_redeliver_where_it_failed(console: Console, sink: Sink) -> None:
    services = console.services
    hook = services.registry.endpoints.require("ops-hook")
    services.registry.endpoints.replace(hook.model_copy(update={
        "url": sink.on("/metric-stream", status=204, body=b"")}))
    config = services.config.get()
    services.config.put(config.model_copy(update={
        "retry": config.retry.model_copy(update={"delivery": RetryPolicy(retries=0,
                                                                         delays_s=[])}),
        "delivery": DeliveryConfig(timeout_s=2, jitter=0)}), console.clock.now())
    async with console.run(start="jobs") as (app, pilot):
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmModal)
        assert "1 endpoint(s) whose last try failed" in app.screen.question
        await pilot.press("y")
        await settle(pilot)
        assert [r.path for r in sink.received] == ["/metric-stream"]
        record = services.deliveries.get(PARTIAL, "ops-hook")
        assert record is not None and record.status is DeliveryStatus.SENT
        assert str(app.screen.query_one("#deliveries", DataTable).get_row("ops-hook")[2]) \
            == "sent"

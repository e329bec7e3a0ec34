"""The dashboard: the figures of `GET /api/metrics`, recent jobs, next runs; live
refresh that pauses; drill into a job; what an empty store says."""

from __future__ import annotations

from datetime import timedelta

import pytest
from textual.widgets import DataTable, Sparkline

from metric_stream.models import Job
from metric_stream_tui.app import AdminApp
from metric_stream_tui.screens.dashboard import DashboardScreen
from metric_stream_tui.screens.job_detail import JobDetailScreen
from tests.tui.conftest import NOW, PARTIAL, Console, local_console, settle

pytestmark = pytest.mark.anyio


def card(app: AdminApp, card_id: str) -> str:
    return str(app.screen.query_one(f"#{card_id}").body.render())  # type: ignore[attr-defined]


def recent(app: AdminApp) -> DataTable[object]:
    return app.screen.query_one("#recent", DataTable)


async def test_the_figures(console: Console) -> None:
    async with console.run() as (app, _):
        assert "1 complete" in card(app, "card-jobs")
        assert "1 partial · 1 failed" in card(app, "card-jobs")
        assert "median 1 min 35 s" in card(app, "card-jobs")
        assert "36.1% missed" in card(app, "card-failures")  # 13 of 36 settled KPIs
        assert "75.0% sent" in card(app, "card-deliveries")
        assert "3 sent · 1 failed" in card(app, "card-deliveries")
        assert "median 812 ms" in card(app, "card-llm")
        assert "embedded" in card(app, "card-storage")
        assert "analysis" in card(app, "card-queues")
        assert "11-30 06:00  in 20 h 30 min" in card(app, "card-next")
        assert "daily" in card(app, "card-next")
        assert "demo-fear-greed-index" in card(app, "rates")
        assert recent(app).row_count == 3
        assert str(recent(app).get_row(PARTIAL)[2]) == "partial · 1 missing"
        assert app.screen.query_one(Sparkline).data == [301.0, 41.5, 95.2]


async def test_live_refresh_pauses(console: Console) -> None:
    def add_job(trace: str, minutes: int) -> None:
        console.services.jobs.create(Job(trace_id=trace, kpi_ids=["demo-btc-price-usd"],
                                         created_at=NOW + timedelta(minutes=minutes)))

    async with console.run(refresh_s=0.1) as (app, pilot):
        screen = app.screen
        assert isinstance(screen, DashboardScreen) and not screen.paused
        add_job("trace_live_1", 1)
        await pilot.pause(0.4)
        await settle(pilot)
        assert recent(app).row_count == 4
        assert str(recent(app).get_row("trace_live_1")[2]) == "collecting…"
        await pilot.press("p")
        assert screen.paused and "paused" in str(screen.query_one("#status").render())
        add_job("trace_live_2", 2)
        await pilot.pause(0.4)
        assert recent(app).row_count == 4
        await pilot.press("p")
        await settle(pilot)
        assert recent(app).row_count == 5
        await pilot.press("plus")
        assert screen.interval == 2.0  # the next step up from 0.1 s (and 1 s)
        await pilot.press("minus", "minus")
        assert screen.interval == 1.0  # the shortest step
        assert "every 1 s" in str(screen.query_one("#status").render())


async def test_drill_into_a_recent_job(console: Console) -> None:
    async with console.run() as (app, pilot):
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, JobDetailScreen) and app.screen.trace_id == PARTIAL
        assert app.current_mode == "dashboard"
        await pilot.press("escape")
        assert isinstance(app.screen, DashboardScreen)


async def test_an_empty_store_says_how_to_get_data() -> None:
    console = local_console(demo=False)
    async with console.run() as (app, pilot):
        hint = str(app.screen.query_one("#recent-box").border_subtitle)
        assert "metric-stream run --demo" in hint and "metric-stream tui --demo" in hint
        assert "no job yet" in card(app, "card-jobs")
        await pilot.press("2")
        await settle(pilot)
        assert "a adds a KPI" in str(app.screen.query_one("#empty").render())

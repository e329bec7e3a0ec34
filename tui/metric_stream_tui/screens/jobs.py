"""3 Jobs: the newest jobs, their status said plainly (`partial — 2 of 12 KPIs
missing`); `enter` opens one, `n` runs a job now."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.binding import Binding, BindingType
from textual.widgets import DataTable

from metric_stream_tui.format import DASH, RUNNING, duration, job_state, moment
from metric_stream_tui.modals import ConfirmModal
from metric_stream_tui.screens.base import Column, ListScreen
from metric_stream_tui.screens.job_detail import JobDetailScreen

LIMIT = 200  # the API's most


def _origin(job: dict[str, Any]) -> str:
    origin = f"schedule {job['scheduleId']}" if job.get("scheduleId") else "run now"
    return f"{origin} · demo" if job.get("demo") else origin


def _kpis(job: dict[str, Any]) -> str:
    counts = job.get("kpiCounts") or {}
    total = sum(int(v) for v in counts.values())
    return f"{counts.get('collected', 0)}/{total}"


class JobsScreen(ListScreen):
    section = "jobs"
    empty_text = ("no jobs yet — n runs one now (or `metric-stream run --demo`, then "
                  "`metric-stream tui --demo`)")

    BINDINGS: ClassVar[list[BindingType]] = [Binding("n", "run_now", "Run now")]

    def __init__(self) -> None:
        super().__init__()
        self.sort_column, self.sort_reverse = 0, True  # newest first

    def make_columns(self) -> list[Column]:
        return [
            Column("started", "Started", lambda j: moment(j.get("createdAt")),
                   sort=lambda j: str(j.get("createdAt", ""))),
            Column("trace", "Trace id", lambda j: Text(str(j.get("traceId", "")))),
            Column("status", "Status", lambda j: self.tone(
                str(j.get("status", "")), job_state(j),
                bold=j.get("status") in ("partial", "failed"))),
            Column("kpis", "KPIs", lambda j: Text(_kpis(j)),
                   sort=lambda j: (j.get("kpiCounts") or {}).get("collected", 0)),
            Column("duration", "Duration", lambda j: Text(
                duration(j.get("durationS")) if j.get("status") not in RUNNING else DASH),
                sort=lambda j: j.get("durationS") or 0.0),
            Column("origin", "Origin", lambda j: Text(_origin(j))),
        ]

    def row_key(self, row: dict[str, Any]) -> str:
        return str(row.get("traceId"))

    async def fetch(self) -> None:
        answer = await self.client.jobs(limit=LIMIT)
        self.rows = list(answer.get("jobs") or [])
        self.rerender()

    @on(DataTable.RowSelected, "#list")
    def _selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        key = self.selected_key
        if key:
            self.app.push_screen(JobDetailScreen(key))

    def action_run_now(self) -> None:
        what = "every active KPI" + (" (demo data)" if self.admin.demo else "")
        self.app.push_screen(
            ConfirmModal(f"Start a job now with {what}? Its KPIs are collected, analysed, "
                         "reported and delivered like a scheduled run.", "Run now",
                         title="Run now", danger=False),
            self.answer(self.run_now))

    @work(group="action", exit_on_error=False)
    async def run_now(self) -> None:
        answer = await self.client.run_now(demo=self.admin.demo)
        job = answer.get("job") or {}
        triggers = answer.get("triggers") or []
        refused = [t for t in triggers if not t.get("ok")]
        trace = str(job.get("traceId", "?"))
        self.notify(f"{trace}: {len(triggers) - len(refused)} KPI(s) triggered"
                    + (f", {len(refused)} could not be" if refused else ""),
                    title="Job started", severity="warning" if refused else "information")
        self.reload()
        self.app.push_screen(JobDetailScreen(trace))

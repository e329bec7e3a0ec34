"""4 Schedules: the cron schedules with their description in words and next run
(`/` filters, `s` or a header click sorts); `a` adds, `e` or `enter` edits (the next
runs shown as you type), `t` toggles active, `x` deletes after a confirmation. The line
under the list shows the highlighted schedule's next five runs."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.markup import escape
from textual.widgets import DataTable, Static

from metric_stream_tui.format import DASH, moment, relative
from metric_stream_tui.screens.base import Column, ListScreen
from metric_stream_tui.screens.schedule_form import READ_ONLY, ScheduleForm


def kpis_text(schedule: dict[str, Any]) -> str:
    kpi_ids = schedule.get("kpiIds")
    if not kpi_ids:
        return "every active KPI"
    return ", ".join(kpi_ids) if len(kpi_ids) <= 2 else f"{len(kpi_ids)} KPIs"


def next_run(schedule: dict[str, Any]) -> str:
    runs = schedule.get("nextRuns") or []
    return str(runs[0]) if runs else ""


class SchedulesScreen(ListScreen):
    section = "schedules"
    empty_text = "no schedules — a adds one (a 5-field cron expression, in UTC)"

    DEFAULT_CSS = """
    SchedulesScreen #runs { height: auto; padding: 0 1; border-top: solid $panel;
        color: $foreground-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "add", "Add"),
        Binding("e", "edit", "Edit"),
        Binding("t", "toggle_active", "On/off"),
        Binding("x,delete", "delete", "Delete", key_display="x"),
    ]

    def make_columns(self) -> list[Column]:
        return [
            Column("id", "ID", lambda s: Text(str(s.get("id", ""))), width=16),
            Column("cron", "Cron", lambda s: Text(str(s.get("cron", ""))), width=14),
            Column("description", "When", lambda s: Text(str(s.get("description", ""))),
                   width=34),
            Column("next", "Next run (UTC)", lambda s: Text(moment(next_run(s))),
                   sort=lambda s: next_run(s) or "~"),
            Column("kpis", "KPIs", lambda s: Text(kpis_text(s)), width=18),
            Column("active", "Active", lambda s: self.tone(
                "complete" if s.get("active", True) else "pending",
                "● on" if s.get("active", True) else "○ off"),
                sort=lambda s: not s.get("active", True)),
        ]

    def compose_below(self) -> ComposeResult:
        yield Static("", id="runs")

    async def fetch(self) -> None:
        answer = await self.client.schedules()
        self.rows = list(answer.get("schedules") or [])
        self.rerender()

    def rerender(self) -> None:
        super().rerender()
        self._show_runs()

    @on(DataTable.RowHighlighted, "#list")
    def _show_runs(self) -> None:
        schedule = self.selected
        line = self.query_one("#runs", Static)
        if schedule is None:
            line.update("")
            return
        upcoming = schedule.get("nextRuns") or []
        when = ("  ·  ".join(moment(r) for r in upcoming) if upcoming else
                "none: inactive" if not schedule.get("active", True) else DASH)
        name = f" ({schedule['name']})" if schedule.get("name") else ""
        soon = (f", the next {relative(upcoming[0], self.admin.clock.now())}"
                if upcoming else "")
        line.update(f"[b]{escape(str(schedule.get('id')))}[/b]{escape(name)}: "
                    f"{escape(str(schedule.get('description', '')))}{escape(soon)}\n"
                    f"[$foreground-muted]next runs (UTC):[/] {escape(when)}")

    @on(DataTable.RowSelected, "#list")
    def _selected(self) -> None:
        self.action_edit()

    # ---------------------------------------------------------------- actions
    def action_add(self) -> None:
        self.app.push_screen(ScheduleForm(), self._saved)

    def action_edit(self) -> None:
        schedule = self.selected
        if schedule is not None:
            self.app.push_screen(ScheduleForm(schedule), self._saved)

    def _saved(self, schedule: dict[str, Any] | None) -> None:
        if schedule:
            self.notify(f"{schedule.get('id')} saved: {schedule.get('description', '')}",
                        timeout=3)
            self.reload_then_select(str(schedule.get("id")))

    def action_toggle_active(self) -> None:
        schedule = self.selected
        if schedule is not None:
            self.toggle(schedule)

    @work(group="action", exit_on_error=False)
    async def toggle(self, schedule: dict[str, Any]) -> None:
        body = {k: v for k, v in schedule.items() if k not in READ_ONLY}
        body["active"] = not schedule.get("active", True)
        saved = await self.client.replace_schedule(str(schedule["id"]), body)
        schedule.clear()
        schedule.update(saved)
        self.rerender()
        self.notify(f"{saved['id']} is now {'active' if saved.get('active') else 'inactive'}",
                    timeout=3)

    def action_delete(self) -> None:
        self.confirm_delete(
            lambda schedule: (f"Delete the schedule {schedule['id']} ({schedule.get('cron')})?"
                              " No job starts from it any more; past jobs stay."),
            "Delete schedule", self.delete)

    @work(group="action", exit_on_error=False)
    async def delete(self, schedule_id: str) -> None:
        await self.client.delete_schedule(schedule_id)
        self.forget(schedule_id)

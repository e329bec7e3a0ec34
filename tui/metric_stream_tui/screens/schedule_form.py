"""Add or edit a schedule. Under the cron field, as you type: the expression in words
and its next five runs, or what is wrong with it — worked out here with the core's own
`check_cron` and `describe_cron`, so the preview says what the API will. The API still
decides on save; its error is shown under the field it names (see `ApiForm`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.widgets import Checkbox, Input, Static

from metric_stream.models.schedule import Schedule, check_cron
from metric_stream.ports import Clock
from metric_stream.services.admin import describe_cron
from metric_stream_tui.format import moment, relative
from metric_stream_tui.screens.form import ApiForm
from metric_stream_tui.widgets import FormField

READ_ONLY = ("nextRuns", "description")
PREVIEW_RUNS = 5


class ScheduleForm(ApiForm):
    """Dismissed with the saved schedule as the API answered it (None when cancelled)."""

    DEFAULT_CSS = """
    ScheduleForm #preview { height: auto; min-height: 6; padding: 0 1; margin-bottom: 1;
        border-left: outer $accent; }
    ScheduleForm #preview.-invalid { border-left: outer $error; }
    """
    field_of: ClassVar[Mapping[str, str]] = {
        "id": "id", "name": "name", "cron": "cron", "kpiIds": "kpiIds", "active": "active"}

    def compose(self) -> ComposeResult:
        entry = self.entry or {}
        with Vertical(classes="dialog-box wide") as box:
            box.border_title = f"Edit schedule {entry['id']}" if self.entry else "Add a schedule"
            yield from self.compose_top(name_hint="what it is for")
            with Horizontal(classes="row"):
                yield self.field("Cron (UTC)", "cron", entry.get("cron", "0 6 * * *"),
                                 "min hour day month weekday")
                yield FormField("Fires", Checkbox("Active", value=bool(entry.get("active", True)),
                                                  id="active", compact=True), field="active")
            yield Static("", id="preview")
            with Horizontal(classes="row"):
                yield self.field("KPIs", "kpiIds", ", ".join(entry.get("kpiIds") or []),
                                 "ids, comma separated", placeholder="every active KPI")
            yield from self.compose_buttons()

    def on_mount(self) -> None:
        self.show_preview()
        self.query_one("#name" if self.entry else "#id", Input).focus()

    @on(Input.Changed, "#cron")
    @on(Checkbox.Changed, "#active")
    def show_preview(self) -> None:
        text, valid = cron_preview(self.value("cron"), self.admin.clock,
                                   active=self.checked("active"))
        preview = self.query_one("#preview", Static)
        preview.update(text)
        preview.set_class(not valid, "-invalid")

    def body(self) -> dict[str, Any] | None:
        body = {k: v for k, v in (self.entry or {}).items() if k not in READ_ONLY}
        if self.entry is None:
            body["id"] = self.value("id")
        body["name"] = self.value("name")
        body["cron"] = self.value("cron")  # the API decides, even when the preview disagrees
        body["active"] = self.checked("active")
        kpi_ids = [k for k in re.split(r"[\s,]+", self.value("kpiIds")) if k]
        if kpi_ids:
            body["kpiIds"] = kpi_ids
        else:
            body.pop("kpiIds", None)
        return body

    async def send(self, body: dict[str, Any]) -> Any:
        if self.entry is None:
            return await self.client.create_schedule(body)
        return await self.client.replace_schedule(str(self.entry["id"]), body)


def cron_preview(expression: str, clock: Clock, *, active: bool = True) -> tuple[str, bool]:
    """Markup saying what `expression` means and when it next fires after `clock.now()`,
    or what is wrong with it; and whether it is valid."""
    try:
        cron = check_cron(expression)
    except ValueError as wrong:
        return (f"[$error]✗ {escape(str(wrong))}[/]\n[$foreground-muted]five fields: minute "
                "hour day-of-month month day-of-week, e.g. [b]0 6 * * 1-5[/b] (weekdays at "
                "06:00) or [b]*/15 * * * *[/b] (every 15 minutes)[/]"), False
    now = clock.now()
    runs = Schedule(id="preview", cron=cron).next_runs(now, PREVIEW_RUNS)
    lines = [f"[b]{escape(describe_cron(cron))}[/b]" +
             ("" if active else "  [$warning](inactive: it fires once made active)[/]")]
    lines += [f"  {moment(r.isoformat())}  [$foreground-muted]{relative(r.isoformat(), now)}[/]"
              for r in runs]
    return "\n".join(lines), True

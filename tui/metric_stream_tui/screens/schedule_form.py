"""Add or edit a schedule. Under the cron field, as you type: the expression in words
and its next five runs, or what is wrong with it — worked out here with the core's own
`check_cron` and `describe_cron`, so the preview says what the API will. The API still
decides on save; its error is shown under the field it names.

`ApiForm` is the shape both this form and the endpoint form share: fields with inline
errors, `ctrl+s` saving in a worker, a 4xx naming a field shown under it (anything else
is the app's notification), dismissed with the entry as the API answered it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.widgets import Button, Checkbox, Input, Static

from metric_stream.models.schedule import Schedule, check_cron
from metric_stream.ports import Clock
from metric_stream.services.admin import describe_cron
from metric_stream_tui.client import ClientError
from metric_stream_tui.format import moment, relative
from metric_stream_tui.screens.base import AdminModal
from metric_stream_tui.widgets import FormField

READ_ONLY = ("nextRuns", "description")
PREVIEW_RUNS = 5


class ApiForm(AdminModal[dict[str, Any]]):
    """A form saved through the API (see the module docstring). Subclasses compose their
    fields with `field()`, build the request in `body()` and send it in `send()`."""

    DEFAULT_CSS = """
    ApiForm .row { height: auto; margin-bottom: 1; }
    ApiForm .row > FormField { width: 1fr; margin-right: 2; }
    ApiForm Input, ApiForm Select { width: 1fr; }
    ApiForm Input { background: $boost; padding: 0 1; }
    ApiForm Input:focus { background: $accent 20%; }
    ApiForm #problem { color: $error; height: auto; margin-bottom: 1; }
    ApiForm #problem.-empty { display: none; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("ctrl+s", "save", "Save")]

    field_of: ClassVar[Mapping[str, str]] = {}
    """The API's field paths -> the form's fields."""

    def __init__(self, entry: Mapping[str, Any] | None = None) -> None:
        super().__init__(classes="dialog")
        self.entry = dict(entry) if entry else None

    def field(self, label: str, name: str, value: Any, hint: str = "", *,
              disabled: bool = False, placeholder: str = "") -> FormField:
        control = Input("" if value is None else str(value), id=name, compact=True,
                        disabled=disabled, placeholder=placeholder)
        return FormField(label, control, field=name, hint=hint)

    def compose_buttons(self) -> ComposeResult:
        yield Static("[$foreground-muted]ctrl+s saves · esc cancels · tab moves[/]")
        with Horizontal(classes="buttons"):
            yield Button("Cancel", id="cancel", compact=True)
            yield Button("Save", id="save", variant="primary", compact=True)

    def value(self, name: str) -> str:
        return self.query_one(f"#{name}", Input).value.strip()

    def checked(self, name: str) -> bool:
        return self.query_one(f"#{name}", Checkbox).value

    def body(self) -> dict[str, Any] | None:
        """The entry to send, or None when a field cannot even be sent (shown inline)."""
        raise NotImplementedError

    async def send(self, body: dict[str, Any]) -> Any:
        raise NotImplementedError

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#save")
    def _save_pressed(self) -> None:
        self.action_save()

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_save()

    def action_save(self) -> None:
        self.clear_errors()
        body = self.body()
        if body is not None:
            self.save(body)

    @work(exclusive=True, group="save", exit_on_error=False)
    async def save(self, body: dict[str, Any]) -> None:
        try:
            saved = await self.send(body)
        except ClientError as error:
            if error.status is None or not self.show_problems(error):
                raise  # not about a field: the app's notification says it
            return
        for warning in saved.get("warnings") or []:
            self.notify(str(warning), title="Saved, with a warning", severity="warning")
        self.dismiss(saved)

    def show_problems(self, error: ClientError) -> bool:
        """Put each reason under its field, the whole message on top; False when no
        field of the form is named."""
        shown = False
        for path, reason in error.problems():
            name = self.field_of.get(path) or self.field_of.get(path.split(".", 1)[0])
            if name is None:
                continue
            self.show_error(name, reason)
            shown = True
        if shown:
            first = next(iter(self.query(".-invalid")), None)
            if isinstance(first, FormField):
                first.control.focus()
            problem = self.query_one("#problem", Static)
            problem.update(f"{escape(error.title)}: {escape(error.message)}")
            problem.remove_class("-empty")
        return shown

    def show_error(self, name: str, message: str) -> None:
        self.query_one(f"#field-{name}", FormField).show_error(message)

    def clear_errors(self) -> None:
        for field in self.query(FormField):
            field.show_error(None)
        self.query_one("#problem", Static).add_class("-empty")


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
            yield Static("", id="problem", classes="-empty")
            with Horizontal(classes="row"):
                yield self.field("ID", "id", entry.get("id"), "letters, digits . _ -",
                                 disabled=self.entry is not None)
                yield self.field("Name", "name", entry.get("name"), "what it is for")
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

"""Add or edit a registry entry. The API validates; its error names the field (`field`
and `name: reason; unit: reason` in the message), and the form shows each reason under
its input and stays open. Fields the form does not show (indicators, chart type,
metadata, the KPI ids a multi-KPI source yields) are kept as they were."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.widgets import Button, Checkbox, Input, Select, Static

from metric_stream_tui.client import ClientError
from metric_stream_tui.screens.base import AdminModal
from metric_stream_tui.widgets import FormField

READ_ONLY = ("yields", "warnings")
# the API's field paths -> the form's fields
FIELD_OF = {
    "id": "id", "name": "name", "kpiType": "kpiType", "unit": "unit",
    "source": "kind", "source.kind": "kind", "source.collector": "collector",
    "source.params": "params", "source.webhookUrl": "webhookUrl",
    "source.workflowId": "workflowId", "analysisConfig.low": "low",
    "analysisConfig.high": "high", "analysisConfig": "low",
}


class KpiForm(AdminModal[dict[str, Any]]):
    """Dismissed with the saved entry as the API answered it (None when cancelled)."""

    DEFAULT_CSS = """
    KpiForm .row { height: auto; margin-bottom: 1; }
    KpiForm .row > FormField { width: 1fr; margin-right: 2; }
    KpiForm Input, KpiForm Select { width: 1fr; }
    KpiForm Input { background: $boost; padding: 0 1; }
    KpiForm Input:focus { background: $accent 20%; }
    KpiForm #problem { color: $error; height: auto; margin-bottom: 1; }
    KpiForm #problem.-empty { display: none; }
    KpiForm.-n8n .collector { display: none; }
    KpiForm.-collector .n8n { display: none; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("ctrl+s", "save", "Save")]

    def __init__(self, entry: Mapping[str, Any] | None = None) -> None:
        super().__init__(classes="dialog")
        self.entry = dict(entry) if entry else None
        source = dict((entry or {}).get("source") or {"kind": "collector", "collector": "demo",
                                                      "params": {}})
        self.kind = str(source.get("kind", "collector"))
        self.source = source

    def compose(self) -> ComposeResult:
        entry = self.entry or {}
        analysis = entry.get("analysisConfig") or {}
        source = self.source
        params = source.get("params")
        with Vertical(classes="dialog-box wide") as box:
            box.border_title = f"Edit {entry['id']}" if self.entry else "Add a KPI"
            yield Static("", id="problem", classes="-empty")
            with Horizontal(classes="row"):
                yield self._field("ID", "id", entry.get("id"), "letters, digits . _ -",
                                  disabled=self.entry is not None)
                yield self._field("Name", "name", entry.get("name"))
            with Horizontal(classes="row"):
                yield self._field("Type", "kpiType", entry.get("kpiType"),
                                  "e.g. price, index, ratio")
                yield self._field("Unit", "unit", entry.get("unit"), "e.g. USD, %")
            with Horizontal(classes="row"):
                yield FormField("Source", Select(
                    [("Built-in collector", "collector"), ("n8n workflow", "n8n")],
                    value=self.kind, allow_blank=False, compact=True, id="kind"),
                    field="kind")
                yield FormField("Collected by jobs", Checkbox(
                    "Active", value=bool(entry.get("active", True)), id="active",
                    compact=True), field="active")
            with Horizontal(classes="row collector"):
                yield self._field("Collector", "collector", source.get("collector"),
                                  "demo, coingecko, cbbi-multi…")
                yield self._field("Collector parameters", "params",
                                  json.dumps(params) if params else "", "a JSON object")
            with Horizontal(classes="row n8n"):
                yield self._field("Webhook URL", "webhookUrl", source.get("webhookUrl"),
                                  "the workflow's trigger")
                yield self._field("Workflow id", "workflowId", source.get("workflowId"),
                                  "for start / stop / pause")
            with Horizontal(classes="row"):
                yield self._field("Alert below", "low", _number_text(analysis.get("low")),
                                  "empty: none")
                yield self._field("Alert above", "high", _number_text(analysis.get("high")),
                                  "empty: none")
            yield Static("[$foreground-muted]ctrl+s saves · esc cancels · tab moves[/]")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel", compact=True)
                yield Button("Save", id="save", variant="primary", compact=True)

    def _field(self, label: str, name: str, value: Any, hint: str = "", *,
               disabled: bool = False) -> FormField:
        control = Input("" if value is None else str(value), id=name, compact=True,
                        disabled=disabled)
        return FormField(label, control, field=name, hint=hint)

    def on_mount(self) -> None:
        self.set_class(self.kind == "n8n", "-n8n")
        self.set_class(self.kind != "n8n", "-collector")
        self.query_one("#name" if self.entry else "#id", Input).focus()

    @on(Select.Changed, "#kind")
    def _kind_changed(self, event: Select.Changed) -> None:
        self.kind = str(event.value)
        self.set_class(self.kind == "n8n", "-n8n")
        self.set_class(self.kind != "n8n", "-collector")

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#save")
    def _save_pressed(self) -> None:
        self.action_save()

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_save()

    # ---------------------------------------------------------------- saving
    def value(self, name: str) -> str:
        return self.query_one(f"#{name}", Input).value.strip()

    def body(self) -> dict[str, Any] | None:
        """The entry to send, or None when a field cannot even be sent (shown inline)."""
        self.clear_errors()
        body = {k: v for k, v in (self.entry or {}).items() if k not in READ_ONLY}
        problems: dict[str, str] = {}
        if self.entry is None:
            body["id"] = self.value("id")
        body["name"] = self.value("name")
        body["kpiType"] = self.value("kpiType")
        body["unit"] = self.value("unit")
        body["active"] = self.query_one("#active", Checkbox).value
        if self.kind == "n8n":
            source: dict[str, Any] = {"kind": "n8n", "webhookUrl": self.value("webhookUrl")}
            if self.value("workflowId"):
                source["workflowId"] = self.value("workflowId")
        else:
            source = {"kind": "collector", "collector": self.value("collector")}
            params_text = self.value("params")
            if params_text:
                try:
                    params = json.loads(params_text)
                except json.JSONDecodeError as exc:
                    params = None
                    problems["params"] = f"is not JSON: {exc.msg}"
                if params is not None and not isinstance(params, dict):
                    problems["params"] = 'must be a JSON object, e.g. {"kind": "index"}'
                source["params"] = params
        body["source"] = source
        analysis = dict(body.get("analysisConfig") or {})
        for name in ("low", "high"):
            text = self.value(name)
            if not text:
                analysis.pop(name, None)
                continue
            try:
                analysis[name] = float(text.replace(",", ""))
            except ValueError:
                problems[name] = "must be a number (or empty for no alert)"
        body["analysisConfig"] = analysis
        if problems:
            for name, message in problems.items():
                self.show_error(name, message)
            return None
        return body

    def action_save(self) -> None:
        body = self.body()
        if body is not None:
            self.save(body)

    @work(exclusive=True, group="save", exit_on_error=False)
    async def save(self, body: dict[str, Any]) -> None:
        try:
            if self.entry is None:
                saved = await self.client.create_kpi(body)
            else:
                saved = await self.client.replace_kpi(str(self.entry["id"]), body)
        except ClientError as error:
            if error.status is None or not self.show_problems(error):
                raise  # not about a field: the app's notification says it
            return
        for warning in saved.get("warnings") or []:
            self.notify(str(warning), title="Saved, with a warning", severity="warning")
        self.dismiss(saved)

    # ---------------------------------------------------------------- inline errors
    def show_problems(self, error: ClientError) -> bool:
        """Put each reason under its field; the whole message on top. False when no
        field of the form is named."""
        shown = False
        for path, reason in error.problems():
            name = FIELD_OF.get(path) or FIELD_OF.get(path.rsplit(".", 1)[0])
            if name is None:
                continue
            self.show_error(name, reason)
            shown = True
        if shown:
            first = next(iter(self.query(".-invalid")), None)
            if first is not None and isinstance(first, FormField):
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


def _number_text(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)

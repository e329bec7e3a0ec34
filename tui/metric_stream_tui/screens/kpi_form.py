"""Add or edit a registry entry. The API validates; its error names the field (`field`
and `name: reason; unit: reason` in the message), and the form shows each reason under
its input and stays open (see `ApiForm`). Fields the form does not show (indicators,
chart type, metadata, the KPI ids a multi-KPI source yields) are kept as they were."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Checkbox, Input, Select

from metric_stream_tui.screens.form import ApiForm
from metric_stream_tui.widgets import FormField

READ_ONLY = ("yields", "warnings")


class KpiForm(ApiForm):
    """Dismissed with the saved entry as the API answered it (None when cancelled)."""

    DEFAULT_CSS = """
    KpiForm.-n8n .collector { display: none; }
    KpiForm.-collector .n8n { display: none; }
    """
    field_of: ClassVar[Mapping[str, str]] = {
        "id": "id", "name": "name", "kpiType": "kpiType", "unit": "unit",
        "source": "kind", "source.kind": "kind", "source.collector": "collector",
        "source.params": "params", "source.webhookUrl": "webhookUrl",
        "source.workflowId": "workflowId", "analysisConfig.low": "low",
        "analysisConfig.high": "high", "analysisConfig": "low",
    }

    def __init__(self, entry: Mapping[str, Any] | None = None) -> None:
        super().__init__(entry)
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
            yield from self.compose_top()
            with Horizontal(classes="row"):
                yield self.field("Type", "kpiType", entry.get("kpiType"),
                                 "e.g. price, index, ratio")
                yield self.field("Unit", "unit", entry.get("unit"), "e.g. USD, %")
            with Horizontal(classes="row"):
                yield FormField("Source", Select(
                    [("Built-in collector", "collector"), ("n8n workflow", "n8n")],
                    value=self.kind, allow_blank=False, compact=True, id="kind"),
                    field="kind")
                yield FormField("Collected by jobs", Checkbox(
                    "Active", value=bool(entry.get("active", True)), id="active",
                    compact=True), field="active")
            with Horizontal(classes="row collector"):
                yield self.field("Collector", "collector", source.get("collector"),
                                 "demo, coingecko, cbbi-multi…")
                yield self.field("Collector parameters", "params",
                                 json.dumps(params) if params else "", "a JSON object")
            with Horizontal(classes="row n8n"):
                yield self.field("Webhook URL", "webhookUrl", source.get("webhookUrl"),
                                 "the workflow's trigger")
                yield self.field("Workflow id", "workflowId", source.get("workflowId"),
                                 "for start / stop / pause")
            with Horizontal(classes="row"):
                yield self.field("Alert below", "low", _number_text(analysis.get("low")),
                                 "empty: none")
                yield self.field("Alert above", "high", _number_text(analysis.get("high")),
                                 "empty: none")
            yield from self.compose_buttons()

    def on_mount(self) -> None:
        self.set_class(self.kind == "n8n", "-n8n")
        self.set_class(self.kind != "n8n", "-collector")
        self.query_one("#name" if self.entry else "#id", Input).focus()

    @on(Select.Changed, "#kind")
    def _kind_changed(self, event: Select.Changed) -> None:
        self.kind = str(event.value)
        self.set_class(self.kind == "n8n", "-n8n")
        self.set_class(self.kind != "n8n", "-collector")

    def field_for(self, path: str) -> str | None:
        # a path below a field of the source or the thresholds names its parent
        return self.field_of.get(path) or self.field_of.get(path.rsplit(".", 1)[0])

    def body(self) -> dict[str, Any] | None:
        body = {k: v for k, v in (self.entry or {}).items() if k not in READ_ONLY}
        problems: dict[str, str] = {}
        if self.entry is None:
            body["id"] = self.value("id")
        body["name"] = self.value("name")
        body["kpiType"] = self.value("kpiType")
        body["unit"] = self.value("unit")
        body["active"] = self.checked("active")
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
            self.show_errors(problems)
            return None
        return body

    async def send(self, body: dict[str, Any]) -> Any:
        if self.entry is None:
            return await self.client.create_kpi(body)
        return await self.client.replace_kpi(str(self.entry["id"]), body)


def _number_text(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)

"""Add or edit a delivery endpoint, and show a new webhook's signing secret once.

The API never answers an endpoint's URL, only its masked form (`https://host/***`);
editing shows that form, and sending it back unchanged keeps the stored URL. The API
checks a URL (its scheme, its channel, an address it may not call) and names the field:
the reason is shown under it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.widgets import Button, Checkbox, Input, Select, Static

from metric_stream_tui.screens.base import AdminModal
from metric_stream_tui.screens.form import ApiForm
from metric_stream_tui.widgets import FormField

READ_ONLY = ("scheme", "signed", "warnings", "health", "createdAt", "updatedAt",
             "signingSecret")
RECEIVES = [("every report", "all"), ("reports with alerts", "alerts"),
            ("reports of these KPIs", "list")]


class EndpointForm(ApiForm):
    """Dismissed with the saved endpoint as the API answered it (with `signingSecret`
    when the API made one), None when cancelled."""

    DEFAULT_CSS = """
    EndpointForm #receives-box { height: auto; }
    EndpointForm #kpis { width: 26; margin-right: 1; }
    EndpointForm #kpiList { width: 1fr; }
    EndpointForm.-all #kpiList, EndpointForm.-alerts #kpiList { display: none; }
    EndpointForm .flags > FormField { width: auto; margin-right: 4; }
    """
    field_of: ClassVar[Mapping[str, str]] = {
        "id": "id", "name": "name", "url": "url", "kpis": "kpis", "active": "active",
        "operator": "operator", "attachPdf": "attachPdf"}

    def __init__(self, entry: Mapping[str, Any] | None = None) -> None:
        super().__init__(entry)
        kpis = (entry or {}).get("kpis", "all")
        self.receives = kpis if kpis in ("all", "alerts") else "list"
        self.kpi_list = list(kpis) if isinstance(kpis, list) else []

    def compose(self) -> ComposeResult:
        entry = self.entry or {}
        with Vertical(classes="dialog-box wide") as box:
            box.border_title = f"Edit endpoint {entry['id']}" if self.entry else "Add an endpoint"
            yield from self.compose_top()
            with Horizontal(classes="row"):
                yield self.field(
                    "URL", "url", entry.get("url"),
                    "kept as stored while it reads masked (***)" if self.entry else
                    "https://…, tgram://token/chat, mailto://…, slack://…")
            with Horizontal(classes="row"):
                receives = Horizontal(
                    Select(RECEIVES, value=self.receives, allow_blank=False, compact=True,
                           id="kpis"),
                    Input(", ".join(self.kpi_list), id="kpiList", compact=True,
                          placeholder="KPI ids, comma separated"),
                    id="receives-box")
                yield FormField("Receives", receives, field="kpis")
            with Horizontal(classes="row flags"):
                for name, label, what, default in (
                        ("active", "Active", "Sends", True),
                        ("operator", "Operator channel", "Operational alerts", False),
                        ("attachPdf", "Attach the PDF", "Where the channel can", False)):
                    yield FormField(what, Checkbox(label, value=bool(entry.get(name, default)),
                                                   id=name, compact=True), field=name)
            yield from self.compose_buttons()

    def on_mount(self) -> None:
        self._show_receives()
        self.query_one("#name" if self.entry else "#id", Input).focus()

    @on(Select.Changed, "#kpis")
    def _receives_changed(self, event: Select.Changed) -> None:
        self.receives = str(event.value)
        self._show_receives()

    def _show_receives(self) -> None:
        for kind in ("all", "alerts", "list"):
            self.set_class(self.receives == kind, f"-{kind}")

    def body(self) -> dict[str, Any] | None:
        body = {k: v for k, v in (self.entry or {}).items() if k not in READ_ONLY}
        if self.entry is None:
            body["id"] = self.value("id")
        body["name"] = self.value("name")
        body["url"] = self.value("url")
        if self.receives == "list":
            kpi_ids = [k for k in re.split(r"[\s,]+", self.value("kpiList")) if k]
            if not kpi_ids:
                self.show_error("kpis", "name at least one KPI, or choose every report")
                return None
            body["kpis"] = kpi_ids
        else:
            body["kpis"] = self.receives
        for name in ("active", "operator", "attachPdf"):
            body[name] = self.checked(name)
        return body

    async def send(self, body: dict[str, Any]) -> Any:
        if self.entry is None:
            return await self.client.create_endpoint(body)
        return await self.client.replace_endpoint(str(self.entry["id"]), body)


class SecretModal(AdminModal[None]):
    """A new webhook's signing secret, shown this once: the API never answers it again."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,enter", "cancel", "Done"),
        Binding("c", "copy", "Copy"),
    ]
    DEFAULT_CSS = """
    SecretModal #secret { background: $boost; padding: 0 1; margin: 1 0;
        text-style: bold; color: $accent; }
    SecretModal .note { color: $warning; }
    """

    def __init__(self, endpoint_id: str, secret: str) -> None:
        super().__init__(classes="dialog")
        self.endpoint_id = endpoint_id
        self.secret = secret

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box wide") as box:
            box.border_title = f"Signing secret of {self.endpoint_id}"
            yield Static("Receivers verify each delivery's [b]webhook-signature[/b] header "
                         "(Standard Webhooks) with this secret:")
            yield Static(escape(self.secret), id="secret")
            yield Static("It is shown this once and will not be shown again: copy it now "
                         "(c copies, or select it with the mouse).", classes="note")
            with Horizontal(classes="buttons"):
                yield Button("Copy", id="copy", compact=True)
                yield Button("I have copied it", id="done", variant="primary", compact=True)

    def on_mount(self) -> None:
        self.query_one("#done", Button).focus()

    @on(Button.Pressed, "#copy")
    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.secret)
        self.notify("signing secret copied to the clipboard", timeout=3)

    @on(Button.Pressed, "#done")
    def _done(self) -> None:
        self.dismiss(None)

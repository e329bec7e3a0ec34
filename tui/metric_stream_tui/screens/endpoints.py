"""5 Endpoints: where reports go, with their health (ok / failing since … / disabled:
why), their URL masked as the API answers it, channel and flags. Loaded once and
filtered here (`/`), so 5,000 endpoints scroll as smoothly as five; `a` adds (a new
webhook's signing secret is shown once), `e` or `enter` edits, `t` sends a test message
(its outcome under the list), `x` deletes after a confirmation. Under the list, the
highlighted endpoint's health in full (failures in a row, last error, last success)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.markup import escape
from textual.widgets import DataTable, Static

from metric_stream.delivery.channels import channel_kind
from metric_stream_tui.format import DASH, duration, moment, toned
from metric_stream_tui.screens.base import Column, ListScreen
from metric_stream_tui.screens.endpoint_form import EndpointForm, SecretModal

# a health -> (order when sorted, tone)
HEALTH: dict[str, tuple[int, str]] = {
    "disabled": (0, "failed"), "failing": (1, "partial"), "inactive": (2, "pending"),
    "ok": (3, "complete")}


def health_of(endpoint: dict[str, Any]) -> tuple[str, str]:
    """(state, words): `disabled` / `failing` / `inactive` / `ok`, and how it reads."""
    health = endpoint.get("health") or {}
    active = endpoint.get("active", True)
    if not active and health.get("disabledReason"):
        return "disabled", f"✗ disabled: {health['disabledReason']}"
    if not active:
        return "inactive", "○ inactive"
    if health.get("failingSince"):
        return "failing", f"▲ failing since {moment(health['failingSince'])}"
    return "ok", "● ok"


def channel_text(endpoint: dict[str, Any]) -> str:
    return channel_kind(str(endpoint.get("url") or "")) or str(endpoint.get("scheme") or DASH)


def receives_text(endpoint: dict[str, Any]) -> str:
    kpis = endpoint.get("kpis", "all")
    if kpis == "all":
        return "every report"
    if kpis == "alerts":
        return "alerts only"
    return f"{len(kpis)} KPI{'s' if len(kpis) != 1 else ''}"


def flags_text(endpoint: dict[str, Any]) -> str:
    flags = [name for name, on_ in (("operator", endpoint.get("operator")),
                                    ("pdf", endpoint.get("attachPdf"))) if on_]
    return " · ".join(flags)


def details_text(endpoint: dict[str, Any]) -> str:
    """Everything about the highlighted endpoint's health, in two lines of markup."""
    health = endpoint.get("health") or {}
    state, words = health_of(endpoint)
    failures = int(health.get("consecutiveFailures") or 0)
    kpis = endpoint.get("kpis")
    receives = ", ".join(kpis) if isinstance(kpis, list) else receives_text(endpoint)
    said = [f"receives {receives}", *(["signed"] if endpoint.get("signed") else []),
            f"last success {moment(health.get('lastSuccessAt'))}"]
    if failures:
        said.append(f"{failures} failure{'s' if failures != 1 else ''} in a row")
    if health.get("lastError"):
        said.append(f"last error: {health['lastError']}")
    tone = HEALTH[state][1]
    return (f"[b]{escape(str(endpoint.get('id')))}[/b] {escape(str(endpoint.get('name', '')))}"
            f" · {escape(str(endpoint.get('url', '')))}\n"
            f"{toned(tone, words)} [$foreground-muted]· {escape(' · '.join(said))}[/]")


def outcome_text(answer: dict[str, Any]) -> str:
    """A test send's answer in one line of markup."""
    status = answer.get("status")
    attempts = int(answer.get("attempts") or 0)
    parts = [f"HTTP {status}" if status else "no HTTP status",
             f"{attempts} attempt{'s' if attempts != 1 else ''}"]
    if isinstance(answer.get("elapsedMs"), int | float):
        parts.append(duration(answer["elapsedMs"] / 1000))
    said = " · ".join(parts)
    if answer.get("delivered"):
        return f"[$success]✓ delivered[/] · {escape(said)}"
    error = escape(str(answer.get("error") or "no reason given"))
    gone = " — the service says the address is gone" if answer.get("gone") else ""
    return f"[$error]✗ not delivered[/] · {escape(said)} — {error}{gone}"


class EndpointsScreen(ListScreen):
    section = "endpoints"
    empty_text = "no delivery endpoints — a adds one (https://…, tgram://…, mailto://…)"

    DEFAULT_CSS = """
    EndpointsScreen #details { height: 3; padding: 0 1; border-top: solid $panel; }
    EndpointsScreen #test-result { height: auto; padding: 0 1; display: none; }
    EndpointsScreen #test-result.-shown { display: block; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "add", "Add"),
        Binding("e", "edit", "Edit"),
        Binding("t", "test", "Test send"),
        Binding("x,delete", "delete", "Delete", key_display="x"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._haystacks: dict[str, str] = {}
        self._cells: dict[str, tuple[Any, ...]] = {}
        self._cells_theme = ""
        self._makers: list[Callable[[dict[str, Any]], Any]] = []

    def make_columns(self) -> list[Column]:
        columns = [
            Column("id", "ID", lambda e: Text(str(e.get("id", ""))), width=14),
            Column("channel", "Channel", lambda e: Text(channel_text(e))),
            Column("url", "URL (masked)", lambda e: Text(str(e.get("url", ""))), width=31),
            Column("receives", "Receives", lambda e: Text(receives_text(e)), width=12),
            Column("health", "Health", self._health_cell, width=32,
                   sort=lambda e: (HEALTH[health_of(e)[0]][0], str(e.get("id")))),
            Column("flags", "Flags", lambda e: Text(flags_text(e))),
        ]
        self._makers = [c.cell for c in columns]
        return [replace(c, cell=partial(self._cell, index)) for index, c in enumerate(columns)]

    def _cell(self, index: int, endpoint: dict[str, Any]) -> Any:
        # a row's cells, made once per load and theme: a filter or a sort of 5,000 rows
        # then only refills the table
        key = self.row_key(endpoint)
        cells = self._cells.get(key)
        if cells is None:
            cells = self._cells[key] = tuple(make(endpoint) for make in self._makers)
        return cells[index]

    def _health_cell(self, endpoint: dict[str, Any]) -> Text:
        state, words = health_of(endpoint)
        return self.tone(HEALTH[state][1], words, bold=state == "disabled")

    def compose_below(self) -> ComposeResult:
        yield Static("", id="details")
        yield Static("", id="test-result")

    def rerender(self) -> None:
        if self._cells_theme != self.app.theme:
            self._cells.clear()
            self._cells_theme = self.app.theme
        super().rerender()
        self._show_details()

    @on(DataTable.RowHighlighted, "#list")
    def _show_details(self) -> None:
        endpoint = self.selected
        self.query_one("#details", Static).update(  # a fixed height: no layout needed
            "" if endpoint is None else details_text(endpoint), layout=False)

    async def fetch(self) -> None:
        answer = await self.client.endpoints()
        self.rows = list(answer.get("endpoints") or [])
        self._haystacks.clear()
        self._cells.clear()
        self.rerender()

    def matches(self, row: dict[str, Any], text: str) -> bool:
        # the words of a row, made once per load: 5,000 rows re-filter without lag
        key = self.row_key(row)
        haystack = self._haystacks.get(key)
        if haystack is None:
            haystack = "\n".join((key, str(row.get("name", "")), channel_text(row),
                                  str(row.get("url", "")), receives_text(row),
                                  health_of(row)[1], flags_text(row))).lower()
            self._haystacks[key] = haystack
        return text in haystack

    @on(DataTable.RowSelected, "#list")
    def _selected(self) -> None:
        self.action_edit()

    # ---------------------------------------------------------------- actions
    def action_add(self) -> None:
        self.app.push_screen(EndpointForm(), self._saved)

    def action_edit(self) -> None:
        endpoint = self.selected
        if endpoint is not None:
            self.app.push_screen(EndpointForm(endpoint), self._saved)

    def _saved(self, endpoint: dict[str, Any] | None) -> None:
        if not endpoint:
            return
        endpoint_id = str(endpoint.get("id"))
        secret = endpoint.pop("signingSecret", None)  # held nowhere but on screen, once
        if secret:
            self.app.push_screen(SecretModal(endpoint_id, str(secret)))
        else:
            self.notify(f"{endpoint_id} saved", timeout=3)
        self.reload_then_select(endpoint_id)

    def action_test(self) -> None:
        endpoint = self.selected
        if endpoint is not None:
            self.show_result(f"Sending a test message to [b]{escape(str(endpoint['id']))}[/b] "
                             "(with the delivery retries: a failing address takes a while)…")
            self.send_test(str(endpoint["id"]))

    @work(group="action", exit_on_error=False)
    async def send_test(self, endpoint_id: str) -> None:
        try:
            answer = await self.client.test_endpoint(endpoint_id)
        except Exception:
            self.show_result(f"The test of [b]{escape(endpoint_id)}[/b] could not be sent.")
            raise  # the app's notification says why
        outcome = outcome_text(answer)
        self.show_result(f"Test of [b]{escape(endpoint_id)}[/b] "
                         f"({escape(str(answer.get('url', '')))}): {outcome}")
        delivered = bool(answer.get("delivered"))
        self.notify(outcome, title=f"Test of {endpoint_id}",
                    severity="information" if delivered else "error",
                    timeout=5 if delivered else 10)

    def show_result(self, markup: str) -> None:
        result = self.query_one("#test-result", Static)
        result.update(markup)
        result.add_class("-shown")

    def action_delete(self) -> None:
        self.confirm_delete(
            lambda endpoint: (f"Delete the endpoint {endpoint['id']} ({endpoint.get('url')})?"
                              " Reports stop going there; past delivery records stay."),
            "Delete endpoint", self.delete)

    @work(group="action", exit_on_error=False)
    async def delete(self, endpoint_id: str) -> None:
        await self.client.delete_endpoint(endpoint_id)
        self._haystacks.pop(endpoint_id, None)
        self.forget(endpoint_id)

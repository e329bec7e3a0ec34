"""2 KPIs: the registry as a table (`/` filters, `s` or a header click sorts); `a`
adds, `e` edits, `t` toggles active, `x` deletes (after a confirmation), `i` imports
a CSV history, `enter` opens the KPI's chart and figures."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.binding import Binding, BindingType
from textual.widgets import DataTable

from metric_stream_tui.client import ClientError
from metric_stream_tui.format import DASH, number
from metric_stream_tui.modals import ConfirmModal
from metric_stream_tui.screens.base import Column, ListScreen
from metric_stream_tui.screens.kpi_detail import KpiDetailScreen
from metric_stream_tui.screens.kpi_form import READ_ONLY, KpiForm
from metric_stream_tui.screens.kpi_import import KpiImport


def source_text(entry: dict[str, Any]) -> str:
    source = entry.get("source") or {}
    if source.get("kind") == "n8n":
        return f"n8n {source.get('workflowId') or ''}".strip()
    return str(source.get("collector") or DASH)


def _threshold(entry: dict[str, Any], name: str) -> str:
    value = (entry.get("analysisConfig") or {}).get(name)
    return number(value) if value is not None else ""


def delete_question(entry: dict[str, Any]) -> str:
    yields = entry.get("yields") or []
    also = f" and the {len(yields)} KPIs it yields" if len(yields) > 1 else ""
    return (f"Delete {entry['id']}{also} from the registry? Its history stays in the store, "
            "but no job collects it any more.")


class KpisScreen(ListScreen):
    section = "kpis"
    empty_text = ("the registry is empty — a adds a KPI; for a demo store run "
                  "`metric-stream run --demo`, then `metric-stream tui --demo`")

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "add", "Add"),
        Binding("e", "edit", "Edit"),
        Binding("t", "toggle_active", "On/off"),
        Binding("x,delete", "delete", "Delete", key_display="x"),
        Binding("i", "import_csv", "Import"),
    ]

    def make_columns(self) -> list[Column]:
        return [
            Column("id", "ID", lambda k: Text(str(k.get("id", "")))),
            Column("name", "Name", lambda k: Text(str(k.get("name", ""))), width=30),
            Column("type", "Type", lambda k: Text(str(k.get("kpiType", "")))),
            Column("source", "Source", lambda k: Text(source_text(k))),
            Column("unit", "Unit", lambda k: Text(str(k.get("unit") or ""))),
            Column("yields", "KPIs", lambda k: Text(str(len(k.get("yields") or [1]))),
                   sort=lambda k: len(k.get("yields") or [1])),
            Column("low", "Below", lambda k: Text(_threshold(k, "low"), justify="right"),
                   sort=lambda k: _sort_number((k.get("analysisConfig") or {}).get("low"))),
            Column("high", "Above", lambda k: Text(_threshold(k, "high"), justify="right"),
                   sort=lambda k: _sort_number((k.get("analysisConfig") or {}).get("high"))),
            Column("active", "Active", lambda k: self.tone(
                "complete" if k.get("active", True) else "pending",
                "● on" if k.get("active", True) else "○ off"),
                sort=lambda k: not k.get("active", True)),
        ]

    async def fetch(self) -> None:
        answer = await self.client.kpis()
        self.rows = list(answer.get("kpis") or [])
        self.rerender()

    @on(DataTable.RowSelected, "#list")
    def _selected(self) -> None:
        entry = self.selected
        if entry is not None:
            self.app.push_screen(KpiDetailScreen(entry), lambda _: self.reload())

    # ---------------------------------------------------------------- actions
    def action_add(self) -> None:
        self.app.push_screen(KpiForm(), self._saved)

    def action_edit(self) -> None:
        entry = self.selected
        if entry is not None:
            self.app.push_screen(KpiForm(entry), self._saved)

    def _saved(self, entry: dict[str, Any] | None) -> None:
        if entry:
            self.notify(f"{entry.get('id')} saved", timeout=3)
            self.reload_then_select(str(entry.get("id")))

    def action_toggle_active(self) -> None:
        entry = self.selected
        if entry is not None:
            self.toggle(entry)

    @work(group="action", exit_on_error=False)
    async def toggle(self, entry: dict[str, Any]) -> None:
        body = {k: v for k, v in entry.items() if k not in READ_ONLY}
        body["active"] = not entry.get("active", True)
        saved = await self.client.replace_kpi(str(entry["id"]), body)
        entry.update(saved)
        self.rerender()
        self.notify(f"{entry['id']} is now {'active' if saved.get('active') else 'inactive'}",
                    timeout=3)

    def action_delete(self) -> None:
        self.confirm_delete(delete_question, "Delete KPI", self.delete)

    @work(group="action", exit_on_error=False)
    async def delete(self, kpi_id: str, force: bool = False) -> None:
        try:
            answer = await self.client.delete_kpi(kpi_id, force=force)
        except ClientError as error:
            if error.status != 409 or force:
                raise
            self.app.push_screen(
                ConfirmModal(f"{error.message}.\n\nDelete anyway? It is then marked failed "
                             "in those jobs.", "Delete anyway", title="KPI in use"),
                self.answer(lambda: self.delete(kpi_id, force=True)))
            return
        self.forget(kpi_id)
        for warning in answer.get("warnings") or []:
            self.notify(str(warning), title="Still named elsewhere", severity="warning")

    def action_import_csv(self) -> None:
        entry = self.selected
        if entry is not None:
            self.app.push_screen(KpiImport(entry), lambda _: self.reload())


def _sort_number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else float("inf")

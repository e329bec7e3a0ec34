"""7 Workflows: the n8n workflows behind the registry — each KPI whose source is an n8n
workflow, with the workflow's id and webhook host. `s` starts the selected KPI's
workflow, `x` stops it and `p` pauses it (both after a confirmation), through
`POST /api/workflows/{id}/start|stop|pause`; n8n's answer, or the API's error (n8n
not configured, no such workflow), comes back as a notification."""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import urlsplit

from rich.text import Text
from textual import work
from textual.binding import Binding, BindingType

from metric_stream_tui.client import WorkflowAction
from metric_stream_tui.format import DASH
from metric_stream_tui.modals import ConfirmModal
from metric_stream_tui.screens.base import Column, ListScreen

NO_WORKFLOWS = ("No KPI is fed by an n8n workflow. To link one: 2 (KPIs), select it, "
                "e, set Source to “n8n workflow” with its webhook URL and workflow id, "
                "ctrl+s; it then shows here.")
DONE = {"start": "started", "stop": "stopped", "pause": "paused"}
QUESTION = {
    "stop": ("Stop workflow {id}? n8n deactivates it; its KPIs stay active, so the "
             "next jobs report them failed.", "Stop"),
    "pause": ("Pause workflow {id}? n8n deactivates it and its KPIs ({kpis}) are made "
              "inactive, so jobs skip them until you start it again.", "Pause"),
}


def n8n_source(entry: dict[str, Any]) -> dict[str, Any] | None:
    source = entry.get("source") or {}
    return source if source.get("kind") == "n8n" else None


def webhook_host(entry: dict[str, Any]) -> str:
    url = str((n8n_source(entry) or {}).get("webhookUrl") or "")
    return urlsplit(url).netloc.rsplit("@", 1)[-1] or DASH  # never a URL's credentials


def workflow_of(entry: dict[str, Any]) -> str | None:
    workflow = (n8n_source(entry) or {}).get("workflowId")
    return str(workflow) if workflow else None


class WorkflowsScreen(ListScreen):
    section = "workflows"
    empty_text = NO_WORKFLOWS
    help_rows: ClassVar[list[tuple[str, str]]] = [
        *ListScreen.help_rows,
        ("s after p", "start makes active again the KPIs a pause made inactive")]

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "control('start')", "Start"),
        Binding("x", "control('stop')", "Stop"),
        Binding("p", "control('pause')", "Pause"),
        Binding("o", "sort", "Sort"),  # `s` is start here
    ]

    def make_columns(self) -> list[Column]:
        return [
            Column("workflow", "Workflow", lambda k: Text(workflow_of(k) or DASH)),
            Column("id", "KPI", lambda k: Text(str(k.get("id", "")))),
            Column("name", "Name", lambda k: Text(str(k.get("name", ""))), width=30),
            Column("host", "Webhook host", lambda k: Text(webhook_host(k))),
            Column("active", "Active", lambda k: self.tone(
                "complete" if k.get("active", True) else "pending",
                "● on" if k.get("active", True) else "○ off"),
                sort=lambda k: not k.get("active", True)),
            Column("paused", "", lambda k: Text(
                "paused by its workflow"
                if (k.get("metadata") or {}).get("pausedByWorkflow") else "",
                style="italic")),
        ]

    async def fetch(self) -> None:
        answer = await self.client.kpis()
        self.rows = [k for k in answer.get("kpis") or [] if n8n_source(k) is not None]
        self.rerender()

    def action_control(self, action: WorkflowAction) -> None:
        entry = self.selected
        if entry is None:
            return
        workflow = workflow_of(entry)
        if workflow is None:
            self.notify(f"{entry.get('id')} names no workflow id: add it in KPIs (2, e) to "
                        "control its workflow from here", title="No workflow id",
                        severity="warning")
            return
        if action == "start":
            self.control(workflow, action)
            return
        question, confirm = QUESTION[action]
        kpis = ", ".join(str(k.get("id")) for k in self.rows if workflow_of(k) == workflow)
        self.app.push_screen(
            ConfirmModal(question.format(id=workflow, kpis=kpis), confirm,
                         title=f"{confirm} workflow"),
            self.answer(lambda: self.control(workflow, action)))

    @work(group="action", exit_on_error=False)
    async def control(self, workflow: str, action: WorkflowAction) -> None:
        answer = await self.client.workflow(workflow, action)
        active = answer.get("active")
        state = "" if active is None else f" (n8n: {'active' if active else 'inactive'})"
        changed = answer.get("kpisChanged") or []
        made = "inactive" if action == "pause" else "active again"
        also = f"; KPIs made {made}: {', '.join(changed)}" if changed else ""
        self.notify(f"Workflow {workflow} {DONE[action]}{state}{also}", timeout=5)
        if changed:
            self.reload()

"""A job, opened from the jobs list or the dashboard: its status said plainly, stage
timings, every KPI's state with the whole error object of a failure, deliveries per
endpoint (attempts, last error), how its LLM chains went, and where its report is.
`d` re-delivers where it failed, `D` to every recipient still owed it; `o` copies the
report's location, `w` writes the PDF here."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.markup import escape
from textual.widgets import DataTable, Static

from metric_stream_tui.format import (
    DASH,
    RUNNING,
    duration,
    job_state,
    moment,
    plain,
    pretty_json,
    size,
    tone_of,
    toned,
    toned_text,
)
from metric_stream_tui.modals import ConfirmModal
from metric_stream_tui.screens.base import AdminScreen

_KPI_ORDER = {"failed": 0, "timed_out": 1, "pending": 2, "collected": 3}


class JobDetailScreen(AdminScreen):
    AUTO_FOCUS = "#kpis"
    DEFAULT_CSS = """
    JobDetailScreen #head { height: auto; padding: 0 1; margin-bottom: 1; }
    JobDetailScreen #top { height: auto; margin-bottom: 1; }
    JobDetailScreen #stages-box { width: 44; height: auto; padding: 0 1; }
    JobDetailScreen #report-box { width: 1fr; height: auto; padding: 0 1; }
    JobDetailScreen #llm-title { margin-top: 1; }
    JobDetailScreen #middle { height: 1fr; }
    JobDetailScreen #kpis-box { width: 56; padding: 0 1; }
    JobDetailScreen #error-box { width: 1fr; padding: 0 1; }
    JobDetailScreen #error-scroll { background: $boost; padding: 0 1; }
    JobDetailScreen #deliveries-box { height: auto; max-height: 12; padding: 0 1;
        margin-top: 1; }
    JobDetailScreen DataTable { height: auto; }
    JobDetailScreen #kpis { height: 1fr; }
    JobDetailScreen #deliveries { max-height: 10; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("d", "redeliver(True)", "Re-deliver failed"),
        Binding("D", "redeliver(False)", "Deliver owed", key_display="D"),
        Binding("o", "copy_location", "Copy report link"),
        Binding("w", "save_report", "Save PDF"),
    ]
    help_rows: ClassVar[list[tuple[str, str]]] = [
        ("↑ ↓ on KPIs", "show that KPI's error object"), ("tab", "next table")]

    def __init__(self, trace_id: str) -> None:
        super().__init__()
        self.trace_id = trace_id
        self.job: dict[str, Any] | None = None

    def compose_body(self) -> ComposeResult:
        yield Static(f"[b]{escape(self.trace_id)}[/b]  loading…", id="head")
        with Horizontal(id="top"):
            with Vertical(id="stages-box"):
                yield Static("Stages", classes="panel-title")
                stages: DataTable[str] = DataTable(id="stages", cursor_type="none",
                                                   zebra_stripes=True)
                stages.can_focus = False
                yield stages
            with Vertical(id="report-box"):
                yield Static("Report", classes="panel-title")
                yield Static("", id="report")
                yield Static("LLM analysis", classes="panel-title", id="llm-title")
                yield Static("", id="llm")
        with Horizontal(id="middle"):
            with Vertical(id="kpis-box"):
                yield Static("KPIs", classes="panel-title", id="kpis-title")
                yield DataTable(id="kpis", cursor_type="row", zebra_stripes=True)
            with Vertical(id="error-box"):
                yield Static("Error object", classes="panel-title")
                with VerticalScroll(id="error-scroll"):
                    yield Static("", id="error")
        with Vertical(id="deliveries-box"):
            yield Static("Deliveries", classes="panel-title", id="deliveries-title")
            yield DataTable(id="deliveries", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        columns = {
            "#stages": ("Stage", "Started", "Took"),
            "#kpis": ("KPI", "State", "At"),
            "#deliveries": ("Endpoint", "Channel", "State", "Attempts", "Last try",
                            "Last error"),
        }
        for selector, labels in columns.items():
            table = self.query_one(selector, DataTable)
            for label in labels:
                table.add_column(label, key=label.lower())
        if self.admin.refresh_s:
            self.set_interval(max(self.admin.refresh_s, 2.0), self._tick)
        super().on_mount()

    def _tick(self) -> None:
        if (self.job and self.job.get("status") in RUNNING and not self.loading_now
                and not self.admin.offline and self.is_current):
            self.reload()

    async def fetch(self) -> None:
        self.job = await self.client.job(self.trace_id)
        self.rerender()

    def rerender(self) -> None:
        job = self.job
        if job is None:
            return
        variables = self.app.theme_variables
        self._show_head(job)
        self._show_stages(job)
        self._show_report(job)
        self._show_llm(job.get("llm"))
        kpis = self.query_one("#kpis", DataTable)
        row = kpis.cursor_row
        kpis.clear()
        states: dict[str, Any] = job.get("kpis") or {}
        for kpi_id, state in sorted(states.items(),
                                    key=lambda kv: (_KPI_ORDER.get(kv[1].get("status"), 9),
                                                    kv[0])):
            status = str(state.get("status", "pending"))
            kpis.add_row(Text(kpi_id), toned_text(status, variables),
                         moment(state.get("updatedAt"), seconds=True)[11:], key=kpi_id)
        if states:
            kpis.move_cursor(row=min(row, len(states) - 1), animate=False)
        counts: dict[str, int] = {}
        for state in states.values():
            counts[str(state.get("status"))] = counts.get(str(state.get("status")), 0) + 1
        self.query_one("#kpis-title", Static).update(
            "KPIs  " + " · ".join(toned(k, f"{v} {k.replace('_', ' ')}")
                                  for k, v in sorted(counts.items())))
        self._show_error()
        deliveries = self.query_one("#deliveries", DataTable)
        deliveries.clear()
        records = job.get("deliveries") or []
        for record in records:
            status = str(record.get("status", "pending"))
            code = record.get("lastStatusCode")
            error = _one_line(record.get("lastError"))
            deliveries.add_row(
                plain(record.get("endpointName") or record.get("endpointId")),
                plain(record.get("channel")), toned_text(status, variables),
                Text(str(record.get("attempts", 0))),
                moment(record.get("lastAttemptAt"), seconds=True)[11:],
                plain(f"{code}: {error}" if code and error else error),
                key=str(record.get("endpointId")))
        deliveries.display = bool(records)
        failed = sum(1 for r in records if r.get("status") == "failed")
        self.query_one("#deliveries-title", Static).update(
            f"Deliveries  [$foreground-muted]{len(records)} endpoint(s)"
            + (f" · [$error]{failed} failed[/] — d sends to them again" if failed else "")
            + "[/]" if records else "Deliveries  [$foreground-muted]none recorded[/]")

    def _show_head(self, job: dict[str, Any]) -> None:
        status = str(job.get("status", "?"))
        missing = job.get("missing") or []
        state = job_state(job)
        if status in ("partial", "failed"):  # said loudly, the count as it is
            state = f"[b]{status.upper()}[/b]{state[len(status):]}"
        lines = [f"[b]{escape(self.trace_id)}[/b]   "
                 + f"[${tone_of(status)}]{state}[/]"]
        if missing:
            lines.append(f"[$warning]missing: {escape(', '.join(missing))}[/]")
        facts = [f"started {moment(job.get('createdAt'), seconds=True)}",
                 f"finished {moment(job.get('finishedAt'), seconds=True)}"
                 if job.get("finishedAt") else "not finished",
                 f"took {duration(job.get('durationS'))}" if job.get("durationS") is not None
                 else "", f"schedule {job['scheduleId']}" if job.get("scheduleId") else "run now",
                 "DEMO data" if job.get("demo") else ""]
        lines.append("[$foreground-muted]" + escape(" · ".join(f for f in facts if f)) + "[/]")
        if job.get("note"):
            lines.append(escape(str(job["note"])))
        if job.get("error"):
            lines.append(f"[$error]{escape(_one_line((job['error'] or {}).get('message')))}[/]")
        self.query_one("#head", Static).update("\n".join(lines))

    def _show_stages(self, job: dict[str, Any]) -> None:
        table = self.query_one("#stages", DataTable)
        table.clear()
        stages: dict[str, Any] = job.get("stages") or {}
        for name, timing in sorted(stages.items(), key=lambda kv: str(kv[1].get("startedAt"))):
            took = timing.get("durationS")
            table.add_row(name, moment(timing.get("startedAt"), seconds=True)[11:],
                          duration(took) if took is not None else "running…", key=name)
        table.display = bool(stages)

    def _show_report(self, job: dict[str, Any]) -> None:
        document = job.get("document")
        target = self.query_one("#report", Static)
        if not document:
            target.update("[$foreground-muted]no report yet (the packaging stage makes it)[/]")
            return
        pages = f"{document['pages']} pages · " if document.get("pages") else ""
        target.update(
            f"{escape(self.report_location() or DASH)}\n"
            f"[$foreground-muted]{pages}{size(document.get('sizeBytes'))}"
            f"{' · DEMO' if document.get('demo') else ''} · o copies · w writes the PDF "
            "here[/]")

    def _show_llm(self, llm: dict[str, Any] | None) -> None:
        target = self.query_one("#llm", Static)
        if not llm:
            target.update("[$foreground-muted]not run (no analysis yet)[/]")
            return
        status = str(llm.get("status", "?"))
        tone = {"ok": "complete", "partial": "partial", "failed": "failed"}.get(status,
                                                                               "pending")
        parts = [toned(tone, status)]
        if llm.get("reason"):
            parts.append(escape(str(llm["reason"])))
        if llm.get("chainsOk") is not None or llm.get("chainsFailed"):
            parts.append(f"{llm.get('chainsOk', 0)} chains ok, {llm.get('chainsFailed', 0)} "
                         "failed")
        if llm.get("calls"):
            tokens = int(llm.get("inputTokens", 0)) + int(llm.get("outputTokens", 0))
            parts.append(f"{llm['calls']} calls · {tokens:,} tokens")
        latency = llm.get("latencyMs") or {}
        if latency.get("p50") is not None:
            parts.append(f"median call {duration(latency['p50'] / 1000)}")
        lines = [" · ".join(parts)]
        for failure in (llm.get("failures") or [])[:3]:
            if isinstance(failure, dict):
                where = f"{failure.get('kpiId', '?')}" + (
                    f" step {failure['step']}" if failure.get("step") else "")
                lines.append(f"[$error]{escape(where)}: "
                             f"{escape(_one_line(failure.get('reason')))}[/]")
        target.update("\n".join(lines))

    def report_location(self) -> str | None:
        document = (self.job or {}).get("document") or {}
        if document.get("url"):
            return str(document["url"])
        path = document.get("downloadPath")
        if not path:
            return None
        base = getattr(self.client, "url", None)
        return f"{base}{path}" if base else str(path)

    # ---------------------------------------------------------------- the KPI error panel
    @on(DataTable.RowHighlighted, "#kpis")
    def _highlighted(self) -> None:
        self._show_error()

    def _show_error(self) -> None:
        panel = self.query_one("#error", Static)
        table = self.query_one("#kpis", DataTable)
        states = (self.job or {}).get("kpis") or {}
        if not table.row_count:
            panel.update("")
            return
        kpi_id = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value or ""
        error = (states.get(kpi_id) or {}).get("error")
        if error:
            panel.update(f"[$error]{escape(kpi_id)}[/]\n{escape(pretty_json(error))}")
        elif (self.job or {}).get("missing"):
            panel.update(f"[$foreground-muted]{escape(kpi_id)} has no error; ↑ ↓ to a failed "
                         "KPI shows its error[/]")
        else:
            panel.update("[$foreground-muted]no KPI failed[/]")

    # ---------------------------------------------------------------- actions
    def action_back(self) -> None:
        self.dismiss()

    def action_redeliver(self, failed_only: bool) -> None:
        records = (self.job or {}).get("deliveries") or []
        failed = sum(1 for r in records if r.get("status") == "failed")
        question = (f"Send this job's report again to the {failed} endpoint(s) whose last "
                    "try failed?" if failed_only else
                    "Send this job's report to every recipient that has not received it "
                    "(the failed and the never tried)?")
        if failed_only and not failed:
            self.notify("No delivery of this job failed.", title="Nothing to re-deliver")
            return
        self.app.push_screen(ConfirmModal(question, "Send", title="Re-deliver", danger=False),
                             self.answer(lambda: self.redeliver(failed_only)))

    @work(group="action", exit_on_error=False)
    async def redeliver(self, failed_only: bool) -> None:
        run = await self.client.redeliver(self.trace_id, failed_only=failed_only)
        failed = int(run.get("failed", 0))
        self.notify(f"{run.get('sent', 0)} sent, {failed} failed, "
                    f"{run.get('alreadySent', 0)} already sent"
                    + (f"; disabled: {', '.join(run['disabled'])}" if run.get("disabled")
                       else ""),
                    title="Re-delivery", severity="warning" if failed else "information")
        self.reload()

    def action_copy_location(self) -> None:
        location = self.report_location()
        if location is None:
            self.notify("This job has no report yet.", severity="warning")
            return
        self.app.copy_to_clipboard(location)
        self.notify(location, title="Report location (copied)", timeout=8)

    @work(group="action", exit_on_error=False)
    async def action_save_report(self) -> None:
        if not (self.job or {}).get("document"):
            self.notify("This job has no report yet.", severity="warning")
            return
        data = await self.client.document(self.trace_id)
        target = Path.cwd() / f"{self.trace_id}.pdf"
        await asyncio.to_thread(target.write_bytes, data)
        self.notify(f"{target} ({size(len(data))})", title="Report written")


def _one_line(text: Any) -> str:
    return " ".join(str(text or "").split())

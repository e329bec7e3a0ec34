"""1 Dashboard: the figures of `GET /api/metrics`, the recent jobs of `GET /api/jobs`
and the next runs of `GET /api/schedules`, refreshed live (`p` pauses, `+`/`-` change
the interval). `enter` on a job opens it."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.timer import Timer
from textual.widgets import DataTable, Sparkline, Static

from metric_stream_tui.format import (
    DASH,
    RUNNING,
    duration,
    moment,
    percent,
    plain,
    relative,
    size,
    toned,
    toned_text,
)
from metric_stream_tui.screens.base import AdminScreen
from metric_stream_tui.widgets import Card

RECENT = 12  # jobs in the table
SAMPLE = 50  # jobs behind the sparkline
INTERVALS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
NO_DATA = ("No jobs yet. For a demo store: `metric-stream run --demo`, then "
           "`metric-stream tui --demo`; or press 3 then n to run a job now.")


class DashboardScreen(AdminScreen):
    section = "dashboard"

    DEFAULT_CSS = """
    DashboardScreen #cards { height: auto; }
    DashboardScreen #cards > Card { height: 6; }
    DashboardScreen #middle { height: 1fr; }
    DashboardScreen #recent-box { width: 1fr; border: round $foreground 20%;
        border-title-color: $foreground-muted; border-subtitle-color: $foreground-muted; }
    DashboardScreen #side { width: 34; }
    DashboardScreen #side > Card { height: 1fr; }
    DashboardScreen #bottom { height: 7; }
    DashboardScreen #durations { width: 1fr; height: 7; border: round $foreground 20%;
        border-title-color: $foreground-muted; padding: 0 1; }
    DashboardScreen #durations Sparkline { height: 3; }
    DashboardScreen Sparkline > .sparkline--max-color { color: $accent; }
    DashboardScreen Sparkline > .sparkline--min-color { color: $accent 40%; }
    DashboardScreen #rates { width: 34; height: 7; }
    DashboardScreen #recent { height: 1fr; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("p", "pause", "Pause/resume"),
        Binding("plus,equals_sign", "interval(1)", "Slower", key_display="+"),
        Binding("minus", "interval(-1)", "Faster", key_display="-"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.timer: Timer | None = None
        self.interval = 5.0
        self.paused = False
        self.updated_at: str | None = None
        self.metrics: dict[str, Any] | None = None
        self.jobs: list[dict[str, Any]] | None = None
        self.schedules: list[dict[str, Any]] | None = None

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="cards"):
            yield Card("Jobs", id="card-jobs")
            yield Card("KPI failures", id="card-failures")
            yield Card("Deliveries", id="card-deliveries")
            yield Card("LLM", id="card-llm")
            yield Card("Storage", id="card-storage")
        with Horizontal(id="middle"):
            with Vertical(id="recent-box") as box:
                box.border_title = "Recent jobs"
                yield DataTable(id="recent", cursor_type="row", zebra_stripes=True)
            with Vertical(id="side"):
                yield Card("Queues", id="card-queues")
                yield Card("Next runs", id="card-next")
        with Horizontal(id="bottom"):
            with Vertical(id="durations") as box:
                box.border_title = "Job durations (oldest → newest)"
                yield Sparkline([], id="sparkline")
                yield Static("", id="durations-caption")
            yield Card("Worst failure rates", id="rates")
        yield Static("", id="status", classes="status-line")

    def on_mount(self) -> None:
        refresh = self.admin.refresh_s
        self.interval, self.paused = refresh or self.interval, refresh is None
        table = self.query_one("#recent", DataTable)
        for label in ("Started", "Trace id", "Status", "KPIs", "Took"):
            table.add_column(label, key=label.lower())
        self.timer = self.set_interval(self.interval, self._tick, pause=self.paused)
        super().on_mount()
        self._show_status()

    # ---------------------------------------------------------------- live refresh
    def _tick(self) -> None:
        if not self.loading_now and not self.admin.offline:
            self.reload()

    def on_screen_suspend(self) -> None:
        if self.timer is not None:
            self.timer.pause()

    def on_screen_resume(self) -> None:
        if self.timer is not None and not self.paused:
            self.timer.resume()
            self.reload()

    def action_pause(self) -> None:
        self.paused = not self.paused
        if self.timer is not None:
            if self.paused:
                self.timer.pause()
            else:
                self.timer.resume()
                self.reload()
        self._show_status()

    def action_interval(self, step: int) -> None:
        index = min(range(len(INTERVALS)), key=lambda i: abs(INTERVALS[i] - self.interval))
        self.interval = INTERVALS[max(0, min(len(INTERVALS) - 1, index + step))]
        if self.timer is not None:
            self.timer.stop()
        self.timer = self.set_interval(self.interval, self._tick, pause=self.paused)
        self._show_status()

    def _show_status(self) -> None:
        state = ("[$warning]❚❚ paused[/] — p resumes" if self.paused else
                 f"[$success]●[/] live — every {self.interval:g} s · p pauses · +/- interval")
        updated = f" · figures of {moment(self.updated_at, seconds=True)} UTC" \
            if self.updated_at else ""
        self.query_one("#status", Static).update(state + updated)

    # ---------------------------------------------------------------- data
    async def fetch(self) -> None:
        metrics, jobs, schedules = await asyncio.gather(
            self.client.metrics(), self.client.jobs(limit=SAMPLE), self.client.schedules(),
            return_exceptions=True)
        errors = [a for a in (metrics, jobs, schedules) if isinstance(a, BaseException)]
        if isinstance(metrics, dict):
            self.metrics = metrics
        if isinstance(jobs, dict):
            self.jobs = list(jobs.get("jobs") or [])
        if isinstance(schedules, dict):
            self.schedules = list(schedules.get("schedules") or [])
        self.rerender()
        if errors:  # what did answer is shown; the first failure is told
            raise errors[0]

    def rerender(self) -> None:
        if self.metrics is not None:
            self.show_metrics(self.metrics)
        if self.jobs is not None:
            self.show_jobs(self.jobs)
        if self.schedules is not None:
            self.show_next_runs(self.schedules)
        self._show_status()

    def show_metrics(self, metrics: dict[str, Any]) -> None:
        self.updated_at = metrics.get("generatedAt")
        self._card("#card-jobs", _jobs_card(metrics.get("jobs") or {}))
        self._card("#card-failures", _failures_card(metrics.get("kpiFailureRates") or {}))
        self._card("#card-deliveries", _deliveries_card(metrics.get("deliveries") or {}))
        self._card("#card-llm", _llm_card(metrics.get("llm") or {}))
        self._card("#card-storage", _storage_card(metrics.get("storage") or {}))
        self._card("#card-queues", _queues_card(metrics.get("queues") or {}))
        self._card("#rates", _rates_card(metrics.get("kpiFailureRates") or {}))

    def _card(self, selector: str, markup: str) -> None:
        self.query_one(selector, Card).show(markup)

    def show_jobs(self, jobs: list[dict[str, Any]]) -> None:
        table = self.query_one("#recent", DataTable)
        variables = self.app.theme_variables
        current = table.cursor_row
        table.clear()
        for job in jobs[:RECENT]:
            status = str(job.get("status", ""))
            counts = job.get("kpiCounts") or {}
            total = sum(int(v) for v in counts.values())
            running = status in RUNNING
            missing = int(counts.get("failed", 0)) + int(counts.get("timed_out", 0))
            shown = (f"{status}…" if running else
                     f"{status} · {missing} missing" if missing else status)
            table.add_row(
                moment(job.get("createdAt"))[5:], plain(job.get("traceId")),
                toned_text(status, variables, shown, bold=status in ("partial", "failed")),
                Text(f"{counts.get('collected', 0)}/{total}"),
                Text(duration(job.get("durationS")) if not running else DASH),
                key=str(job.get("traceId")))
        if jobs:
            table.move_cursor(row=min(current, len(jobs[:RECENT]) - 1), animate=False)
        box = self.query_one("#recent-box")
        box.border_subtitle = NO_DATA if not jobs else f"{min(len(jobs), RECENT)} newest"
        durations = [float(j["durationS"]) for j in reversed(jobs)
                     if isinstance(j.get("durationS"), int | float)]
        sparkline = self.query_one(Sparkline)
        sparkline.data = durations
        sparkline.display = len(durations) > 1
        sparkline.styles.max_width = max(2, len(durations) * 2)
        caption = (f"{len(durations)} finished · shortest {duration(min(durations))} · "
                   f"median {duration(sorted(durations)[len(durations) // 2])} · "
                   f"longest {duration(max(durations))}") if durations else "no finished job yet"
        self.query_one("#durations-caption", Static).update(f"[$foreground-muted]{caption}[/]")

    def show_next_runs(self, schedules: list[dict[str, Any]]) -> None:
        now = self.admin.clock.now()
        runs = sorted((run, s) for s in schedules if s.get("active", True)
                      for run in (s.get("nextRuns") or [])[:2])
        lines = []
        for run, schedule in runs[:5]:
            lines.append(f"{moment(run)[5:]}  [$foreground-muted]{relative(run, now)}[/]\n"
                         f"  [$accent]{escape(str(schedule.get('id')))}[/] "
                         f"[$foreground-muted]{escape(str(schedule.get('description', '')))}[/]")
        self._card("#card-next", "\n".join(lines) if lines else
                   _muted("no active schedule: jobs run when asked (3 then n, or "
                          "`metric-stream run`)"))

    @on(DataTable.RowSelected, "#recent")
    def _open_job(self, event: DataTable.RowSelected) -> None:
        from metric_stream_tui.screens.job_detail import JobDetailScreen

        if event.row_key.value:
            self.app.push_screen(JobDetailScreen(event.row_key.value))


# ---------------------------------------------------------------- the cards' text
# a card holds 4 lines of 20 characters at 120 columns: each line says one thing
def _muted(text: str) -> str:
    return f"[$foreground-muted]{escape(text)}[/]"


def _jobs_card(jobs: dict[str, Any]) -> str:
    by_status: dict[str, int] = jobs.get("byStatus") or {}
    if not by_status:
        return _muted("no job yet")
    done = [toned(s, f"{by_status[s]} {s}") for s in ("complete", "partial", "failed")
            if by_status.get(s)]
    running = sum(v for k, v in by_status.items() if k in RUNNING)
    if running:
        done.append(toned("collecting", f"{running} running"))
    completion = jobs.get("completionS") or {}
    return "\n".join([done[0], " · ".join(done[1:]) or _muted("no partial/failed"),
                      f"median {duration(completion.get('median'))}",
                      _muted(f"p95 {duration(completion.get('p95'))}")])


def _failures_card(rates: dict[str, Any]) -> str:
    overall = rates.get("overall")
    if overall is None:
        return _muted("no KPI settled yet")
    kpis: dict[str, Any] = rates.get("kpis") or {}
    failing = sum(1 for r in kpis.values() if r.get("rate"))
    tone = "complete" if not overall else "partial" if overall < 0.1 else "failed"
    return "\n".join([toned(tone, f"{percent(overall)} missed"),
                      f"{failing} of {len(kpis)} KPIs missed",
                      "at least once",
                      _muted(f"over {rates.get('sampledJobs', 0)} jobs")])


def _deliveries_card(deliveries: dict[str, Any]) -> str:
    totals: dict[str, int] = deliveries.get("totals") or {}
    endpoints = deliveries.get("endpoints") or {}
    sent, failed = int(totals.get("sent", 0)), int(totals.get("failed", 0))
    tried = sent + failed
    if tried:
        head = toned("complete" if not failed else "partial" if sent else "failed",
                     f"{percent(sent / tried)} sent")
        counts = f"{sent} sent · {failed} failed"
    else:
        head, counts = _muted("nothing sent yet"), ""
    trouble = []
    if endpoints.get("failing"):
        trouble.append(toned("failed", f"{endpoints['failing']} failing"))
    if endpoints.get("disabled"):
        trouble.append(toned("partial", f"{endpoints['disabled']} disabled"))
    return "\n".join([head, counts,
                      f"{endpoints.get('active', 0)}/{endpoints.get('total', 0)} endpoints on",
                      " ".join(trouble) or _muted("last 5 jobs")])


def _llm_card(llm: dict[str, Any]) -> str:
    if not llm.get("jobs"):
        return "\n".join([_muted("no chain ran lately"), _muted("(no provider key,"),
                          _muted("or nothing analysed)")])
    latency = llm.get("latencyMs") or {}
    failed = int(llm.get("chainsFailed", 0))
    tokens = int(llm.get("inputTokens", 0)) + int(llm.get("outputTokens", 0))
    return "\n".join([
        f"median {duration(latency['median'] / 1000)}" if latency else "latency —",
        f"p95 {duration(latency['p95'] / 1000)}" if latency else "",
        f"{llm.get('calls', 0)} calls · {_short(tokens)} tok",
        toned("failed", f"{failed} chain{'s' if failed > 1 else ''} failed") if failed
        else _muted(f"over {llm['jobs']} jobs")])


def _short(count: int) -> str:
    return f"{count / 1e6:.1f}M" if count >= 1e6 else f"{count / 1e3:.1f}k" \
        if count >= 1e3 else str(count)


def _storage_card(storage: dict[str, Any]) -> str:
    backend = escape(str(storage.get("backend", "?")))
    if storage.get("totalBytes") is None:
        return f"{backend}\n" + _muted("sizes: CloudWatch")
    return "\n".join([f"[b]{size(storage['totalBytes'])}[/b] {backend}",
                      f"db    {size(storage.get('databaseBytes'))}",
                      f"blobs {size(storage.get('blobBytes'))}",
                      _muted(f"{storage.get('blobFiles', 0)} files")])


def _queues_card(queues: dict[str, Any]) -> str:
    if not queues:
        return _muted("no queue")
    lines = [_muted(f"{'stage':<10}{'wait':>6}{'run':>5}{'dead':>6}")]
    for name, depth in queues.items():
        dead = int(depth.get("deadLetters", 0))
        dead_text = toned("failed", f"{dead:>6}") if dead else f"{dead:>6}"
        lines.append(f"{escape(name):<10}{depth.get('visible', 0):>6}"
                     f"{depth.get('inFlight', 0):>5}{dead_text}")
    return "\n".join(lines)


def _rates_card(rates: dict[str, Any]) -> str:
    kpis: dict[str, Any] = rates.get("kpis") or {}
    worst = sorted(((r.get("rate") or 0, k, r) for k, r in kpis.items() if r.get("rate")),
                   key=lambda item: (-item[0], item[1]))[:5]
    if not worst:
        return _muted("no KPI missed" if kpis else "no KPI settled yet")
    return "\n".join(f"{toned('failed', f'{percent(rate):>6}')} {escape(_fit(kpi, 23))}"
                     for rate, kpi, _ in worst)


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"

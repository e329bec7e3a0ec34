"""A KPI, opened from the registry: its series as a terminal chart over a range
(`w` 7 days, `m` 30, `t` 90, `y` a year, `a` all) with its alert bounds, and its
figures over that range (latest value, low, high, change). A multi-KPI source shows
one series at a time (`n` the next)."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.widgets import Static
from textual_plotext import PlotextPlot

from metric_stream_tui.format import DASH, compact, moment, number, parse_time, toned
from metric_stream_tui.screens.base import AdminScreen


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About `count` round values (steps of 1, 2 or 5 times a power of ten) across
    [low, high]."""
    if high <= low:
        return [low]
    power = 10 ** math.floor(math.log10((high - low) / count))
    best: list[float] = []
    for step in (power, 2 * power, 5 * power, 10 * power):
        first = math.ceil(low / step) * step
        ticks = [round(first + i * step, 12) for i in range(int((high - first) // step) + 1)]
        if not best or abs(len(ticks) - count) < abs(len(best) - count):
            best = ticks
    return best


RANGES: dict[str, int | None] = {"7d": 7, "30d": 30, "90d": 90, "1y": 365, "all": None}
MAX_POINTS = 50_000


class KpiDetailScreen(AdminScreen):
    DEFAULT_CSS = """
    KpiDetailScreen #head { height: auto; padding: 0 1; margin-bottom: 1; }
    KpiDetailScreen #body { height: 1fr; }
    KpiDetailScreen PlotextPlot { width: 1fr; height: 1fr; }
    KpiDetailScreen #figures { width: 34; height: 1fr; padding: 0 1;
        border-left: tall $border-blurred; }
    KpiDetailScreen #ranges { height: 1; padding: 0 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("w", "range('7d')", "7d", show=False),
        Binding("m", "range('30d')", "30d", show=False),
        Binding("t", "range('90d')", "90d", show=False),
        Binding("y", "range('1y')", "1y", show=False),
        Binding("a", "range('all')", "All", show=False),
        Binding("n", "next_series", "Next series"),
        Binding("e", "edit", "Edit"),
        Binding("i", "import_csv", "Import CSV"),
    ]
    help_rows: ClassVar[list[tuple[str, str]]] = [
        ("w m t y a", "range: 7 days, 30 days, 90 days, a year, all")]

    def __init__(self, entry: dict[str, Any], *, range_name: str = "90d") -> None:
        super().__init__()
        self.entry = entry
        self.series = 0
        self.range_name = range_name
        self.points: list[dict[str, Any]] = []
        self.truncated = False

    @property
    def yields(self) -> list[str]:
        return [str(k) for k in self.entry.get("yields") or [self.entry.get("id")]]

    @property
    def kpi_id(self) -> str:
        return self.yields[self.series % len(self.yields)]

    def compose_body(self) -> ComposeResult:
        yield Static("", id="head")
        yield Static("", id="ranges")
        with Horizontal(id="body"):
            yield PlotextPlot(id="chart")
            with Vertical(id="figures"):
                yield Static("", id="analytics")

    async def fetch(self) -> None:
        self._show_head()
        days = RANGES[self.range_name]
        start = None
        if days:  # whole days: a daily series shows `days` points
            start = (self.admin.clock.now() - timedelta(days=days)).replace(
                hour=0, minute=0, second=0, microsecond=0)
        answer = await self.client.timeseries(self.kpi_id, start=start, limit=MAX_POINTS)
        self.points = list(answer.get("points") or [])
        self.truncated = bool(answer.get("truncated"))
        self.rerender()

    def rerender(self) -> None:
        self._show_head()
        self._show_ranges()
        self._plot()
        self._show_figures()

    def _show_head(self) -> None:
        entry = self.entry
        source = entry.get("source") or {}
        where = (f"n8n workflow {source.get('workflowId') or '?'}"
                 if source.get("kind") == "n8n" else f"collector {source.get('collector')}")
        active = toned("complete", "● active") if entry.get("active", True) else \
            toned("pending", "○ inactive")
        series = ""
        if len(self.yields) > 1:
            series = (f"\nseries {self.series % len(self.yields) + 1} of {len(self.yields)}: "
                      f"[b]{escape(self.kpi_id)}[/b] [$foreground-muted](n: next)[/]")
        description = str(entry.get("description") or "")
        self.query_one("#head", Static).update(
            f"[b]{escape(str(entry.get('name', '')))}[/b]  [$foreground-muted]"
            f"{escape(str(entry.get('id', '')))} · {escape(str(entry.get('kpiType', '')))} · "
            f"{escape(where)}{' · ' + escape(str(entry['unit'])) if entry.get('unit') else ''}"
            f"[/]  {active}{series}"
            + (f"\n[$foreground-muted]{escape(description)}[/]" if description else ""))

    def _show_ranges(self) -> None:
        keys = {"7d": "w", "30d": "m", "90d": "t", "1y": "y", "all": "a"}
        parts = [(f"[b $accent underline] {name} [/]" if name == self.range_name else
                  f"[@click=screen.range('{name}')] {name} [/]") + f"[$foreground-muted]{key}[/]"
                 for name, key in keys.items()]
        self.query_one("#ranges", Static).update("range  " + "  ".join(parts))

    def thresholds(self) -> tuple[float | None, float | None]:
        analysis = self.entry.get("analysisConfig") or {}
        specific = (analysis.get("indicators") or {}).get(self.kpi_id)
        if specific is not None:
            return specific.get("low"), specific.get("high")
        if len(self.yields) > 1:
            return None, None
        return analysis.get("low"), analysis.get("high")

    def _plot(self) -> None:
        chart = self.query_one(PlotextPlot)
        plt = chart.plt
        plt.clear_figure()
        plt.date_form("Y-m-d")
        values = [float(p["value"]) for p in self.points]
        if values:
            dates = [moment(p.get("timestamp"))[:10] for p in self.points]
            plt.plot(dates, values, marker="hd", color="cyan")
            ticks = nice_ticks(min(values), max(values))
            plt.yticks(ticks, [compact(t) for t in ticks])
            low, high = self.thresholds()
            span = (max(values) - min(values)) or abs(values[0]) or 1.0
            for bound, colour in ((low, "orange"), (high, "red")):
                # a bound far from the series would flatten it: the figures say it instead
                if bound is not None and min(values) - span / 2 <= bound <= max(values) + span / 2:
                    plt.hline(float(bound), colour)
        else:
            plt.title("no points in this range")
        plt.xlabel("")
        chart.refresh()

    def _show_figures(self) -> None:
        target = self.query_one("#analytics", Static)
        unit = str(self.entry.get("unit") or "")
        values = [float(p["value"]) for p in self.points]
        if not values:
            target.update(f"[b]{escape(self.kpi_id)}[/b]\n\n[$foreground-muted]No points in "
                          "the last " + self.range_name + ". `i` imports a CSV history; a job "
                          "adds one point a day.[/]")
            return
        latest = self.points[-1]
        first = values[0]
        change = values[-1] - first
        share = f" ({change / abs(first) * 100:+.2f}%)" if first else ""
        low, high = self.thresholds()
        alert = ""
        if high is not None and values[-1] > high:
            alert = toned("failed", f"above {number(high)}")
        elif low is not None and values[-1] < low:
            alert = toned("failed", f"below {number(low)}")
        elif low is not None or high is not None:
            alert = toned("complete", "within bounds")
        lowest = min(range(len(values)), key=values.__getitem__)
        highest = max(range(len(values)), key=values.__getitem__)
        first_day = parse_time(self.points[0].get("timestamp"))
        lines = [
            f"[b]{escape(self.kpi_id)}[/b]",
            "",
            "[$foreground-muted]latest[/]",
            f"[b]{number(values[-1])}[/b] {escape(unit)}",
            f"[$foreground-muted]{moment(latest.get('timestamp'))}[/]",
            alert,
            "",
            f"[$foreground-muted]over {self.range_name} ({len(values)} points)[/]",
            f"change  {'+' if change > 0 else ''}{number(change)}{share}",
            f"low     {number(values[lowest])} "
            f"[$foreground-muted]{moment(self.points[lowest].get('timestamp'))[:10]}[/]",
            f"high    {number(values[highest])} "
            f"[$foreground-muted]{moment(self.points[highest].get('timestamp'))[:10]}[/]",
            f"since   {first_day.date().isoformat() if first_day else DASH}",
            "",
            "[$foreground-muted]alert bounds[/]",
            f"below {number(low) if low is not None else DASH} · "
            f"above {number(high) if high is not None else DASH}",
        ]
        if self.truncated:
            lines.append(f"[$warning]only the first {MAX_POINTS:,} points[/]")
        target.update("\n".join(lines))

    # ---------------------------------------------------------------- actions
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "next_series":
            return len(self.yields) > 1  # hidden for a single series
        return True

    def action_back(self) -> None:
        self.dismiss()

    def action_range(self, name: str) -> None:
        if name in RANGES and name != self.range_name:
            self.range_name = name
            self.reload()

    def action_next_series(self) -> None:
        if len(self.yields) > 1:
            self.series = (self.series + 1) % len(self.yields)
            self.reload()

    def action_edit(self) -> None:
        from metric_stream_tui.screens.kpi_form import KpiForm

        self.app.push_screen(KpiForm(self.entry), self._edited)

    def _edited(self, entry: dict[str, Any] | None) -> None:
        if entry:
            self.entry = entry
            self.reload()

    def action_import_csv(self) -> None:
        from metric_stream_tui.screens.kpi_import import KpiImport

        self.app.push_screen(KpiImport(self.entry, kpi_id=self.kpi_id),
                             lambda _: self.reload())

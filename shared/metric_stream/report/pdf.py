"""The PDF report (reportlab platypus): cover and executive summary, the partial-data
disclaimer and DEMO banner, one section per KPI with its value table, chart, analytics
and AI-generated reading, and an appendix (sources, methodology, the job's timings).
Every section has a bookmark in the outline; every page has its number.

Charts are vector scenes (`charts.scene`) painted straight onto the page: no image is
rendered, compressed or embedded, which is what makes 200 charts cheap.

Text comes from KPI names, descriptions and LLM answers: all of it is escaped before it
reaches platypus' paragraph markup.
"""

from __future__ import annotations

import importlib.util
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    CondPageBreak,
    Flowable,
    Frame,
    Image,
    KeepTogether,
    PageBreak,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

from metric_stream.charts.render import format_value
from metric_stream.charts.scene import Scene, build_scene, draw_scene
from metric_stream.report.content import KpiSection, LlmReading, ReportData

PAGE_W, PAGE_H = A4
MARGIN = 16 * mm
BODY_W = PAGE_W - 2 * MARGIN
CHART_H = 150.0
MAX_NAME = 160
MAX_LLM_CHARS = 3000
MAX_ROWS = 25
DASH = "\u2013"  # an en dash: no value

INK = colors.HexColor("#202124")
MUTED = colors.HexColor("#5f6368")
RULE = colors.HexColor("#dadce0")
ACCENT = colors.HexColor("#1f5fa8")
RED = colors.HexColor("#c0392b")
GREEN = colors.HexColor("#2e8b57")
AMBER = colors.HexColor("#b9770e")
AI_BG = colors.HexColor("#f3f6fb")
DEMO_BG = colors.HexColor("#fdecea")
PARTIAL_BG = colors.HexColor("#fef5e7")


# ---------------------------------------------------------------- fonts and styles
@dataclass(frozen=True)
class Fonts:
    regular: str
    bold: str
    italic: str


@cache
def fonts() -> Fonts:
    """DejaVu Sans (the charts' font, shipped with matplotlib: wide Unicode coverage,
    subset-embedded) when it can be found without importing matplotlib; else the PDF
    base fonts."""
    spec = importlib.util.find_spec("matplotlib")
    folder = (Path(next(iter(spec.submodule_search_locations or ())), "mpl-data", "fonts", "ttf")
              if spec else None)
    faces = {"DejaVu": "DejaVuSans.ttf", "DejaVu-Bold": "DejaVuSans-Bold.ttf",
             "DejaVu-Oblique": "DejaVuSans-Oblique.ttf"}
    if folder is None or not all((folder / f).is_file() for f in faces.values()):
        return Fonts("Helvetica", "Helvetica-Bold", "Helvetica-Oblique")
    for name, file in faces.items():
        if name not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont(name, str(folder / file)))
    pdfmetrics.registerFontFamily("DejaVu", normal="DejaVu", bold="DejaVu-Bold",
                                  italic="DejaVu-Oblique", boldItalic="DejaVu-Bold")
    return Fonts("DejaVu", "DejaVu-Bold", "DejaVu-Oblique")


@dataclass(frozen=True)
class Styles:
    title: ParagraphStyle
    subtitle: ParagraphStyle
    h1: ParagraphStyle
    h2: ParagraphStyle
    body: ParagraphStyle
    small: ParagraphStyle
    cell: ParagraphStyle
    cell_right: ParagraphStyle
    ai: ParagraphStyle


@cache
def styles() -> Styles:
    f = fonts()
    body = ParagraphStyle("body", fontName=f.regular, fontSize=9, leading=12.5, textColor=INK,
                          alignment=TA_LEFT)
    return Styles(
        title=ParagraphStyle("title", parent=body, fontName=f.bold, fontSize=26, leading=31),
        subtitle=ParagraphStyle("subtitle", parent=body, fontSize=11, leading=15,
                                textColor=MUTED),
        h1=ParagraphStyle("h1", parent=body, fontName=f.bold, fontSize=15, leading=19,
                          spaceBefore=8, spaceAfter=6, textColor=ACCENT),
        h2=ParagraphStyle("h2", parent=body, fontName=f.bold, fontSize=12, leading=15,
                          spaceBefore=4, spaceAfter=1),
        body=body,
        small=ParagraphStyle("small", parent=body, fontSize=7.5, leading=10, textColor=MUTED),
        cell=ParagraphStyle("cell", parent=body, fontSize=8, leading=10),
        cell_right=ParagraphStyle("cell_right", parent=body, fontSize=8, leading=10,
                                  alignment=TA_RIGHT),
        ai=ParagraphStyle("ai", parent=body, fontSize=8.5, leading=11.5, backColor=AI_BG,
                          borderPadding=5, spaceBefore=6, spaceAfter=6),
    )


def text(value: object, limit: int | None = None) -> str:
    """Plain text made safe for paragraph markup (and shortened to `limit`)."""
    raw = " ".join(str(value).split())
    if limit is not None and len(raw) > limit:
        raw = raw[: limit - 1].rstrip() + "…"
    return escape(raw)


# ---------------------------------------------------------------- flowables
class ChartFlowable(Flowable):
    """A vector chart scene, scaled to the frame's width."""

    def __init__(self, scene: Scene) -> None:
        super().__init__()
        self.scene = scene
        self.width, self.height = scene.width, scene.height

    def wrap(self, available_width: float, available_height: float) -> tuple[float, float]:
        return self.width, self.height

    def draw(self) -> None:
        f = fonts()
        draw_scene(self.canv, self.scene, 0, 0, font=f.regular, bold_font=f.bold)


class Bookmark(Flowable):
    """An outline entry (PDF bookmark) pointing at where it is drawn."""

    def __init__(self, key: str, title: str, level: int = 0) -> None:
        super().__init__()
        self.key, self.title, self.level = key, title, level
        self.width = self.height = 0

    def draw(self) -> None:
        self.canv.bookmarkPage(self.key)
        self.canv.addOutlineEntry(self.title, self.key, level=self.level, closed=self.level == 0)


def _callout(paragraphs: Sequence[Flowable], background: colors.Color, border: colors.Color
             ) -> Table:
    table = Table([[p] for p in paragraphs], colWidths=[BODY_W])
    table.setStyle(TableStyle([
        ("BACKGROUND", (0, 0), (-1, -1), background),
        ("LINEBEFORE", (0, 0), (0, -1), 3, border),
        ("LEFTPADDING", (0, 0), (-1, -1), 8),
        ("TOPPADDING", (0, 0), (-1, -1), 3),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
    ]))
    return table


def _grid(rows: list[list[Any]], widths: Sequence[float], *, header: bool = True,
          align_right_from: int = 1) -> Table:
    f = fonts()
    table = Table(rows, colWidths=list(widths), repeatRows=1 if header else 0)
    commands: list[tuple[Any, ...]] = [
        ("FONT", (0, 0), (-1, -1), f.regular, 8),
        ("TEXTCOLOR", (0, 0), (-1, -1), INK),
        ("ALIGN", (align_right_from, 0), (-1, -1), "RIGHT"),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("LINEBELOW", (0, 0), (-1, -1), 0.4, RULE),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]
    if header:
        commands += [("FONT", (0, 0), (-1, 0), f.bold, 7.5), ("TEXTCOLOR", (0, 0), (-1, 0), MUTED)]
    table.setStyle(TableStyle(commands))
    return table


# ---------------------------------------------------------------- numbers
def pct(value: Any, *, signed: bool = True) -> str:
    if not isinstance(value, int | float):
        return DASH
    if round(value, 1) == 0:
        value = 0.0  # no "-0.0%"
    return f"{value:+.1f}%" if signed else f"{value:.1f}%"


def num(value: Any, unit: str = "") -> str:
    if not isinstance(value, int | float):
        return DASH
    return format_value(float(value), unit)


def _by_window(items: Iterable[Mapping[str, Any]], window: int) -> Mapping[str, Any]:
    return next((i for i in items if i.get("windowDays") == window), {})


def when(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


# ---------------------------------------------------------------- the document
class _Doc(BaseDocTemplate):
    def __init__(self, buffer: io.BytesIO, report: ReportData) -> None:
        title = f"Daily Index Report {report.created_at:%Y-%m-%d}"
        super().__init__(buffer, pagesize=A4, leftMargin=MARGIN, rightMargin=MARGIN,
                         topMargin=MARGIN + 4, bottomMargin=MARGIN, title=title,
                         author="metric-stream", subject=f"job {report.trace_id}",
                         creator="metric-stream", pageCompression=1, invariant=1)
        self.report = report
        frame = Frame(MARGIN, MARGIN, BODY_W, PAGE_H - 2 * MARGIN - 4, id="body",
                      leftPadding=0, rightPadding=0, topPadding=0, bottomPadding=0)
        self.addPageTemplates([PageTemplate("page", [frame], onPage=self._decorate)])

    def _decorate(self, canvas: Canvas, doc: BaseDocTemplate) -> None:
        f = fonts()
        canvas.saveState()
        canvas.setFont(f.regular, 7)
        canvas.setFillColor(MUTED)
        label = f"Daily Index Report · {self.report.created_at:%d %B %Y} · {self.report.trace_id}"
        if self.report.demo:
            label += " · DEMO DATA"
        canvas.drawString(MARGIN, MARGIN - 9 * mm, label)
        canvas.drawRightString(PAGE_W - MARGIN, MARGIN - 9 * mm, f"Page {doc.page}")
        if self.report.demo:
            canvas.setFillColor(RED)
            canvas.setFont(f.bold, 7)
            canvas.drawRightString(PAGE_W - MARGIN, PAGE_H - MARGIN + 2,
                                   "DEMO — not market data")
        canvas.restoreState()


@dataclass(frozen=True)
class RenderedPdf:
    data: bytes
    pages: int


def render_pdf(report: ReportData, images: Mapping[str, bytes] | None = None) -> RenderedPdf:
    """The report as PDF bytes. Charts are drawn as vectors, except for KPIs whose chart
    is given in `images` (PNG bytes by KPI id), which are embedded as pictures."""
    buffer = io.BytesIO()
    doc = _Doc(buffer, report)
    story: list[Flowable] = []
    story += cover(report)
    story += executive_summary(report)
    story.append(PageBreak())
    story.append(Bookmark("indicators", "Indicators"))
    for index, section in enumerate(report.sections):
        story += kpi_section(section, index, (images or {}).get(section.kpi_id))
    story.append(PageBreak())
    story += appendix(report)
    doc.build(story)
    return RenderedPdf(buffer.getvalue(), doc.page)


# ---------------------------------------------------------------- cover and summary
def cover(report: ReportData) -> list[Flowable]:
    s = styles()
    collected = len(report.sections)
    total = collected + len(report.missing)
    status = {"complete": ("Complete", GREEN), "partial": ("Partial", AMBER)}.get(
        report.status, (report.status.capitalize(), MUTED))
    out: list[Flowable] = [
        Bookmark("cover", "Cover and summary"),
        Spacer(1, 18 * mm),
        Paragraph("Daily Index Report", s.title),
        Paragraph(f"{report.created_at:%A %d %B %Y}", s.subtitle),
        Spacer(1, 6 * mm),
        _grid([
            ["Status", Paragraph(f'<font color="{status[1].hexval()}"><b>{status[0]}</b></font>',
                                 s.cell)],
            ["Indicators", f"{collected} of {total} collected"],
            ["Job trace", report.trace_id],
            ["Generated", when(report.created_at)],
            ["LLM analysis", _llm_status_text(report)],
        ], [35 * mm, BODY_W - 35 * mm], header=False, align_right_from=2),
        Spacer(1, 5 * mm),
    ]
    if report.demo:
        out.append(_callout([Paragraph(
            "<b>DEMO DATA.</b> Every value in this report comes from metric-stream's built-in "
            "demo source: deterministic, generated data for trying the tool. It is not market "
            "data and must not be used for decisions.", s.body)], DEMO_BG, RED))
        out.append(Spacer(1, 4 * mm))
    if report.missing:
        out += partial_disclaimer(report)
    return out


def _llm_status_text(report: ReportData) -> str:
    return {
        "ok": "on: AI-generated readings are marked as such",
        "partial": "partly available: some readings failed and are left out",
        "failed": "failed: the report carries the computed analytics only",
        "off": "off: no LLM provider key is configured",
        "skipped": "skipped: no analysis chain could run with the configured provider keys",
    }.get(report.llm_status, report.llm_status)


def partial_disclaimer(report: ReportData) -> list[Flowable]:
    s = styles()
    rows = [[text(m.name, 60), text(m.kpi_id, 40), Paragraph(text(m.reason, 300), s.cell)]
            for m in report.missing[:MAX_ROWS]]
    paragraphs: list[Flowable] = [
        Paragraph(f"<b>{text(report.disclaimer)}</b>", s.body),
        Spacer(1, 2),
        _grid([["Indicator", "KPI id", "Why it is missing"], *rows],
              [50 * mm, 38 * mm, BODY_W - 88 * mm - 12], align_right_from=9),
    ]
    if len(report.missing) > MAX_ROWS:
        paragraphs.append(Paragraph(f"… and {len(report.missing) - MAX_ROWS} more "
                                    "(listed in the appendix).", s.small))
    return [_callout(paragraphs, PARTIAL_BG, AMBER), Spacer(1, 4 * mm)]


def executive_summary(report: ReportData) -> list[Flowable]:
    s = styles()
    out: list[Flowable] = [Bookmark("summary", "Executive summary", 1),
                           Paragraph("Executive summary", s.h1)]
    reading = report.consolidated_llm
    if reading is not None and reading.status == "ok" and reading.summary:
        out += ai_reading(reading, "AI-generated overview")
    elif reading is not None and reading.status == "failed":
        out.append(Paragraph("The AI-generated overview is missing: the consolidated LLM "
                             f"analysis failed ({text(reading.reason or 'no reason', 200)}). "
                             "Every figure below is computed.", s.small))
    out += alerts_table(report)
    out += movers_tables(report)
    out += correlations_table(report)
    return out


def alerts_table(report: ReportData) -> list[Flowable]:
    s = styles()
    alerts = list(report.consolidated.get("alerts") or [])
    if not alerts:
        return [Paragraph("Alerts", s.h2),
                Paragraph("No indicator crossed its thresholds.", s.body)]
    rows: list[list[Any]] = [["Indicator", "Alert", "Value", "Threshold"]]
    for alert in alerts[:MAX_ROWS]:
        kpi = str(alert.get("kpiId", ""))
        unit = report.units.get(kpi, "")
        kind = "above high" if alert.get("kind") == "high" else "below low"
        rows.append([Paragraph(text(report.name_of(kpi), 70), s.cell),
                     Paragraph(f'<font color="{RED.hexval()}">{kind}</font>', s.cell),
                     num(alert.get("value"), unit), num(alert.get("threshold"), unit)])
    out: list[Flowable] = [Paragraph(f"Alerts ({len(alerts)})", s.h2),
                           _grid(rows, [80 * mm, 30 * mm, 35 * mm, BODY_W - 145 * mm],
                                 align_right_from=2)]
    if len(alerts) > MAX_ROWS:
        out.append(Paragraph(f"… and {len(alerts) - MAX_ROWS} more alerts in the "
                             "indicator sections.", s.small))
    return out


def movers_tables(report: ReportData) -> list[Flowable]:
    s = styles()
    movers = report.consolidated.get("topMovers") or {}
    rows: list[list[Any]] = [["Window", "Indicator", "Change", "Latest"]]
    for window in ("1d", "7d", "30d"):
        for mover in movers.get(window, []):
            kpi = str(mover.get("kpiId", ""))
            percent = mover.get("percent")
            color = GREEN if isinstance(percent, int | float) and percent >= 0 else RED
            flag = " ⚠" if mover.get("alerting") else ""
            rows.append([window, Paragraph(text(report.name_of(kpi), 70) + flag, s.cell),
                         Paragraph(f'<font color="{color.hexval()}">{pct(percent)}</font>',
                                   s.cell_right),
                         num(mover.get("latestValue"), report.units.get(kpi, ""))])
    if len(rows) == 1:
        return [Paragraph("Top movers", s.h2),
                Paragraph("Not enough history to rank movers yet.", s.body)]
    return [Paragraph("Top movers", s.h2),
            _grid(rows, [18 * mm, 92 * mm, 25 * mm, BODY_W - 135 * mm], align_right_from=2)]


def correlations_table(report: ReportData) -> list[Flowable]:
    s = styles()
    correlations = report.consolidated.get("correlations") or {}
    rows: list[list[Any]] = [["Window", "Indicators", "r", "Days"]]
    for window in ("30d", "90d"):
        for pair in list(correlations.get(window, []))[:6]:
            names = (f"{text(report.name_of(str(pair.get('kpiA'))), 45)} ↔ "
                     f"{text(report.name_of(str(pair.get('kpiB'))), 45)}")
            r = pair.get("r")
            rows.append([window, Paragraph(names, s.cell),
                         f"{r:+.2f}" if isinstance(r, int | float) else DASH, str(pair.get("n"))])
    if len(rows) == 1:
        return []
    return [Paragraph("Strongest correlations", s.h2),
            _grid(rows, [18 * mm, 112 * mm, 20 * mm, BODY_W - 150 * mm], align_right_from=2)]


def ai_reading(reading: LlmReading, label: str) -> list[Flowable]:
    s = styles()
    models = f" ({text(', '.join(dict.fromkeys(reading.models)), 120)})" if reading.models else ""
    body = text(reading.summary or "", MAX_LLM_CHARS)
    return [Paragraph(f'<font size="7" color="{MUTED.hexval()}"><b>{label.upper()}</b>{models}'
                      f" — machine-written; check it against the figures.</font><br/>{body}",
                      s.ai)]


# ---------------------------------------------------------------- KPI sections
def kpi_section(section: KpiSection, index: int, image: bytes | None = None) -> list[Flowable]:
    s = styles()
    key = f"kpi-{index}"
    a = section.analytics
    subtitle = " · ".join(x for x in (text(section.kpi_id, 60), text(section.source, 60),
                                      text(section.unit, 20)) if x)
    head: list[Flowable] = [
        CondPageBreak(CHART_H + 110),
        Bookmark(key, " ".join(section.name.split())[:MAX_NAME], 1),
        Paragraph(text(section.name, MAX_NAME), s.h2),
        Paragraph(subtitle, s.small),
    ]
    if section.description:
        head.append(Paragraph(text(section.description, 400), s.small))
    head += [Spacer(1, 3), value_table(section)]
    out: list[Flowable] = [KeepTogether(head)]
    if image is not None:
        out.append(Image(io.BytesIO(image), width=BODY_W, height=BODY_W * 0.4))
    elif section.chart is not None:
        try:
            out.append(ChartFlowable(build_scene(section.chart, BODY_W, CHART_H)))
        except ValueError as exc:
            out.append(Paragraph(text(f"{section.chart_note or 'Chart unavailable.'} ({exc})"),
                                 s.small))
    else:
        out.append(Paragraph(text(section.chart_note or "Chart unavailable for this cycle."),
                             s.small))
    notes = analytics_notes(a, section.unit)
    if notes:
        out.append(Paragraph(" · ".join(notes), s.small))
    reading = section.llm
    if reading is not None and reading.status == "ok" and reading.summary:
        out += ai_reading(reading, "AI-generated reading")
    elif reading is not None and reading.status in ("failed", "skipped"):
        out.append(Paragraph(f"No AI-generated reading: the analysis chain {reading.status} "
                             f"({text(reading.reason or 'no reason given', 200)}).", s.small))
    out.append(Spacer(1, 6))
    return out


def value_table(section: KpiSection) -> Table:
    a = section.analytics
    changes = a.get("changes") or []
    volatility = _by_window(a.get("volatility") or [], 30)
    trend = a.get("trend") or {}
    header = ["Latest", "1 day", "7 days", "30 days", "Volatility 30d", "Trend 30d",
              "Range pos.", "Percentile"]
    vol = volatility.get("value")
    trend_text = (f"{trend.get('direction', DASH)} ({trend.get('strength', DASH)})"
                  if trend else DASH)
    position = a.get("position")
    row = [
        num(section.value, section.unit),
        *(pct(_by_window(changes, w).get("percent")) for w in (1, 7, 30)),
        pct(vol * 100, signed=False) if isinstance(vol, int | float) else DASH,
        trend_text,
        pct(position * 100, signed=False) if isinstance(position, int | float) else DASH,
        pct(a.get("percentileRank"), signed=False),
    ]
    widths = [0.16, 0.09, 0.09, 0.09, 0.13, 0.18, 0.12, 0.14]
    return _grid([header, row], [w * BODY_W for w in widths], align_right_from=0)


def analytics_notes(a: Mapping[str, Any], unit: str) -> list[str]:
    notes: list[str] = []
    for alert in a.get("alerts") or []:
        word = "above its high" if alert.get("kind") == "high" else "below its low"
        notes.append(f'<font color="{RED.hexval()}"><b>Alert:</b> {num(alert.get("value"), unit)}'
                     f" is {word} threshold {num(alert.get('threshold'), unit)}</font>")
    sma_short, sma_long = a.get("smaShort"), a.get("smaLong")
    if isinstance(sma_short, int | float) and isinstance(sma_long, int | float):
        notes.append(f"7-day average {num(sma_short, unit)}, 30-day {num(sma_long, unit)}")
    for crossing in (a.get("crossings") or [])[-2:]:
        kind = "golden cross" if crossing.get("kind") == "golden" else "death cross"
        notes.append(f"{kind} on {text(crossing.get('date', ''))}")
    zscore = a.get("zscore")
    if a.get("outlier") and isinstance(zscore, int | float):
        notes.append(f"<b>outlier</b>: z-score {zscore:+.1f} against the last 30 days")
    low, high = a.get("minimum"), a.get("maximum")
    if isinstance(low, int | float) and isinstance(high, int | float):
        notes.append(f"history range {num(low, unit)} \u2013 {num(high, unit)} "
                     f"({a.get('count', 0)} points)")
    missing = a.get("missingDays") or 0
    if missing:
        gaps = len(a.get("gaps") or [])
        notes.append(f"{missing} day{'s' if missing != 1 else ''} missing in the history "
                     f"({gaps} gap{'s' if gaps != 1 else ''})")
    stale = a.get("daysSinceLatest")
    if isinstance(stale, int | float) and stale >= 2:
        notes.append(f"latest value is {stale:.0f} days old")
    if (a.get("count") or 0) < 2:
        notes.append("one point only: changes and trends need more history")
    return notes


# ---------------------------------------------------------------- appendix
METHODOLOGY = (
    "Changes compare the latest value with the last value at or before 1, 7 and 30 days "
    "earlier (percent = change / reference). Volatility is the sample standard deviation of "
    "daily log returns (simple returns when a value is zero or negative) over 30 days. "
    "The trend is a least-squares line over the last 30 days: its direction is flat when "
    "the fitted move over 30 days is within 1 % of the mean; its strength comes from r² "
    "(below 0.3 weak, below 0.7 moderate, else strong). Range position places the latest "
    "value between the history's minimum (0 %) and maximum (100 %); the percentile is the "
    "share of history at or below it. Moving averages are simple 7- and 30-day means; a "
    "golden (death) cross is the 7-day average moving above (below) the 30-day one. An "
    "outlier is a latest value 3 or more standard deviations from its 30-day mean. "
    "Alerts fire when the latest value is above the high or below the low threshold set "
    "for the indicator. Correlations are Pearson's r over the days on which both "
    "indicators have a value. AI-generated readings come from the configured language "
    "models given these figures (and the chart); they are marked, and may be wrong."
)


def appendix(report: ReportData) -> list[Flowable]:
    s = styles()
    out: list[Flowable] = [Bookmark("appendix", "Appendix"), Paragraph("Appendix", s.h1),
                           Paragraph("Sources", s.h2)]
    rows: list[list[Any]] = [["Indicator", "Source", "KPI ids"]]
    for line in report.sources:
        rows.append([Paragraph(text(line.name, 80), s.cell), Paragraph(text(line.source, 80),
                                                                        s.cell),
                     Paragraph(text(", ".join(line.kpi_ids), 300), s.cell)])
    if len(rows) > 1:
        out.append(_grid(rows, [60 * mm, 50 * mm, BODY_W - 110 * mm], align_right_from=9))
    if report.missing:
        out.append(Paragraph(f"Missing indicators ({len(report.missing)})", s.h2))
        out.append(_grid([["KPI id", "Why it is missing"],
                          *[[text(m.kpi_id, 50), Paragraph(text(m.reason, 300), s.cell)]
                            for m in report.missing]],
                         [50 * mm, BODY_W - 50 * mm], align_right_from=9))
    out += [Paragraph("Methodology", s.h2), Paragraph(METHODOLOGY, s.body),
            Paragraph("Job timings", s.h2)]
    timing_rows: list[list[Any]] = [["Stage", "Started", "Finished", "Seconds"]]
    for timing in report.timings:
        seconds = timing.seconds
        timing_rows.append([timing.stage, when(timing.started_at),
                            when(timing.finished_at) if timing.finished_at
                            else "in progress (this report)",
                            f"{seconds:.2f}" if seconds is not None else DASH])
    out.append(_grid(timing_rows, [35 * mm, 50 * mm, 50 * mm, BODY_W - 135 * mm],
                     align_right_from=3))
    usage = report.llm_usage
    if usage:
        out.append(Paragraph(
            "LLM usage: " + text(", ".join(f"{k} {v}" for k, v in usage.items()), 400), s.small))
    out.append(Spacer(1, 6))
    out.append(Paragraph(f"Job {text(report.trace_id)}, generated {when(report.created_at)} "
                         "by metric-stream.", s.small))
    return out

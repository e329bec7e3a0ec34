"""The PDF report, read back as text (pypdf): sections, values, disclaimers, outline and
page numbers; awkward KPIs and hostile names render without breaking anything."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from pypdf import PdfReader

from metric_stream.analytics import analyse_series
from metric_stream.charts.render import ChartSpec
from metric_stream.models.kpi import Thresholds
from metric_stream.models.timeseries import DataPoint
from metric_stream.report.content import (
    KpiSection,
    LlmReading,
    MissingKpi,
    ReportData,
    SourceLine,
    StageTime,
)
from metric_stream.report.pdf import render_pdf

NOW = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)


def section(kpi_id: str, values: list[float], *, name: str | None = None, unit: str = "USD",
            thresholds: Thresholds | None = None, llm: LlmReading | None = None,
            chart: bool = True) -> KpiSection:
    points = [DataPoint(kpi_id=kpi_id, timestamp=NOW - timedelta(days=len(values) - 1 - i),
                        value=v) for i, v in enumerate(values)]
    analytics = analyse_series(points, thresholds=thresholds, now=NOW).to_wire()
    spec = ChartSpec(title=name or kpi_id, series={kpi_id: [(p.timestamp, p.value)
                                                            for p in points]}, unit=unit,
                     high=thresholds.high if thresholds else None,
                     low=thresholds.low if thresholds else None) if chart and values else None
    return KpiSection(kpi_id=kpi_id, name=name or kpi_id.upper(), value=values[-1],
                      timestamp=NOW, analytics=analytics, unit=unit, source="built-in collector",
                      chart=spec, chart_note=None if spec else "Chart unavailable for this cycle.",
                      llm=llm)


def read(data: bytes) -> tuple[PdfReader, str]:
    reader = PdfReader(io.BytesIO(data))
    return reader, "\n".join(page.extract_text() or "" for page in reader.pages)


def flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def report(**overrides: object) -> ReportData:
    sections = [
        section("btc-price", [60_000 + i * 100 for i in range(120)],
                name="Bitcoin price", thresholds=Thresholds(high=70_000),
                llm=LlmReading("ok", {"synthesis": "Bitcoin kept climbing all quarter."},
                               ("anthropic/claude-sonnet-4-5",))),
        section("fear-greed", [40 + (i % 9) for i in range(40)], name="Fear & Greed",
                unit="index", llm=LlmReading("failed", reason="HTTP 429 after 2 retries")),
    ]
    base: dict[str, object] = dict(  # noqa: C408 (keyword form reads like the dataclass)
        trace_id="trace_20261129_060000_abcdef", created_at=NOW, status="partial",
        sections=sections, demo=True,
        missing=[MissingKpi("mvrv", "MVRV ratio", "failed: upstream answered 503")],
        disclaimer="Partial data: some indicators could not be collected.",
        consolidated={"alerts": [{"kpiId": "btc-price", "kind": "high", "threshold": 70_000,
                                  "value": 71_900}],
                      "topMovers": {"1d": [{"kpiId": "fear-greed", "percent": 12.5,
                                            "latestValue": 44, "alerting": False}]}},
        consolidated_llm=LlmReading("ok", {"synthesis": "Risk appetite rose across markets."},
                                    ("gemini/gemini-2.5-flash",)),
        llm_status="partial",
        timings=[StageTime("collecting", NOW, NOW + timedelta(seconds=4)),
                 StageTime("analysing", NOW + timedelta(seconds=4), NOW + timedelta(seconds=6))],
        sources=[SourceLine("Bitcoin price", "built-in collector coingecko", ["btc-price"])],
        names={"btc-price": "Bitcoin price", "fear-greed": "Fear & Greed"},
        units={"btc-price": "USD", "fear-greed": "index"},
    )
    base.update(overrides)
    return ReportData(**base)  # type: ignore[arg-type]


def test_the_report_reads_right() -> None:
    rendered = render_pdf(report())
    reader, text = read(rendered.data)
    words = flat(text)
    assert rendered.pages == len(reader.pages) >= 3
    assert "Daily Index Report" in words and "Sunday 29 November 2026" in words
    assert "trace_20261129_060000_abcdef" in words
    assert "DEMO DATA" in words and "not market data" in words
    assert "Partial data: some indicators could not be collected." in words
    assert "MVRV ratio" in words and "upstream answered 503" in words
    assert "Executive summary" in words and "AI-GENERATED OVERVIEW" in words
    assert "Risk appetite rose across markets." in words
    assert "Alerts (1)" in words and "$71,900" in words
    assert "Bitcoin price" in words and "Fear & Greed" in words
    assert "$71,900" in words  # the latest value in its section's table
    assert "AI-GENERATED READING" in words and "Bitcoin kept climbing all quarter." in words
    assert "No AI-generated reading: the analysis chain failed (HTTP 429" in words
    assert "Methodology" in words and "Job timings" in words
    for number in range(1, rendered.pages + 1):
        assert f"Page {number}" in words


def test_the_outline_has_a_bookmark_per_section() -> None:
    reader, _ = read(render_pdf(report()).data)

    def titles(items: list[object]) -> list[str]:
        out: list[str] = []
        for item in items:
            out += titles(item) if isinstance(item, list) else [item.title]  # type: ignore[attr-defined]
        return out

    outline = titles(reader.outline)  # type: ignore[arg-type]
    assert outline[:2] == ["Cover and summary", "Executive summary"]
    assert {"Indicators", "Bitcoin price", "Fear & Greed", "Appendix"} <= set(outline)


def test_llm_off_is_said_and_nothing_ai_is_shown() -> None:
    sections = [section("btc-price", [1.0, 2.0, 3.0])]
    _, text = read(render_pdf(report(sections=sections, llm_status="off", consolidated_llm=None,
                                     demo=False, missing=[], status="complete")).data)
    words = flat(text)
    assert "off: no LLM provider key is configured" in words
    assert "AI-GENERATED" not in words and "DEMO" not in words and "Partial data" not in words


@pytest.mark.parametrize("values", [[42.0], [7.0] * 40, [1e15, 3e15], [-250.5, -120.25],
                                    [1e-9, 1e12]])
def test_awkward_series_render(values: list[float]) -> None:
    data = render_pdf(report(sections=[section("odd", values)])).data
    _, text = read(data)
    assert "ODD" in text


def test_hostile_and_long_names_render_as_text() -> None:
    hostile = "<b>bold</b> & <script>alert(1)</script> **md** [x](http://evil)"
    long_name = "L" * 500
    sections = [section("hostile", [1.0, 2.0], name=hostile),
                section("long", [1.0, 2.0], name=long_name),
                section("no-chart", [5.0], chart=False)]
    _, text = read(render_pdf(report(sections=sections, names={"hostile": hostile})).data)
    words = flat(text)
    assert "<b>bold</b> & <script>alert(1)</script>" in words
    assert "Chart unavailable for this cycle." in words
    assert "L" * 100 in text.replace("\n", "")  # shortened, not dropped


def test_two_hundred_sections_make_one_document() -> None:
    sections = [section(f"kpi-{i:03d}", [100.0 + i + d % 5 for d in range(60)])
                for i in range(200)]
    rendered = render_pdf(report(sections=sections))
    reader, text = read(rendered.data)
    assert "KPI-000" in text and "KPI-199" in text
    assert rendered.pages == len(reader.pages) > 50

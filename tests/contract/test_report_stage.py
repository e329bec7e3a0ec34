"""Analysis and packaging on every backend: charts stored before the report, the PDF in
the blob store with its document record and link, the channel messages in the
consolidated package, LLM analysis off without keys."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta

import httpx
import pytest
from pypdf import PdfReader

from metric_stream.bootstrap import Services
from metric_stream.charts.wire import specs_from_json
from metric_stream.clock import ManualClock
from metric_stream.collectors.demo import demo_registry, seed_history
from metric_stream.errors import NotFound
from metric_stream.models import Job, JobStatus, KpiDefinition, N8nSource
from metric_stream.services import admin, cycle
from metric_stream.services.analysis import report_charts_key
from metric_stream.services.stages import default_workers


def run_job(services: Services, clock: ManualClock, *, with_failure: bool = True) -> str:
    entries = demo_registry(3)
    for entry in entries:
        services.registry.kpis.create(entry)
    if with_failure:
        services.registry.kpis.create(KpiDefinition(
            id="n8n-down", name="Hash rate <b>&", kpi_type="price",
            source=N8nSource(webhook_url="http://169.254.169.254/hook")))
    seed_history(services, entries, 90, (clock.now() - timedelta(days=1)).date())
    with httpx.Client() as http:
        job, _ = cycle.start_job(services, cycle.Triggers(http))
    workers = default_workers()
    for queue in ("analysis", "packaging", "delivery"):
        cycle.consume(services, queue, workers, wait_seconds=1)
    return job.trace_id


def test_the_report_and_messages_are_stored(services: Services, clock: ManualClock) -> None:
    trace_id = run_job(services, clock)
    job = services.jobs.require(trace_id)
    assert job.status is JobStatus.PARTIAL

    packages = services.packages.list(trace_id)
    assert packages
    for package in packages:
        assert package.chart_key is not None
        chart = services.charts.get(package.chart_key)
        assert chart is not None and chart.trace_id == trace_id and not chart.fallback
        assert chart.format == "svg"  # no image step without an LLM: the vector chart
        assert services.blobs.get(chart.blob_key).startswith(b"<svg")
        assert package.analysis == {"status": "off",
                                    "reason": "no LLM provider key is configured"}

    document = services.packages.document(trace_id)
    assert document is not None and document.pages and document.pages >= 3
    data = services.blobs.get(document.blob_key)
    assert data.startswith(b"%PDF") and len(data) == document.size_bytes
    assert document.url
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) == document.pages
    text = re.sub(r"\s+", " ", " ".join(p.extract_text() or "" for p in reader.pages))
    assert "Daily Index Report" in text and trace_id in text
    assert "Hash rate <b>&" in text and "n8n-down" in text  # the missing KPI, named
    for package in packages:
        assert package.kpi_id in text
    assert "off: no LLM provider key is configured" in text

    consolidated = services.packages.consolidated(trace_id)
    assert consolidated is not None and consolidated.messages is not None
    messages = consolidated.messages
    assert set(messages) == {"email", "telegram", "discord", "slack", "sms", "webhook"}
    json.dumps(messages, allow_nan=False)
    assert len(messages["sms"]) <= 160
    assert messages["webhook"]["traceId"] == trace_id
    assert "n8n-down" in json.dumps(messages["webhook"])
    assert consolidated.analysis is not None
    assert consolidated.analysis["llm"]["status"] == "off"

    detail = admin.job_detail(services, trace_id)  # what GET /api/jobs/{traceId} answers
    assert detail["llm"] == {"status": "off", "reason": "no LLM provider key is configured"}
    assert detail["messages"] == sorted(messages)
    assert detail["document"]["pages"] == document.pages


def test_the_report_link_fits_the_backend(services: Services, clock: ManualClock) -> None:
    trace_id = run_job(services, clock, with_failure=False)
    document = services.packages.document(trace_id)
    assert document is not None and document.url
    if services.settings.backend == "aws":
        assert "X-Amz-Signature=" in document.url and "X-Amz-Expires=604800" in document.url
    else:
        assert document.url.startswith("file://") and document.url.endswith(f"{trace_id}.pdf")
    assert services.jobs.require(trace_id).status is JobStatus.COMPLETE


def _pdf_text(services: Services, trace_id: str) -> str:
    document = services.packages.document(trace_id)
    assert document is not None
    reader = PdfReader(io.BytesIO(services.blobs.get(document.blob_key)))
    return re.sub(r"\s+", " ", " ".join(p.extract_text() or "" for p in reader.pages))


def analysed_job(services: Services, clock: ManualClock, kpis: int, days: int) -> Job:
    """A demo job of `kpis` KPIs with `days` of history, through its analysis stage."""
    entries = demo_registry(kpis)
    for entry in entries:
        services.registry.kpis.create(entry)
    seed_history(services, entries, days, (clock.now() - timedelta(days=1)).date())
    with httpx.Client() as http:
        job, _ = cycle.start_job(services, cycle.Triggers(http))
    cycle.consume(services, "analysis", default_workers(), wait_seconds=1)
    return job


def test_packaging_draws_the_charts_the_analysis_saw(services: Services, clock: ManualClock,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The analysis hands its chart specs to the packaging stage (one blob), which draws
    them without reading the points again, then forgets them."""
    job = analysed_job(services, clock, 3, 90)
    key = report_charts_key(job.trace_id)
    specs = specs_from_json(services.blobs.get(key))
    analysed = {p.kpi_id for p in services.packages.list(job.trace_id)}
    assert set(specs) == analysed and all(s is not None and s.series for s in specs.values())

    read: list[str] = []
    points = services.timeseries.points
    monkeypatch.setattr(services.timeseries, "points",
                        lambda kpi_id, **kw: read.append(kpi_id) or points(kpi_id, **kw))
    cycle.consume(services, "packaging", default_workers(), wait_seconds=1)
    assert read == []
    assert services.jobs.require(job.trace_id).status is JobStatus.DELIVERING
    with pytest.raises(NotFound):
        services.blobs.get(key)
    assert all(k in _pdf_text(services, job.trace_id) for k in analysed)


@pytest.mark.parametrize("damage", ["missing", "unreadable"])
def test_packaging_reads_the_points_without_the_analysis_charts(
        services: Services, clock: ManualClock, monkeypatch: pytest.MonkeyPatch,
        damage: str) -> None:
    job = analysed_job(services, clock, 2, 30)
    key = report_charts_key(job.trace_id)
    if damage == "missing":
        services.blobs.delete(key)
    else:
        services.blobs.put(key, b'{"version": 1, "specs": {"x": {"series": 3}}}',
                           content_type="application/json")
    read: list[str] = []
    points = services.timeseries.points
    monkeypatch.setattr(services.timeseries, "points",
                        lambda kpi_id, **kw: read.append(kpi_id) or points(kpi_id, **kw))
    cycle.consume(services, "packaging", default_workers(), wait_seconds=1)
    assert sorted(read) == sorted(p.kpi_id for p in services.packages.list(job.trace_id))
    document = services.packages.document(job.trace_id)
    assert document is not None and document.pages

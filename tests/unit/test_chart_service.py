"""The chart service: ids, retries with backoff, the configured fallback, idempotent
re-stores, generate requests and the health check (embedded backend, real renderer)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from metric_stream.bootstrap import Services
from metric_stream.charts.render import ChartFormat, ChartSpec, fallback_chart, render_chart
from metric_stream.clock import ManualClock
from metric_stream.errors import InvalidInput, NotFound, StorageUnavailable
from metric_stream.models import (
    CollectorSource,
    DataPoint,
    FallbackConfig,
    KpiDefinition,
    N8nSource,
    RetryPolicy,
    SystemConfig,
)
from metric_stream.models.base import ID_PATTERN
from metric_stream.models.kpi import AnalysisConfig
from metric_stream.services import charts
from metric_stream.services.charts import (
    chart_health,
    chart_request,
    generate_chart,
    job_chart_id,
    new_chart_id,
    store_chart,
)
from tests.conftest import make_services

PNG = b"\x89PNG\r\n\x1a\n"
POLICY = RetryPolicy(retries=3, delays_s=[1, 2, 4])
IMAGE = FallbackConfig(chart="image")
TEXT = FallbackConfig(chart="text", chart_text="No chart today.")
DAY0 = datetime(2026, 9, 1, tzinfo=UTC)


class FlakyBlobs:
    """Wraps the services' blob store: the first `failures` puts fail (-1: all do)."""

    def __init__(self, services: Services, failures: int) -> None:
        self.inner = services.blobs
        self.failures = failures
        self.puts = 0
        original = self.inner._put

        def put(key: str, data: bytes, content_type: str) -> None:
            self.puts += 1
            if self.failures < 0 or self.puts <= self.failures:
                raise StorageUnavailable("the disk is on fire")
            original(key, data, content_type)

        self.inner._put = put  # type: ignore[method-assign]


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def services(tmp_path: Path, clock: ManualClock) -> Services:
    return make_services("embedded", tmp_path, clock)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def spec(days: int = 40, **changes: Any) -> ChartSpec:
    points = [(DAY0 + timedelta(days=d), 100.0 + d) for d in range(days)]
    return ChartSpec(title="BTC price", series={"btc-price": points} if days else {}, **changes)


def store(services: Services, sleeps: Sleeps, chart_spec: ChartSpec, *,
          fmt: ChartFormat = "png", fallback: FallbackConfig = IMAGE,
          chart_id: str = "chart_1", **extra: Any) -> Any:
    return store_chart(services, chart_spec, fmt=fmt, chart_id=chart_id, kpi_id="btc-price",
                       policy=POLICY, fallback=fallback, sleep=sleeps, **extra)


def counting_renderer(monkeypatch: pytest.MonkeyPatch,
                      fail: Callable[[int], Exception | None] = lambda n: None) -> list[int]:
    """Replace the service's renderer: calls are counted, `fail(n)` may raise on call n."""
    calls: list[int] = []

    def render(chart_spec: ChartSpec, *, fmt: ChartFormat = "png") -> bytes:
        calls.append(len(calls) + 1)
        error = fail(len(calls))
        if error is not None:
            raise error
        return render_chart(chart_spec, fmt=fmt)

    monkeypatch.setattr(charts, "render_chart", render)
    return calls


# ---------------------------------------------------------------- ids
def test_job_chart_ids_are_deterministic_valid_and_distinct() -> None:
    first = job_chart_id("trace_20261129_060000_abcdef", "btc-price")
    assert first == job_chart_id("trace_20261129_060000_abcdef", "btc-price")
    assert first.startswith("trace_20261129_060000_abcdef.btc-price.")
    assert job_chart_id("a.b", "c") != job_chart_id("a", "b.c")
    long_trace = "t" * 128
    ids = {job_chart_id(long_trace, f"{'k' * 120}{n}") for n in range(5)}
    assert len(ids) == 5
    assert all(ID_PATTERN.fullmatch(i) and len(i) <= 128 for i in [first, *ids])
    with pytest.raises(InvalidInput) as refused:
        job_chart_id("trace/../x", "btc")
    assert refused.value.field == "traceId"


def test_new_chart_ids_sort_by_time_and_are_unique() -> None:
    now = datetime(2026, 11, 29, 6, 0, 1, tzinfo=UTC)
    made = {new_chart_id(now) for _ in range(50)}
    assert len(made) == 50
    assert all(i.startswith("chart_20261129_060001_") and ID_PATTERN.fullmatch(i) for i in made)


# ---------------------------------------------------------------- store_chart
@pytest.mark.parametrize(("fmt", "magic", "content_type"), [
    ("png", PNG, "image/png"), ("svg", b"<svg", "image/svg+xml")])
def test_a_chart_is_drawn_stored_and_recorded(services: Services, sleeps: Sleeps,
                                              fmt: ChartFormat, magic: bytes,
                                              content_type: str) -> None:
    record = store(services, sleeps, spec(), fmt=fmt, trace_id="trace_1",
                   params={"source": "test"})
    assert record.format == fmt and record.content_type == content_type
    assert record.blob_key == f"charts/chart_1.{fmt}"
    assert (record.fallback, record.reason, record.attempts) == (False, None, 1)
    assert record.trace_id == "trace_1" and record.params == {"source": "test"}
    assert magic in services.blobs.get(record.blob_key)[:512]
    assert services.charts.get("chart_1") == record
    assert sleeps == []


def test_storing_is_retried_with_the_policy_delays_and_draws_once(
        services: Services, sleeps: Sleeps, monkeypatch: pytest.MonkeyPatch) -> None:
    renders = counting_renderer(monkeypatch)
    blobs = FlakyBlobs(services, failures=2)
    record = store(services, sleeps, spec())
    assert sleeps == [1, 2]
    assert blobs.puts == 3 and len(renders) == 1
    assert (record.fallback, record.attempts) == (False, 3)
    assert services.blobs.get(record.blob_key).startswith(PNG)


def test_drawing_is_retried_then_the_fallback_image_stands_in(
        services: Services, sleeps: Sleeps, monkeypatch: pytest.MonkeyPatch) -> None:
    renders = counting_renderer(monkeypatch, fail=lambda n: RuntimeError(f"boom {n}"))
    record = store(services, sleeps, spec(), fmt="svg")
    assert sleeps == [1, 2, 4] and len(renders) == 4
    assert record.fallback and record.attempts == 4
    assert record.reason == "drawing failed: RuntimeError: boom 4"
    assert (record.format, record.blob_key) == ("svg", "charts/chart_1.svg")
    image = services.blobs.get(record.blob_key).decode()
    assert "<svg" in image and "boom 4" in image and "Chart unavailable" in image


def test_a_transient_drawing_failure_is_recovered(
        services: Services, sleeps: Sleeps, monkeypatch: pytest.MonkeyPatch) -> None:
    counting_renderer(monkeypatch, fail=lambda n: MemoryError() if n == 1 else None)
    record = store(services, sleeps, spec())
    assert (record.fallback, record.attempts, sleeps) == (False, 2, [1])


def test_the_text_fallback(services: Services, sleeps: Sleeps,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    counting_renderer(monkeypatch, fail=lambda n: RuntimeError("no fonts"))
    record = store(services, sleeps, spec(), fallback=TEXT)
    assert record.fallback and record.format == "text"
    assert record.content_type == "text/plain; charset=utf-8"
    assert record.blob_key == "charts/chart_1.txt"
    text = services.blobs.get(record.blob_key).decode("utf-8")
    assert text == "No chart today. (drawing failed: RuntimeError: no fonts)"


def test_nothing_to_draw_goes_straight_to_the_fallback(services: Services,
                                                       sleeps: Sleeps) -> None:
    record = store(services, sleeps, spec(days=0), fallback=TEXT)
    assert sleeps == [] and record.attempts == 0
    assert record.fallback and record.reason == "chart 'BTC price' has no points to draw"
    image = store(services, sleeps, spec(days=0), chart_id="chart_2")
    assert image.format == "png" and services.blobs.get(image.blob_key).startswith(PNG)
    assert sleeps == []


def test_another_renderer_can_draw_and_can_refuse(services: Services, sleeps: Sleeps) -> None:
    drawn: list[ChartFormat] = []

    def vector(chart_spec: ChartSpec, fmt: ChartFormat) -> bytes:
        drawn.append(fmt)
        return b"<svg xmlns='http://www.w3.org/2000/svg'/>"

    record = store(services, sleeps, spec(), fmt="svg", render=vector)
    assert drawn == ["svg"] and not record.fallback
    assert services.blobs.get(record.blob_key) == b"<svg xmlns='http://www.w3.org/2000/svg'/>"

    def refuses(chart_spec: ChartSpec, fmt: ChartFormat) -> bytes:
        raise ValueError("too many series")

    refused = store(services, sleeps, spec(), render=refuses, fallback=TEXT)
    assert (refused.fallback, refused.attempts, refused.reason) == (True, 1, "too many series")
    assert sleeps == []
    assert services.blobs.keys("charts/") == ["charts/chart_1.txt"]


def test_a_broken_renderer_still_leaves_the_text_fallback(
        services: Services, sleeps: Sleeps, monkeypatch: pytest.MonkeyPatch) -> None:
    counting_renderer(monkeypatch, fail=lambda n: RuntimeError("no backend"))

    def broken_fallback(*args: Any, **kwargs: Any) -> bytes:
        raise RuntimeError("no backend either")

    monkeypatch.setattr(charts, "fallback_chart", lambda s, config, reason, fmt: (
        broken_fallback() if config.chart == "image" else fallback_chart(s, config, reason, fmt)))
    record = store(services, sleeps, spec())
    assert record.fallback and record.format == "text"
    assert record.reason is not None and "fallback image failed too" in record.reason
    assert services.blobs.get(record.blob_key).startswith(b"Chart unavailable")


def test_a_dead_blob_store_records_nothing(services: Services, sleeps: Sleeps) -> None:
    FlakyBlobs(services, failures=-1)
    with pytest.raises(StorageUnavailable):
        store(services, sleeps, spec())
    assert sleeps == [1, 2, 4]
    assert services.charts.get("chart_1") is None


def test_storing_again_replaces_the_chart_and_its_old_file(services: Services, sleeps: Sleeps,
                                                           clock: ManualClock) -> None:
    first = store(services, sleeps, spec(days=0), fallback=TEXT)
    assert services.blobs.keys("charts/") == ["charts/chart_1.txt"]
    clock.advance(60)
    second = store(services, sleeps, spec())
    assert not second.fallback and second.created_at > first.created_at
    assert services.charts.get("chart_1") == second
    assert services.blobs.keys("charts/") == ["charts/chart_1.png"]
    again = store(services, sleeps, spec())
    assert services.blobs.keys("charts/") == ["charts/chart_1.png"]
    assert services.blobs.get(again.blob_key) == services.blobs.get(second.blob_key)


def test_store_chart_refuses_unsafe_ids(services: Services, sleeps: Sleeps) -> None:
    with pytest.raises(InvalidInput) as refused:
        store(services, sleeps, spec(), chart_id="../../etc/passwd")
    assert refused.value.field == "chartId"


# ---------------------------------------------------------------- generate
@pytest.mark.parametrize(("body", "field"), [
    ({}, "kpiId"),
    ({"kpiId": "btc-price", "colour": "red"}, "colour"),
    ({"kpiId": "btc price"}, "kpiId"),
    ({"kpiId": "btc-price", "format": "gif"}, "format"),
    ({"kpiId": "btc-price", "format": "text"}, "format"),
    ({"kpiId": "btc-price", "type": "pie"}, "type"),
    ({"kpiId": "btc-price", "from": "2026-01-01T00:00:00"}, "from"),
    ({"kpiId": "btc-price", "to": "yesterday"}, "to"),
    ({"kpiId": "btc-price", "days": 0}, "days"),
    ({"kpiId": "btc-price", "days": 3651}, "days"),
    ({"kpiId": "btc-price", "days": "30"}, "days"),
    ({"kpiId": "btc-price", "days": 30, "from": "2026-01-01T00:00:00Z"}, "days"),
    ({"kpiId": "btc-price", "from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
     "from"),
])
def test_chart_requests_name_the_wrong_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        chart_request(body)
    assert refused.value.field == field, refused.value.message


def test_a_chart_request_must_be_an_object() -> None:
    with pytest.raises(InvalidInput, match="JSON object"):
        chart_request(["btc-price"])


def test_chart_request_defaults() -> None:
    request = chart_request({"kpiId": "btc-price", "to": "2026-01-01T01:00:00+01:00"})
    assert (request.format, request.type, request.days, request.start) == ("png", None, None,
                                                                            None)
    assert request.end == datetime(2026, 1, 1, tzinfo=UTC)


def seed(services: Services, entry: KpiDefinition, days: int, end: datetime,
         **metadata: Any) -> None:
    for kpi_id in entry.yields:
        services.timeseries.append_many([
            DataPoint(kpi_id=kpi_id, timestamp=end - timedelta(days=d), value=100.0 + d,
                      metadata=dict(metadata)) for d in range(days)])


def n8n_kpi(kpi_id: str = "btc-price", **changes: Any) -> KpiDefinition:
    return KpiDefinition(id=kpi_id, name="BTC price", kpi_type="price", unit="USD",
                         source=N8nSource(webhook_url="https://n8n.example.com/hook"),
                         **changes)


def test_generate_reads_the_last_365_days_by_default(services: Services, clock: ManualClock,
                                                     sleeps: Sleeps) -> None:
    services.registry.kpis.create(n8n_kpi())
    seed(services, n8n_kpi(), 500, clock.now())
    record = generate_chart(services, {"kpiId": "btc-price"}, sleep=sleeps)
    assert record.chart_id.startswith("chart_20261129_060000_")
    assert not record.fallback and record.kpi_id == "btc-price" and record.trace_id is None
    assert record.params == {"kpiId": "btc-price", "format": "png",
                             "from": "2025-11-29T06:00:00.000000Z", "points": 366,
                             "kind": "line", "demo": False}
    assert services.charts.get(record.chart_id) == record
    assert services.blobs.get(record.blob_key).startswith(PNG)


def test_generate_with_a_range_a_type_and_demo_points(services: Services, clock: ManualClock,
                                                      sleeps: Sleeps) -> None:
    services.registry.kpis.create(n8n_kpi())
    seed(services, n8n_kpi(), 100, clock.now(), demo=True)
    record = generate_chart(services, {
        "kpiId": "btc-price", "format": "svg", "type": "bar",
        "from": "2026-11-01T00:00:00Z", "to": "2026-11-10T00:00:00Z"}, sleep=sleeps)
    assert record.format == "svg"
    assert record.params["points"] == 9 and record.params["kind"] == "bar"
    assert record.params["to"] == "2026-11-10T00:00:00.000000Z"
    assert record.params["demo"] is True
    assert b"DEMO" in services.blobs.get(record.blob_key)
    week = generate_chart(services, {"kpiId": "btc-price", "days": 7}, sleep=sleeps)
    assert week.params["points"] == 8  # both ends are inclusive


def test_generate_a_multi_kpi_source_as_multi_line(services: Services, clock: ManualClock,
                                                   sleeps: Sleeps) -> None:
    entry = KpiDefinition(id="cbbi-multi", name="CBBI", kpi_type="cbbi",
                          source=CollectorSource(collector="demo"),
                          kpi_ids=["cbbi-mvrv", "cbbi-rhodl"],
                          analysis_config=AnalysisConfig(chart_type="line"))
    services.registry.kpis.create(entry)
    seed(services, entry, 30, clock.now())
    whole = generate_chart(services, {"kpiId": "cbbi-multi"}, sleep=sleeps)
    assert whole.params["kind"] == "multi-line" and whole.params["points"] == 60
    assert whole.params["demo"] is True  # the demo collector's entry
    one = generate_chart(services, {"kpiId": "cbbi-rhodl", "type": "candlestick"}, sleep=sleeps)
    assert one.params["kind"] == "line"  # no OHLC metadata: drawn as a line
    with pytest.raises(InvalidInput) as refused:
        generate_chart(services, {"kpiId": "cbbi-multi", "type": "bar"}, sleep=sleeps)
    assert refused.value.field == "type"


def test_generate_refuses_an_unknown_kpi(services: Services, sleeps: Sleeps) -> None:
    with pytest.raises(NotFound) as missing:
        generate_chart(services, {"kpiId": "nope"}, sleep=sleeps)
    assert missing.value.field == "kpiId"
    assert services.blobs.keys("charts/") == []


def test_generate_uses_the_configured_retries_and_fallback(
        services: Services, clock: ManualClock, sleeps: Sleeps) -> None:
    services.registry.kpis.create(n8n_kpi())
    config = SystemConfig.model_validate({"fallback": {"chart": "text"},
                                          "retry": {"chart": {"retries": 1, "delaysS": [0.5]}}})
    services.config.put(config, clock.now())
    FlakyBlobs(services, failures=2)  # both tries of the chart fail; the fallback is stored
    seed(services, n8n_kpi(), 10, clock.now())
    record = generate_chart(services, {"kpiId": "btc-price"}, sleep=sleeps)
    assert sleeps == [0.5] and record.attempts == 2
    assert record.fallback and record.format == "text"
    assert record.reason == "storing failed: StorageUnavailable: the disk is on fire"


# ---------------------------------------------------------------- health
def test_health_draws_both_formats_and_probes_the_blob_store(services: Services) -> None:
    health = chart_health(services)
    assert health["status"] == "ok" and health["blobStore"] == "ok"
    assert health["renderer"].startswith("matplotlib ")
    assert health["formats"] == ["png", "svg"]
    assert set(health["renderMs"]) == {"png", "svg"}
    assert "errors" not in health
    assert services.blobs.keys() == []  # the probe file is gone


def test_health_is_degraded_when_a_part_fails(services: Services,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    FlakyBlobs(services, failures=-1)
    counting_renderer(monkeypatch, fail=lambda n: RuntimeError("svg broke") if n == 2 else None)
    health = chart_health(services)
    assert health["status"] == "degraded"
    assert health["blobStore"] == "StorageUnavailable: the disk is on fire"
    assert health["formats"] == ["png"]
    assert health["errors"] == {"svg": "RuntimeError: svg broke"}

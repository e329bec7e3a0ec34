"""Stored charts (`store_chart`, `ChartStore`, the health probe) on every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from metric_stream.bootstrap import Services
from metric_stream.charts.render import ChartSpec
from metric_stream.models import FallbackConfig, RetryPolicy
from metric_stream.services.charts import chart_health, job_chart_id, store_chart

DAY0 = datetime(2026, 9, 1, tzinfo=UTC)


def test_store_chart_and_store_it_again(services: Services) -> None:
    chart_id = job_chart_id("trace_20261129_060000_abcdef", "btc-price")
    points = [(DAY0 + timedelta(days=d), 97_000.0 + 10 * d) for d in range(30)]
    policy = RetryPolicy(retries=1, delays_s=[0])
    text = FallbackConfig(chart="text")

    empty = store_chart(services, ChartSpec(title="BTC"), fmt="png", chart_id=chart_id,
                        kpi_id="btc-price", trace_id="trace_20261129_060000_abcdef",
                        policy=policy, fallback=text, params={"days": 30, "ratio": 0.5})
    assert services.charts.get(chart_id) == empty
    assert empty.fallback and empty.blob_key == f"charts/{chart_id}.txt"
    assert empty.params == {"days": 30, "ratio": 0.5}

    drawn = store_chart(services, ChartSpec(title="BTC", series={"btc-price": points}),
                        fmt="svg", chart_id=chart_id, kpi_id="btc-price",
                        trace_id="trace_20261129_060000_abcdef", policy=policy, fallback=text)
    assert services.charts.get(chart_id) == drawn
    assert not drawn.fallback and drawn.content_type == "image/svg+xml"
    assert services.blobs.keys("charts/") == [f"charts/{chart_id}.svg"]
    assert b"<svg" in services.blobs.get(drawn.blob_key)[:512]
    assert services.charts.get("chart_missing") is None


def test_chart_health_probes_the_blob_store(services: Services) -> None:
    health = chart_health(services)
    assert health["status"] == "ok" and health["blobStore"] == "ok"
    assert services.blobs.keys("charts/") == []

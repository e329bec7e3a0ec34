"""The analysis stage on every backend: each collected KPI's package gets its analytics,
the consolidated package the alerts, movers and correlations; failed KPIs are left out."""

from __future__ import annotations

from datetime import timedelta

import httpx

from metric_stream.bootstrap import Services
from metric_stream.clock import ManualClock
from metric_stream.collectors.demo import demo_registry, seed_history
from metric_stream.models import JobStatus, KpiDefinition, N8nSource
from metric_stream.services import cycle
from metric_stream.services.stages import default_workers


def test_analysis_fills_packages_and_the_consolidated_package(services: Services,
                                                              clock: ManualClock) -> None:
    entries = demo_registry(4)
    entries[0] = entries[0].model_copy(update={"analysis_config": entries[0].analysis_config
                                               .model_copy(update={"high": 1.0, "low": None})})
    for entry in entries:
        services.registry.kpis.create(entry)
    services.registry.kpis.create(KpiDefinition(
        id="n8n-down", name="down", kpi_type="price",
        source=N8nSource(webhook_url="http://169.254.169.254/hook")))
    seed_history(services, entries, 60, (clock.now() - timedelta(days=1)).date())
    with httpx.Client() as http:
        job, _ = cycle.start_job(services, cycle.Triggers(http))
    workers = default_workers()
    for queue in ("analysis", "packaging", "delivery"):
        cycle.consume(services, queue, workers, wait_seconds=1)
    done = services.jobs.require(job.trace_id)
    assert done.status is JobStatus.PARTIAL

    alerted = entries[0].yields[0]
    package = services.packages.get(job.trace_id, alerted)
    assert package is not None and package.analytics is not None
    assert package.analytics["latestValue"] == package.value
    assert package.analytics["count"] == 61  # 60 days of history and today's point
    assert [c["windowDays"] for c in package.analytics["changes"]] == [1, 7, 30]
    consolidated = services.packages.consolidated(job.trace_id)
    assert consolidated is not None
    assert consolidated.missing_kpi_ids == ["n8n-down"]
    assert any(a["kpiId"] == alerted and a["kind"] == "high"
               for a in consolidated.analytics["alerts"])
    movers = consolidated.analytics["topMovers"]["1d"]
    assert movers and movers[0]["kpiId"] == alerted  # alerts first
    assert "n8n-down" not in {m["kpiId"] for m in movers}
    assert consolidated.analytics["correlations"]["30d"]

"""The analysis stage: the deterministic analytics of every collected KPI of a job, and
across KPIs the top movers, alerts and correlations (the consolidated package).

Charts and the LLM analysis chains join this stage with the rest of the analysis
issue. Per-KPI results are written to the job's packages (idempotent puts); the
consolidated package is the stage's done-record, committed with the job's move on.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from metric_stream.analytics import SeriesAnalytics, analyse_series, correlations, top_movers
from metric_stream.bootstrap import Services
from metric_stream.models.job import Job
from metric_stream.models.report import ConsolidatedPackage
from metric_stream.models.timeseries import DataPoint
from metric_stream.ports import Op, Put
from metric_stream.storage import keys
from metric_stream.storage.collection import to_item

HISTORY = timedelta(days=400)  # a year of history, and the 30-day windows before it


def analyse_job(services: Services, job: Job) -> Sequence[Op]:
    sources = services.registry.kpi_sources()
    packages = {p.kpi_id: p for p in services.packages.list(job.trace_id)}
    series: dict[str, list[DataPoint]] = {}
    analytics: dict[str, SeriesAnalytics] = {}
    for kpi_id in job.kpi_ids:
        if kpi_id not in packages:
            continue  # failed or timed out: the report says so
        points = services.timeseries.points(kpi_id, start=job.created_at - HISTORY,
                                            end=job.created_at + timedelta(days=1))
        entry = sources.get(kpi_id)
        thresholds = entry.thresholds_for(kpi_id) if entry else None
        analytics[kpi_id] = analyse_series(points, thresholds=thresholds, now=job.created_at)
        series[kpi_id] = points
    now = services.clock.now()
    services.records.put_many([
        Put(keys.package(job.trace_id, kpi_id), to_item(packages[kpi_id].model_copy(
            update={"analytics": result.to_wire(), "updated_at": now})))
        for kpi_id, result in analytics.items()])
    alerts = [{"kpiId": kpi_id, **alert.to_wire()}
              for kpi_id, result in analytics.items() for alert in result.alerts]
    consolidated = ConsolidatedPackage(
        trace_id=job.trace_id, kpi_ids=list(job.kpi_ids), missing_kpi_ids=job.missing,
        created_at=now,
        analytics={
            "alerts": alerts,
            "outliers": [k for k, r in analytics.items() if r.outlier],
            "topMovers": {f"{w}d": [m.to_wire() for m in top_movers(analytics, w, 5,
                                                                    alerts_first=True)]
                          for w in (1, 7, 30)},
            "correlations": {f"{d}d": [c.to_wire() for c in correlations(series, d)[:20]]
                             for d in (30, 90)},
        })
    return [Put(keys.consolidated(job.trace_id), to_item(consolidated))]

"""The data contract and the records metric-stream keeps, as pydantic v2 models.

Names are loaded on first use: a handler that needs only the wire models does not pay
for building every other model at import (cold starts count).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from metric_stream.models.base import (
        AdminModel,
        FiniteNumber,
        Id,
        KpiId,
        Timestamp,
        TraceId,
        WireModel,
        iso,
        parse,
        problems_of,
        utc_now,
    )
    from metric_stream.models.chart import ChartRecord
    from metric_stream.models.config import (
        AnalysisChain,
        AnalysisStep,
        FallbackConfig,
        JobLifecycleConfig,
        RetryConfig,
        RetryPolicy,
        SystemConfig,
    )
    from metric_stream.models.delivery import (
        DeliveryEndpoint,
        DeliveryRecord,
        DeliveryStatus,
        EndpointHealth,
        mask_url,
    )
    from metric_stream.models.job import (
        Job,
        JobStatus,
        KpiState,
        KpiStatus,
        StageTiming,
        new_trace_id,
    )
    from metric_stream.models.kpi import (
        AnalysisConfig,
        CollectorSource,
        KpiDefinition,
        N8nSource,
        Thresholds,
    )
    from metric_stream.models.report import ConsolidatedPackage, DocumentRecord, KpiPackage
    from metric_stream.models.schedule import Schedule, check_cron
    from metric_stream.models.timeseries import DataPoint, ImportRowError, ImportState, ImportStatus
    from metric_stream.models.wire import (
        ChartRef,
        DataObject,
        ErrorReport,
        KpiResult,
        KpiTrigger,
        MultiKpiResult,
        MultiKpiTrigger,
        parse_result,
    )

_WHERE = {
    "AdminModel": "metric_stream.models.base",
    "AnalysisChain": "metric_stream.models.config",
    "AnalysisConfig": "metric_stream.models.kpi",
    "AnalysisStep": "metric_stream.models.config",
    "ChartRecord": "metric_stream.models.chart",
    "ChartRef": "metric_stream.models.wire",
    "CollectorSource": "metric_stream.models.kpi",
    "ConsolidatedPackage": "metric_stream.models.report",
    "DataObject": "metric_stream.models.wire",
    "DataPoint": "metric_stream.models.timeseries",
    "DeliveryEndpoint": "metric_stream.models.delivery",
    "DeliveryRecord": "metric_stream.models.delivery",
    "DeliveryStatus": "metric_stream.models.delivery",
    "DocumentRecord": "metric_stream.models.report",
    "EndpointHealth": "metric_stream.models.delivery",
    "ErrorReport": "metric_stream.models.wire",
    "FallbackConfig": "metric_stream.models.config",
    "FiniteNumber": "metric_stream.models.base",
    "Id": "metric_stream.models.base",
    "ImportRowError": "metric_stream.models.timeseries",
    "ImportState": "metric_stream.models.timeseries",
    "ImportStatus": "metric_stream.models.timeseries",
    "Job": "metric_stream.models.job",
    "JobLifecycleConfig": "metric_stream.models.config",
    "JobStatus": "metric_stream.models.job",
    "KpiDefinition": "metric_stream.models.kpi",
    "KpiId": "metric_stream.models.base",
    "KpiPackage": "metric_stream.models.report",
    "KpiResult": "metric_stream.models.wire",
    "KpiState": "metric_stream.models.job",
    "KpiStatus": "metric_stream.models.job",
    "KpiTrigger": "metric_stream.models.wire",
    "MultiKpiResult": "metric_stream.models.wire",
    "MultiKpiTrigger": "metric_stream.models.wire",
    "N8nSource": "metric_stream.models.kpi",
    "RetryConfig": "metric_stream.models.config",
    "RetryPolicy": "metric_stream.models.config",
    "Schedule": "metric_stream.models.schedule",
    "StageTiming": "metric_stream.models.job",
    "SystemConfig": "metric_stream.models.config",
    "Thresholds": "metric_stream.models.kpi",
    "Timestamp": "metric_stream.models.base",
    "TraceId": "metric_stream.models.base",
    "WireModel": "metric_stream.models.base",
    "check_cron": "metric_stream.models.schedule",
    "iso": "metric_stream.models.base",
    "mask_url": "metric_stream.models.delivery",
    "new_trace_id": "metric_stream.models.job",
    "parse": "metric_stream.models.base",
    "parse_result": "metric_stream.models.wire",
    "problems_of": "metric_stream.models.base",
    "utc_now": "metric_stream.models.base",
}

__all__ = [
    "AdminModel",
    "AnalysisChain",
    "AnalysisConfig",
    "AnalysisStep",
    "ChartRecord",
    "ChartRef",
    "CollectorSource",
    "ConsolidatedPackage",
    "DataObject",
    "DataPoint",
    "DeliveryEndpoint",
    "DeliveryRecord",
    "DeliveryStatus",
    "DocumentRecord",
    "EndpointHealth",
    "ErrorReport",
    "FallbackConfig",
    "FiniteNumber",
    "Id",
    "ImportRowError",
    "ImportState",
    "ImportStatus",
    "Job",
    "JobLifecycleConfig",
    "JobStatus",
    "KpiDefinition",
    "KpiId",
    "KpiPackage",
    "KpiResult",
    "KpiState",
    "KpiStatus",
    "KpiTrigger",
    "MultiKpiResult",
    "MultiKpiTrigger",
    "N8nSource",
    "RetryConfig",
    "RetryPolicy",
    "Schedule",
    "StageTiming",
    "SystemConfig",
    "Thresholds",
    "Timestamp",
    "TraceId",
    "WireModel",
    "check_cron",
    "iso",
    "mask_url",
    "new_trace_id",
    "parse",
    "parse_result",
    "problems_of",
    "utc_now",
]


def __getattr__(name: str) -> Any:
    try:
        module = _WHERE[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value

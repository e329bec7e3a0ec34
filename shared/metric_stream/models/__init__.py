"""The data contract and the records metric-stream keeps, as pydantic v2 models."""

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
from metric_stream.models.job import Job, JobStatus, KpiState, KpiStatus, StageTiming, new_trace_id
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

__all__ = [
    "AdminModel", "AnalysisChain", "AnalysisConfig", "AnalysisStep", "ChartRef",
    "CollectorSource", "ConsolidatedPackage", "DataObject", "DataPoint", "DeliveryEndpoint",
    "DeliveryRecord", "DeliveryStatus", "DocumentRecord", "EndpointHealth", "ErrorReport",
    "FallbackConfig", "FiniteNumber", "Id", "ImportRowError", "ImportState", "ImportStatus",
    "Job", "JobLifecycleConfig", "JobStatus", "KpiDefinition", "KpiId", "KpiPackage",
    "KpiResult", "KpiState", "KpiStatus", "KpiTrigger", "MultiKpiResult", "MultiKpiTrigger",
    "N8nSource", "RetryConfig", "RetryPolicy", "Schedule", "StageTiming", "SystemConfig",
    "Thresholds", "Timestamp", "TraceId", "WireModel", "check_cron", "iso", "mask_url",
    "new_trace_id", "parse", "parse_result", "problems_of", "utc_now",
]

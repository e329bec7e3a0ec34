"""The other typed stores: packages, documents, charts, deliveries, config, import log."""

from __future__ import annotations

from datetime import datetime, timedelta

from metric_stream.models.chart import ChartRecord
from metric_stream.models.config import SystemConfig
from metric_stream.models.delivery import DeliveryRecord
from metric_stream.models.report import ConsolidatedPackage, DocumentRecord, KpiPackage
from metric_stream.models.timeseries import ImportRowError, ImportStatus
from metric_stream.ports import Put, RecordStore
from metric_stream.storage import keys
from metric_stream.storage.collection import to_item, validated

IMPORT_ERROR_TTL = timedelta(days=30)


class PackageStore:
    """Per-KPI packages, the consolidated package and the document record of a job."""

    def __init__(self, records: RecordStore) -> None:
        self.records = records

    def put(self, package: KpiPackage) -> None:
        self.records.write([self.put_op(package)])

    @staticmethod
    def put_op(package: KpiPackage) -> Put:
        return Put(keys.package(package.trace_id, package.kpi_id), to_item(package))

    def get(self, trace_id: str, kpi_id: str) -> KpiPackage | None:
        item = self.records.get(keys.package(trace_id, kpi_id))
        return None if item is None else KpiPackage.model_validate(item)

    def list(self, trace_id: str) -> list[KpiPackage]:
        return validated(KpiPackage, self.records.query(keys.packages(trace_id)))

    def put_consolidated(self, package: ConsolidatedPackage) -> None:
        self.records.write([Put(keys.consolidated(package.trace_id), to_item(package))])

    def consolidated(self, trace_id: str) -> ConsolidatedPackage | None:
        item = self.records.get(keys.consolidated(trace_id))
        return None if item is None else ConsolidatedPackage.model_validate(item)

    def put_document(self, document: DocumentRecord) -> None:
        self.records.write([Put(keys.document(document.trace_id), to_item(document))])

    def document(self, trace_id: str) -> DocumentRecord | None:
        item = self.records.get(keys.document(trace_id))
        return None if item is None else DocumentRecord.model_validate(item)


class ChartStore:
    """`chart:{chartId}`: where each chart's bytes are, and whether it is a fallback."""

    def __init__(self, records: RecordStore) -> None:
        self.records = records

    def put(self, record: ChartRecord) -> None:
        self.records.write([Put(keys.chart(record.chart_id), to_item(record))])

    def get(self, chart_id: str) -> ChartRecord | None:
        item = self.records.get(keys.chart(chart_id))
        return None if item is None else ChartRecord.model_validate(item)


class DeliveryStore:
    """Per job, one record per endpoint: attempts, status, last error."""

    def __init__(self, records: RecordStore) -> None:
        self.records = records

    def put(self, record: DeliveryRecord) -> None:
        self.records.write([
            Put(keys.delivery(record.trace_id, record.endpoint_id), to_item(record))
        ])

    def get(self, trace_id: str, endpoint_id: str) -> DeliveryRecord | None:
        item = self.records.get(keys.delivery(trace_id, endpoint_id))
        return None if item is None else DeliveryRecord.model_validate(item)

    def list(self, trace_id: str) -> list[DeliveryRecord]:
        return validated(DeliveryRecord, self.records.query(keys.deliveries(trace_id)))


class ConfigStore:
    """`config:system`; SPEC's defaults until the operator saves a change."""

    def __init__(self, records: RecordStore) -> None:
        self.records = records

    def get(self) -> SystemConfig:
        item = self.records.get(keys.CONFIG)
        return SystemConfig() if item is None else SystemConfig.model_validate(item)

    def put(self, config: SystemConfig, now: datetime) -> SystemConfig:
        saved = config.model_copy(update={"updated_at": now})
        self.records.write([Put(keys.CONFIG, to_item(saved))])
        return saved


class ImportLog:
    """`import-status:{kpiId}:{importId}` counts, and the refused rows (kept 30 days)."""

    def __init__(self, records: RecordStore) -> None:
        self.records = records

    def put_status(self, status: ImportStatus) -> None:
        self.records.write([
            Put(keys.import_status(status.kpi_id, status.import_id), to_item(status))
        ])

    def status(self, kpi_id: str, import_id: str) -> ImportStatus | None:
        item = self.records.get(keys.import_status(kpi_id, import_id))
        return None if item is None else ImportStatus.model_validate(item)

    def statuses(self, kpi_id: str) -> list[ImportStatus]:
        return validated(ImportStatus, self.records.query(keys.import_statuses(kpi_id)))

    def add_errors(self, errors: list[ImportRowError], now: datetime) -> None:
        expires = now + IMPORT_ERROR_TTL
        self.records.put_many([
            Put(keys.import_error(e.kpi_id, e.import_id, e.row), to_item(e), expires_at=expires)
            for e in errors
        ])

    def errors(self, kpi_id: str, import_id: str) -> list[ImportRowError]:
        rows = self.records.query(keys.import_errors(kpi_id), prefix=f"{import_id}#")
        return validated(ImportRowError, rows)

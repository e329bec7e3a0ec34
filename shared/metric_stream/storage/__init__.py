"""Typed stores, written once on top of the `RecordStore` port (every backend shares them)."""

from metric_stream.storage.collection import ModelCollection
from metric_stream.storage.jobs import JobStore
from metric_stream.storage.registry import KpiCatalog, Registry
from metric_stream.storage.stores import (
    ChartStore,
    ConfigStore,
    DeliveryStore,
    ImportLog,
    PackageStore,
)
from metric_stream.storage.timeseries import AppendOutcome, BulkOutcome, TimeSeriesStore

__all__ = [
    "AppendOutcome", "BulkOutcome", "ChartStore", "ConfigStore", "DeliveryStore", "ImportLog",
    "JobStore", "KpiCatalog", "ModelCollection", "PackageStore", "Registry", "TimeSeriesStore",
]

"""The composition root: the one place that builds adapters and wires the stores.

The CLI, `serve`, the Chalice app and the tests all call `build_services`; nothing
else constructs an adapter. Only the chosen backend's modules are imported, so the
embedded backend never loads boto3.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

from metric_stream.adapters.record_keys import configured_keys, record_keyring
from metric_stream.clock import SystemClock
from metric_stream.ports import STAGE_QUEUES, BlobStore, Clock, Queue, RecordStore
from metric_stream.settings import Settings
from metric_stream.storage import (
    ChartStore,
    ConfigStore,
    DeliveryStore,
    ImportLog,
    JobStore,
    PackageStore,
    Registry,
    TimeSeriesStore,
)
from metric_stream.storage.sealing import Sealer


@dataclass
class Services:
    settings: Settings
    clock: Clock
    records: RecordStore
    blobs: BlobStore
    queue: Queue
    timeseries: TimeSeriesStore = field(init=False)
    jobs: JobStore = field(init=False)
    registry: Registry = field(init=False)
    packages: PackageStore = field(init=False)
    charts: ChartStore = field(init=False)
    deliveries: DeliveryStore = field(init=False)
    config: ConfigStore = field(init=False)
    imports: ImportLog = field(init=False)

    def __post_init__(self) -> None:
        self.timeseries = TimeSeriesStore(self.records)
        self.jobs = JobStore(self.records)
        self.registry = Registry(self.records, Sealer(partial(record_keyring, self.settings)))
        self.packages = PackageStore(self.records)
        self.charts = ChartStore(self.records)
        self.deliveries = DeliveryStore(self.records)
        self.config = ConfigStore(self.records)
        self.imports = ImportLog(self.records)

    def init(self) -> list[str]:
        """Create what the backend needs (idempotent); returns what was created."""
        return [*self.records.create(), *self.blobs.create(), *self.queue.create()]


def build_services(settings: Settings | None = None, *, clock: Clock | None = None) -> Services:
    settings = settings or Settings()
    clock = clock or SystemClock()
    queue_options = {"max_receives": settings.queue_max_receives,
                     "visibility_timeout": settings.queue_visibility_timeout}
    if settings.backend == "aws":
        from metric_stream.adapters.aws import AwsClients
        from metric_stream.adapters.dynamodb import DynamoRecordStore
        from metric_stream.adapters.s3 import S3BlobStore
        from metric_stream.adapters.secrets import with_stored_secrets
        from metric_stream.adapters.sqs import SqsQueue

        clients = AwsClients(settings)
        settings = with_stored_secrets(settings, clients)
        configured_keys(settings)  # a malformed record key stops the start, named
        return Services(
            settings=settings,
            clock=clock,
            records=DynamoRecordStore(clients, settings.table_name, clock),
            blobs=S3BlobStore(clients, settings.bucket_name, settings.aws_region),
            queue=SqsQueue(clients, settings.queue_prefix, STAGE_QUEUES, **queue_options),
        )

    from metric_stream.adapters.files import FileBlobStore
    from metric_stream.adapters.sqlite import Database, SqliteQueue, SqliteRecordStore

    configured_keys(settings)
    database = Database(settings.database_path)
    return Services(
        settings=settings,
        clock=clock,
        records=SqliteRecordStore(database, clock),
        blobs=FileBlobStore(settings.blob_root),
        queue=SqliteQueue(database, STAGE_QUEUES, **queue_options),
    )

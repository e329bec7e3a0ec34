"""Built-in collectors: each fetches one source and answers with the very payload an
n8n workflow would POST, which then enters through the one ingestion path.

A collector is named in a KPI's source (`{"kind": "collector", "collector": NAME,
"params": {...}}`); `COLLECTORS` maps names to classes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

import httpx

from metric_stream.models.config import RetryPolicy
from metric_stream.models.kpi import KpiDefinition
from metric_stream.models.wire import KpiResult, MultiKpiResult


@dataclass(frozen=True)
class CollectRequest:
    """One KPI registry entry to collect for one job."""

    trace_id: str
    timestamp: datetime  # the job's trigger time; a source's own timestamp wins when it has one
    kpi: KpiDefinition


class Collector(ABC):
    name: ClassVar[str]
    default_base_url: ClassVar[str] = ""

    def __init__(self, http: httpx.Client, retry: RetryPolicy, base_url: str | None = None
                 ) -> None:
        self.http = http
        self.retry = retry
        self.base_url = (base_url or self.default_base_url).rstrip("/")

    @abstractmethod
    def collect(self, request: CollectRequest) -> KpiResult | MultiKpiResult:
        """Fetch the source and shape its answer as a data-contract result; raise
        `CollectionFailed` with the reason when it cannot."""


class CollectionFailed(Exception):
    """A source could not be collected; `error` is what `/api/kpi-error` would carry."""

    def __init__(self, message: str, **fields: object) -> None:
        super().__init__(message)
        self.error: dict[str, object] = {"message": message, **fields}


COLLECTORS: dict[str, type[Collector]] = {}


def register(cls: type[Collector]) -> type[Collector]:
    COLLECTORS[cls.name] = cls
    return cls

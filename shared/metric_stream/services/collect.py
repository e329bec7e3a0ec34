"""Running built-in collectors for a job.

A collector's result enters through `ingest`, and its failure through
`report_error`, exactly as an n8n workflow's callback or error callback would: one
path, one set of checks, and the job records each KPI as collected or failed with
its reason. `collect_all` runs a cycle's collectors side by side, each KPI isolated.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from metric_stream.bootstrap import Services
from metric_stream.collectors import COLLECTORS, CollectionFailed, CollectRequest
from metric_stream.collectors.base import Sleep
from metric_stream.collectors.http import ResponseCache
from metric_stream.errors import Conflict, Forbidden, InvalidInput, StorageError
from metric_stream.logs import ContextThreadPool
from metric_stream.models.kpi import CollectorSource, KpiDefinition
from metric_stream.services.ingest import (
    ErrorOutcome,
    IngestOutcome,
    JobEffect,
    ingest,
    report_error,
)
from metric_stream.services.outbound import check_outbound_url, checked_client

log = logging.getLogger(__name__)


def collect_kpi(services: Services, request: CollectRequest, http: httpx.Client, *,
                sleep: Sleep = time.sleep, base_urls: Mapping[str, str] | None = None,
                cache: ResponseCache | None = None) -> IngestOutcome | ErrorOutcome:
    """Run the KPI's collector and ingest its result, or record why it failed.

    `base_urls` (collector name → URL) points collectors at mirrors; a KPI's own
    `params.baseUrl` still wins. `cache` shares answers between the KPIs of a cycle.
    """
    source = request.kpi.source
    if not isinstance(source, CollectorSource):
        raise ValueError(f"KPI {request.kpi.id!r} is fed by n8n, not by a built-in collector")
    name = source.collector
    component = f"collector:{name}"
    collector_class = COLLECTORS.get(name)
    if collector_class is None:
        return _failed(services, request, component, {
            "message": f"no built-in collector is named {name!r}; "
                       f"known: {', '.join(sorted(COLLECTORS))}",
            "name": "UnknownCollector", "code": "unknown_collector"})
    policy = services.config.get().retry.collection
    mirror = _own_base_url(source)
    checked: httpx.Client | None = None
    if mirror is not None:  # set through the API: an outbound URL like any other
        try:
            check_outbound_url(mirror, services.settings, field="source.params.baseUrl")
        except Forbidden as refused:
            return _failed(services, request, component, _outbound(name, refused))
        checked = http = checked_client(services.settings, timeout=http.timeout)
    collector = collector_class(http, policy, (base_urls or {}).get(name), sleep=sleep,
                                cache=cache)
    try:
        result = collector.collect(request)
    except CollectionFailed as failure:
        return _failed(services, request, component, failure.error)
    except InvalidInput as refused:
        return _failed(services, request, component, _refused(name, refused))
    except Forbidden as refused:  # a redirect, or the name resolving elsewhere since
        return _failed(services, request, component, _outbound(name, refused))
    finally:
        if checked is not None:
            checked.close()
    try:
        return ingest(services, result, source=component)
    except (InvalidInput, Conflict) as refused:
        return _failed(services, request, component, _refused(name, refused))


def collect_all(services: Services, trace_id: str, timestamp: datetime,
                kpis: Iterable[KpiDefinition], http: httpx.Client, max_concurrency: int = 8, *,
                sleep: Sleep = time.sleep, base_urls: Mapping[str, str] | None = None
                ) -> dict[str, IngestOutcome | ErrorOutcome]:
    """Collect every collector-fed KPI entry of `kpis` (n8n ones are left out) with at
    most `max_concurrency` at once; the outcomes by entry id. One failing, even with
    an unexpected error, never stops the others."""
    entries = [k for k in kpis if isinstance(k.source, CollectorSource)]
    if not entries:
        return {}
    cache = ResponseCache()

    def run(kpi: KpiDefinition) -> IngestOutcome | ErrorOutcome:
        request = CollectRequest(trace_id=trace_id, timestamp=timestamp, kpi=kpi)
        try:
            return collect_kpi(services, request, http, sleep=sleep, base_urls=base_urls,
                               cache=cache)
        except StorageError:  # neither the value nor its failure can be kept: not the source's
            raise
        except Exception as exc:
            log.exception("collecting %s for %s failed unexpectedly", kpi.id, trace_id)
            return _unexpected(services, request, exc)

    workers = max(1, min(max_concurrency, len(entries)))
    with ContextThreadPool(max_workers=workers, thread_name_prefix="collect") as pool:
        futures = {kpi.id: pool.submit(run, kpi) for kpi in entries}
    return {kpi_id: future.result() for kpi_id, future in futures.items()}


def _own_base_url(source: CollectorSource) -> str | None:
    """The KPI's own `params.baseUrl`, when it is an http(s) URL (the collector refuses
    any other value itself)."""
    url = source.params.get("baseUrl")
    if isinstance(url, str) and urlsplit(url).scheme in ("http", "https"):
        return url
    return None


def _outbound(name: str, refused: Forbidden) -> dict[str, Any]:
    return {"message": f"{name}: params.baseUrl refused: {refused.message}",
            "name": "Forbidden", "code": "refused_url", "source": name}


def _refused(name: str, error: InvalidInput | Conflict) -> dict[str, Any]:
    return {"message": f"{name}: ingestion refused the source's values: {error.message}",
            "name": type(error).__name__, "code": error.code, "source": name}


def _failed(services: Services, request: CollectRequest, component: str,
            error: Mapping[str, object]) -> ErrorOutcome:
    report: dict[str, Any] = {"traceId": request.trace_id, "kpiIds": request.kpi.yields,
                              "timestamp": request.timestamp.isoformat(),
                              "error": dict(error), "component": component}
    attempts = error.get("attempts")
    if isinstance(attempts, int) and attempts > 0:
        report["retryCount"] = attempts - 1
    log.warning("%s for %s: %s", component, request.trace_id, error.get("message"))
    return report_error(services, report)


def _unexpected(services: Services, request: CollectRequest, exc: Exception) -> ErrorOutcome:
    name = request.kpi.source.collector if isinstance(request.kpi.source,
                                                      CollectorSource) else "n8n"
    error = {"message": f"{name}: unexpected {type(exc).__name__}: {exc}",
             "name": type(exc).__name__, "code": "internal_error"}
    try:
        return _failed(services, request, f"collector:{name}", error)
    except Exception:
        log.exception("could not record the failure of %s for %s", request.kpi.id,
                      request.trace_id)
        return ErrorOutcome(trace_id=request.trace_id, message=str(error["message"]),
                            job=JobEffect())

"""Ingestion routes: `POST /api/kpi-data`, `POST /api/kpi-error`, `GET /api/health`."""

from __future__ import annotations

import logging
from typing import Any

from metric_stream import __version__
from metric_stream.api.http import Api, Request, Response, Route
from metric_stream.logs import job_context, trace_id_of
from metric_stream.models.wire import ErrorReport, KpiResult, MultiKpiResult
from metric_stream.services.ingest import ingest_result, report_error
from metric_stream.storage import keys

log = logging.getLogger("metric_stream.ingest")


def _fan_in(api: Api, trace_id: str, settled: list[str]) -> None:
    """The callback that settles a job's last KPI moves the job on at once. A cheap look
    at the KPI records next to one just settled tells a job still waiting, so that the
    many callbacks of a large job do not each read the whole job."""
    if settled and not api.services.jobs.has_pending(trace_id, near=settled[0]):
        from metric_stream.services.cycle import settle_job  # loads the fan-out's libraries

        if settle_job(api.services, trace_id):
            log.info("job %s: its last KPI is in; on to analysis", trace_id)


def kpi_data(api: Api, request: Request) -> Response:
    payload = request.json()
    with job_context(trace_id_of(payload)):
        outcome = ingest_result(api.services, payload)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("job %s: %s stored, %s duplicate(s)", outcome.trace_id,
                      ", ".join(outcome.stored) or "nothing", len(outcome.duplicates))
        _fan_in(api, outcome.trace_id, outcome.job.settled)
    body = outcome.to_wire()
    if not outcome.job.known:
        body["message"] = "point stored; no job has this traceId, so no job was updated"
        return Response.json(body, 202)
    return Response.json(body)


def kpi_error(api: Api, request: Request) -> Response:
    payload = request.json()
    with job_context(trace_id_of(payload)):
        outcome = report_error(api.services, payload)
        log.warning("job %s: failure reported for %s: %s", outcome.trace_id,
                    ", ".join(outcome.job.settled) or "no pending KPI",
                    " ".join(outcome.message.split())[:300])
        _fan_in(api, outcome.trace_id, outcome.job.settled)
    body = outcome.to_wire()
    if not outcome.job.known:
        body["message"] = f"no job has this traceId; error noted: {outcome.message}"
        return Response.json(body, 202)
    return Response.json(body)


def health(api: Api, request: Request) -> dict[str, Any]:
    api.services.records.get(keys.CONFIG)  # reads the store: a StorageError answers 503
    return {"status": "ok", "version": __version__, "backend": api.services.settings.backend,
            "time": api.services.clock.now().isoformat()}


ROUTES = [
    Route("POST", "/api/kpi-data", kpi_data, "ingestion",
          "Ingest a KPI result (single or multi-KPI)", (KpiResult, MultiKpiResult),
          responses={200: "stored, or a duplicate of a stored point",
                     202: "stored; no job has this traceId",
                     404: "a KPI id is not in the registry",
                     409: "another value is stored for this KPI and timestamp"},
          answer="Ingested", tag="ingestion", quick=True),
    Route("POST", "/api/kpi-error", kpi_error, "ingestion",
          "Report a collection failure", ErrorReport,
          responses={200: "the KPIs were marked failed (or had settled already)",
                     202: "no job has this traceId",
                     404: "a KPI id is not in the registry"},
          answer="ErrorNoted", tag="ingestion", quick=True),
    Route("GET", "/api/health", health, "public", "Liveness and storage check",
          responses={200: "healthy", 503: "the store cannot be reached"},
          answer="Health", tag="ingestion", quick=True),
]

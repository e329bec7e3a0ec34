"""Job routes: `GET /api/jobs`, `GET /api/jobs/{traceId}`, `POST /api/jobs` (run now),
`POST /api/jobs/{traceId}/deliver` (send the report again)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator

from metric_stream.api.http import Api, Request, Route
from metric_stream.errors import InvalidInput
from metric_stream.models.base import AdminModel, Id, KpiId, parse, unique_ids
from metric_stream.models.job import JobStatus
from metric_stream.services import admin

MAX_LIST = 200


class RunJob(AdminModel):
    """Start a job now: the KPIs named (registry entry ids or KPI ids they yield; an
    inactive entry named here runs too), or every active KPI."""

    kpis: Annotated[list[KpiId], AfterValidator(unique_ids)] | None = None
    demo: bool = False


class Redeliver(AdminModel):
    """Send a job's report again: to every recipient that has not received it, only
    where the last try failed (`failedOnly`), or to the endpoints named (even those that
    received it: with the same message id, so a receiver may drop the duplicate)."""

    failed_only: bool = False
    endpoints: Annotated[list[Id], AfterValidator(unique_ids)] | None = None


def list_jobs(api: Api, request: Request) -> dict[str, Any]:
    limit = admin.query_int(request.query.get("limit"), "limit", default=20, low=1,
                            high=MAX_LIST)
    status_text = request.query.get("status") or None
    if status_text is not None and status_text not in {s.value for s in JobStatus}:
        raise InvalidInput(f"must be one of {[s.value for s in JobStatus]}", field="status")
    jobs = admin.list_jobs(api.services, limit=limit,
                           status=JobStatus(status_text) if status_text else None)
    return {"jobs": [admin.job_summary(j) for j in jobs], "count": len(jobs)}


def get_job(api: Api, request: Request) -> dict[str, Any]:
    return admin.job_detail(api.services, request.path_params["traceId"])


def run_job(api: Api, request: Request) -> tuple[int, dict[str, Any]]:
    order = parse(RunJob, request.json()) if request.body.strip() else RunJob()
    job, outcomes = admin.run_now(api.services, order.kpis, order.demo)
    return 201, {
        "job": admin.job_detail(api.services, job.trace_id),
        "triggers": [{"entryId": o.entry_id, "ok": o.ok, "detail": o.detail} for o in outcomes],
    }


def redeliver_job(api: Api, request: Request) -> dict[str, Any]:
    from metric_stream.services.delivery import deliver  # the delivery engine: on use only

    order = parse(Redeliver, request.json()) if request.body.strip() else Redeliver()
    run = deliver(api.services, request.path_params["traceId"], endpoint_ids=order.endpoints,
                  failed_only=order.failed_only, resend=bool(order.endpoints))
    return run.to_wire()


ROUTES = [
    Route("GET", "/api/jobs", list_jobs, "admin", "List the newest jobs",
          responses={200: "job summaries, newest first",
                     422: "limit or status is invalid"},
          query={"limit": f"how many (1-{MAX_LIST}, default 20)",
                 "status": "only jobs in this status (among the newest 100)"},
          answer="JobList", tag="jobs"),
    Route("GET", "/api/jobs/{traceId}", get_job, "admin",
          "A job: per-KPI state with full errors, stage timings, deliveries, document",
          responses={200: "the job", 404: "no such job"}, answer="JobDetail",
          tag="jobs"),
    Route("POST", "/api/jobs", run_job, "admin",
          "Run now: create a job and trigger its KPIs (an empty body: every active KPI)",
          RunJob,
          responses={201: "the job as it stands after fan-out, and each trigger's outcome",
                     422: "a KPI is not in the registry, or none is active"},
          answer="JobStarted", tag="jobs"),
    Route("POST", "/api/jobs/{traceId}/deliver", redeliver_job, "admin",
          "Deliver a job's report again (what is not recorded as sent; failedOnly: only "
          "where the last try failed; endpoints: these, even if they received it)",
          Redeliver,
          responses={200: "planned, sent, failed, skipped and already-sent counts",
                     404: "no such job or endpoint, or the job has no messages yet",
                     422: "failedOnly or endpoints is invalid"},
          answer="Redelivered", tag="jobs"),
]

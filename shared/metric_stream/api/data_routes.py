"""Data routes: `GET /api/timeseries/{kpiId}?from=&to=`, `GET /api/documents/{traceId}`."""

from __future__ import annotations

from typing import Any

from metric_stream.api.http import Api, Request, Response, Route
from metric_stream.services import admin

MAX_POINTS = 50_000


def read_timeseries(api: Api, request: Request) -> dict[str, Any]:
    start = admin.query_time(request.query.get("from"), "from")
    end = admin.query_time(request.query.get("to"), "to")
    limit = admin.query_int(request.query.get("limit"), "limit", default=10_000, low=1,
                            high=MAX_POINTS)
    read = admin.read_range(api.services, request.path_params["kpiId"], start, end, limit)
    return {
        "kpiId": read.kpi_id,
        "from": admin.utc_text(start) if start else None,
        "to": admin.utc_text(end) if end else None,
        "count": len(read.points),
        "truncated": read.truncated,
        "points": [p.model_dump(mode="json", by_alias=True, exclude_none=True,
                                exclude={"kpi_id"}) for p in read.points],
    }


def get_document(api: Api, request: Request) -> Response:
    trace_id = request.path_params["traceId"]
    record, data = admin.document_of(api.services, trace_id)
    extension = ".pdf" if record.content_type == "application/pdf" else ""
    return Response(200, data, {"content-type": record.content_type,
                                "content-disposition": f'inline; filename="{trace_id}{extension}"'})


ROUTES = [
    Route("GET", "/api/timeseries/{kpiId}", read_timeseries, "admin",
          "A KPI's points in a time range, oldest first",
          responses={200: "the points (`truncated` when more than `limit` are in range)",
                     404: "the KPI id is not in the registry",
                     422: "from, to or limit is invalid (the parameter is named)"},
          query={"from": "ISO 8601 with a zone (inclusive); a '+' must be sent as %2B",
                 "to": "ISO 8601 with a zone (inclusive)",
                 "limit": f"at most this many points (1-{MAX_POINTS}, default 10000)"},
          answer="Series", tag="data"),
    Route("GET", "/api/documents/{traceId}", get_document, "admin",
          "A job's report document (its bytes, with its content type)",
          responses={200: "the document", 404: "the job has no document"},
          response_content="application/pdf", tag="data"),
]

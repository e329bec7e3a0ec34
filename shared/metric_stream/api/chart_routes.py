"""Chart routes: `POST /api/charts/generate`, `GET /api/charts/{chartId}`,
`POST /api/charts/batch`, `GET /api/charts/health`."""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import Annotated, Any

from pydantic import Field, WithJsonSchema

from metric_stream.api.http import Api, Request, Response, Route
from metric_stream.errors import MetricStreamError, error_body
from metric_stream.models.base import AdminModel, parse
from metric_stream.models.chart import EXTENSIONS, ChartRecord
from metric_stream.services import charts

log = logging.getLogger("metric_stream.api")

MAX_BATCH = 50
GENERATE_MAX_BODY = 16 * 1024
BATCH_MAX_BODY = MAX_BATCH * GENERATE_MAX_BODY
CACHE_CONTROL = "private, max-age=86400"
HEALTH_TTL_S = 10.0  # the check draws two charts and writes a file: not on every public call


class ChartBatch(AdminModel):
    """Up to 50 generate bodies, each drawn on its own: one bad item does not stop the
    others."""

    charts: Annotated[
        list[Any],
        Field(min_length=1, max_length=MAX_BATCH),
        WithJsonSchema({"type": "array", "minItems": 1, "maxItems": MAX_BATCH,
                        "items": {"$ref": "#/components/schemas/ChartRequest"}}),
    ]


def chart_view(record: ChartRecord) -> dict[str, Any]:
    view: dict[str, Any] = {
        "chartId": record.chart_id,
        "kpiId": record.kpi_id,
        "format": record.format,
        "contentType": record.content_type,
        "url": f"/api/charts/{record.chart_id}",
        "fallback": record.fallback,
        "attempts": record.attempts,
        "createdAt": record.to_wire()["createdAt"],
    }
    if record.trace_id is not None:
        view["traceId"] = record.trace_id
    if record.reason is not None:
        view["reason"] = record.reason
    return view


def generate_chart(api: Api, request: Request) -> tuple[int, dict[str, Any]]:
    record = charts.generate_chart(api.services, charts.chart_request(request.json()))
    return 201, chart_view(record)


def _batch_item(api: Api, index: int, body: Any) -> dict[str, Any]:
    try:
        record = charts.generate_chart(api.services, charts.chart_request(body))
    except MetricStreamError as exc:
        return {"index": index, "ok": False, **error_body(exc)}
    except Exception:
        log.exception("chart batch item %d failed unexpectedly", index)
        return {"index": index, "ok": False,
                "error": {"code": "internal_error", "message": "internal error"}}
    return {"index": index, "ok": True, "chart": chart_view(record)}


elapsed_clock = time.monotonic  # what a batch measures its budget with (a test may slow it)


def generate_batch(api: Api, request: Request) -> dict[str, Any]:
    """Each item on its own; once the request budget is spent, the items not started are
    answered as such (send them again) rather than the whole batch timing out at the
    gateway with nothing said."""
    batch = parse(ChartBatch, request.json())
    budget = api.services.settings.request_budget_s
    started = elapsed_clock()
    results = []
    for index, body in enumerate(batch.charts):
        if elapsed_clock() - started > budget:
            results.append({"index": index, "ok": False, "error": {
                "code": "time_budget",
                "message": f"not attempted: the batch spent its {budget:g} s request budget "
                           "on the items before it; send this one again"}})
            continue
        results.append(_batch_item(api, index, body))
    return {"results": results}


def get_chart(api: Api, request: Request) -> Response:
    chart_id = request.path_params["chartId"]
    record, data = charts.chart_file(api.services, chart_id)
    extension = EXTENSIONS[record.format]
    return Response(200, data, {
        "content-type": record.content_type,
        "cache-control": CACHE_CONTROL,
        "content-disposition": f'inline; filename="{chart_id}.{extension}"',
    })


_recent_health: weakref.WeakKeyDictionary[Api, tuple[float, dict[str, Any]]] = (
    weakref.WeakKeyDictionary())
_health_lock = threading.Lock()


def chart_health(api: Api, request: Request) -> Response:
    now = time.monotonic()
    with _health_lock:
        recent = _recent_health.get(api)
    if recent is None or now - recent[0] > HEALTH_TTL_S:
        recent = (now, charts.chart_health(api.services))
        with _health_lock:
            _recent_health[api] = recent
    answer = recent[1]
    return Response.json(answer, 200 if answer["status"] == "ok" else 503)


ROUTES = [
    # Before `/api/charts/{chartId}`: routes match in order and `health` is a valid id.
    Route("GET", "/api/charts/health", chart_health, "public",
          "Chart rendering and chart storage check (the answer is kept for 10 s)",
          responses={200: "PNG and SVG render and the blob store works",
                     503: "degraded: `errors` and `blobStore` say what failed"},
          answer="ChartHealth", answer_statuses=(503,), tag="charts"),
    Route("POST", "/api/charts/generate", generate_chart, "admin",
          "Draw a KPI's chart from its stored points and store it (retries, then the "
          "configured fallback)", charts.ChartRequest,
          responses={201: "the chart's record and its `url` (`fallback` with `reason` when "
                          "it could not be drawn)",
                     404: "the KPI id is not in the registry",
                     422: "a field is invalid; `error.field` names it"},
          answer="ChartView", max_body=GENERATE_MAX_BODY, tag="charts"),
    Route("POST", "/api/charts/batch", generate_batch, "admin",
          f"Draw up to {MAX_BATCH} charts; each item succeeds or fails on its own",
          ChartBatch,
          responses={200: "per item, in order: `ok` with the chart, or the error (`code`, "
                          "`message`, `field`)",
                     422: f"the body is not `{{charts: [1-{MAX_BATCH} generate bodies]}}`"},
          answer="BatchDrawn", max_body=BATCH_MAX_BODY, tag="charts"),
    Route("GET", "/api/charts/{chartId}", get_chart, "admin",
          "A stored chart's bytes (PNG, SVG, or the text fallback)",
          responses={200: "the chart", 404: "no such chart"},
          response_content=("image/png", "image/svg+xml", "text/plain; charset=utf-8"),
          tag="charts"),
]

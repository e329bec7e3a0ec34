"""KPI registry routes: `GET|POST /api/kpis`, `GET|PUT|DELETE /api/kpis/{id}`."""

from __future__ import annotations

from typing import Any

from metric_stream.api.bodies import parse_body, query_flag, with_path_id
from metric_stream.api.http import Api, Request, Route
from metric_stream.models.kpi import KpiDefinition
from metric_stream.services import admin

READ_ONLY = ("yields", "warnings")


def parse_kpi(body: Any) -> KpiDefinition:
    return parse_body(KpiDefinition, body, read_only=READ_ONLY, unions=["source"])


def kpi_view(kpi: KpiDefinition, warnings: list[str] | None = None) -> dict[str, Any]:
    body = kpi.model_dump(mode="json", by_alias=True, exclude_none=True)
    body["yields"] = kpi.yields
    if warnings:
        body["warnings"] = warnings
    return body


def list_kpis(api: Api, request: Request) -> dict[str, Any]:
    kpis = api.services.registry.kpis.all()
    return {"kpis": [kpi_view(k) for k in kpis], "count": len(kpis)}


def create_kpi(api: Api, request: Request) -> tuple[int, dict[str, Any]]:
    kpi, warnings = admin.create_kpi(api.services, parse_kpi(request.json()))
    return 201, kpi_view(kpi, warnings)


def get_kpi(api: Api, request: Request) -> dict[str, Any]:
    return kpi_view(api.services.registry.kpis.require(request.path_params["id"]))


def replace_kpi(api: Api, request: Request) -> dict[str, Any]:
    kpi, warnings = admin.replace_kpi(api.services, request.path_params["id"],
                                      parse_kpi(with_path_id(request)))
    return kpi_view(kpi, warnings)


def delete_kpi(api: Api, request: Request) -> dict[str, Any]:
    deleted = admin.delete_kpi(api.services, request.path_params["id"],
                               force=query_flag(request, "force"))
    body: dict[str, Any] = {"deleted": deleted.kpi_id, "failedInJobs": deleted.failed_in_jobs}
    if deleted.warnings:
        body["warnings"] = deleted.warnings
    return body


ROUTES = [
    Route("GET", "/api/kpis", list_kpis, "admin", "List the KPI registry",
          responses={200: "every registry entry, with the KPI ids it yields"},
          answer="KpiList", tag="registry"),
    Route("POST", "/api/kpis", create_kpi, "admin", "Add a KPI to the registry", KpiDefinition,
          responses={201: "created (with `warnings`, e.g. a webhook host not resolvable now)",
                     403: "the n8n webhook URL is an address metric-stream may not call",
                     409: "the id, or a KPI id it yields, is already in the registry"},
          answer="KpiView", tag="registry"),
    Route("GET", "/api/kpis/{id}", get_kpi, "admin", "Read one registry entry",
          responses={200: "the entry", 404: "no such entry"}, answer="KpiView",
          tag="registry"),
    Route("PUT", "/api/kpis/{id}", replace_kpi, "admin",
          "Replace a registry entry (createdAt is kept; an id left out is the path's)",
          KpiDefinition,
          responses={200: "replaced",
                     403: "the n8n webhook URL is an address metric-stream may not call",
                     404: "no such entry, or it changed meanwhile",
                     409: "a KPI id it yields belongs to another entry",
                     422: "a field is invalid, or the body's id differs from the path's"},
          answer="KpiView", tag="registry"),
    Route("DELETE", "/api/kpis/{id}", delete_kpi, "admin",
          "Delete a registry entry; refused while a job collects it, unless ?force=true "
          "(which marks it failed in those jobs)",
          responses={200: "deleted; `failedInJobs` lists the jobs it was marked failed in",
                     404: "no such entry",
                     409: "a collecting job waits for this KPI; the message names the job",
                     422: "force is not true or false"},
          query={"force": "true: delete even while a job is collecting it"},
          answer="KpiDeletion", tag="registry"),
]

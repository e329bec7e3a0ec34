"""The whole API: the route table (static, so that Chalice can register it at import
time without building anything) and `build_api` to bind it to services."""

from __future__ import annotations

from functools import cache
from typing import Any

from metric_stream.api import (
    chart_routes,
    config_routes,
    data_routes,
    endpoint_routes,
    import_routes,
    ingest_routes,
    job_routes,
    metrics_routes,
    registry_routes,
    schedule_routes,
    workflow_routes,
)
from metric_stream.api.auth import Authenticator
from metric_stream.api.http import Api, Request, Route
from metric_stream.bootstrap import Services


def openapi(api: Api, request: Request) -> dict[str, Any]:
    return openapi_document()


ROUTES: list[Route] = [
    *ingest_routes.ROUTES,
    *registry_routes.ROUTES,
    *import_routes.ROUTES,
    *workflow_routes.ROUTES,
    *schedule_routes.ROUTES,
    *config_routes.ROUTES,
    *job_routes.ROUTES,
    *data_routes.ROUTES,
    *chart_routes.ROUTES,
    *endpoint_routes.ROUTES,
    *metrics_routes.ROUTES,
    Route("GET", "/api/openapi.json", openapi, "public", "This API's OpenAPI 3.1 document",
          responses={200: "the document"}, answer="OpenApiDocument", tag="meta"),
]


@cache
def openapi_document() -> dict[str, Any]:
    from metric_stream.api.openapi import build_openapi

    return build_openapi(ROUTES)


def build_api(services: Services) -> Api:
    return Api(ROUTES, services, Authenticator(services.settings, services.records))

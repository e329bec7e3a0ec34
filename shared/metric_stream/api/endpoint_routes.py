"""Delivery endpoint routes: `GET|POST /api/endpoints`, `GET|PUT|DELETE
/api/endpoints/{id}`, `POST /api/endpoints/{id}/test`.

An endpoint's URL carries its secrets (bot tokens, webhook keys), so no answer ever
holds it: `url` is always the masked form. A PUT may leave `url` out, or send the
masked form back, to keep the stored one.
"""

from __future__ import annotations

from typing import Any

from metric_stream.api.bodies import parse_body
from metric_stream.api.http import Api, Request, Route
from metric_stream.models.delivery import DeliveryEndpoint
from metric_stream.services import admin

READ_ONLY = ("scheme", "warnings", "signed")


def _parse(body: Any) -> DeliveryEndpoint:
    return parse_body(DeliveryEndpoint, body, read_only=READ_ONLY, unions=["kpis"])


def _view(endpoint: DeliveryEndpoint, warnings: list[str] | None = None) -> dict[str, Any]:
    body = admin.endpoint_view(endpoint)
    if warnings:
        body["warnings"] = warnings
    return body


def list_endpoints(api: Api, request: Request) -> dict[str, Any]:
    endpoints = api.services.registry.endpoints.all()
    return {"endpoints": [_view(e) for e in endpoints], "count": len(endpoints)}


def create_endpoint(api: Api, request: Request) -> tuple[int, dict[str, Any]]:
    endpoint, warnings = admin.create_endpoint(api.services,
                                               _parse(request.json()))
    body = _view(endpoint, warnings)
    if endpoint.signing_secret:  # shown this once: the receiver verifies signatures with it
        body["signingSecret"] = endpoint.signing_secret
    return 201, body


def get_endpoint(api: Api, request: Request) -> dict[str, Any]:
    return _view(api.services.registry.endpoints.require(request.path_params["id"]))


def replace_endpoint(api: Api, request: Request) -> dict[str, Any]:
    endpoint_id = request.path_params["id"]
    body = admin.endpoint_body(api.services, endpoint_id, request.json())
    endpoint, warnings = admin.replace_endpoint(api.services, endpoint_id,
                                                _parse(body))
    return _view(endpoint, warnings)


def delete_endpoint(api: Api, request: Request) -> dict[str, Any]:
    api.services.registry.endpoints.delete(request.path_params["id"])
    return {"deleted": request.path_params["id"]}


def test_endpoint(api: Api, request: Request) -> dict[str, Any]:
    from metric_stream.services.delivery import send_test

    endpoint = api.services.registry.endpoints.require(request.path_params["id"])
    return send_test(api.services, endpoint)


_REFUSED = "the URL is an address metric-stream may not call"
ROUTES = [
    Route("GET", "/api/endpoints", list_endpoints, "admin", "List the delivery endpoints",
          responses={200: "every endpoint, URLs masked"}, answer="EndpointList",
          tag="endpoints"),
    Route("POST", "/api/endpoints", create_endpoint, "admin", "Add a delivery endpoint",
          DeliveryEndpoint,
          responses={201: "created (URL masked; `warnings` if its host cannot be resolved now)",
                     403: _REFUSED, 409: "the id is taken"},
          answer="CreatedEndpoint", tag="endpoints"),
    Route("GET", "/api/endpoints/{id}", get_endpoint, "admin", "Read one delivery endpoint",
          responses={200: "the endpoint, URL masked", 404: "no such endpoint"},
          answer="EndpointView", tag="endpoints"),
    Route("PUT", "/api/endpoints/{id}", replace_endpoint, "admin",
          "Replace a delivery endpoint (url left out or masked: the stored one is kept)",
          DeliveryEndpoint,
          responses={200: "replaced (URL masked)", 403: _REFUSED, 404: "no such endpoint",
                     422: "a field is invalid, or the body's id differs from the path's"},
          answer="EndpointView", tag="endpoints"),
    Route("DELETE", "/api/endpoints/{id}", delete_endpoint, "admin",
          "Delete a delivery endpoint",
          responses={200: "deleted", 404: "no such endpoint"}, answer="Deleted",
          tag="endpoints"),
    Route("POST", "/api/endpoints/{id}/test", test_endpoint, "admin",
          "Send a test message to an endpoint, through its channel, with the delivery "
          "retries; the endpoint's health is not changed",
          responses={200: "the outcome (`delivered`, `status`, `attempts`, `error`, "
                          "`elapsedMs`)",
                     404: "no such endpoint"}, answer="EndpointTested", tag="endpoints"),
]

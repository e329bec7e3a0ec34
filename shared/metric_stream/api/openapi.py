"""The OpenAPI 3.1 document, generated from the route table and the models."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from metric_stream import __version__
from metric_stream.api import answers
from metric_stream.api.answers import ReplayedMessage
from metric_stream.api.http import Route

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {
        "type": "object",
        "required": ["code", "message"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                       "field": {"type": "string"}},
    }},
}
_SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "ingestion": [{"apiKey": []}, {"webhookSignature": []}, {"adminKey": []}],
    "admin": [{"adminKey": []}],
    "scheduler": [{"adminKey": []}, {"proxySignature": []}],
    "public": [],
}
_COMMON_ERRORS = {
    400: "the body is not readable JSON",
    413: "the body is too large",
    422: "a field is invalid; `error.field` names it",
}


def _request_models(route: Route) -> list[type[BaseModel]]:
    models = route.request_model
    if models is None:
        return []
    return list(models) if isinstance(models, Sequence) else [models]


Refs = Mapping[tuple[Any, JsonSchemaMode], dict[str, Any]]  # (model, mode) -> its $ref


def _answer_model(route: Route) -> type[BaseModel] | None:
    if route.answer is None:
        return None
    model: type[BaseModel] = getattr(answers, route.answer)  # AttributeError: no such answer
    return model


def _schemas(routes: Sequence[Route]) -> tuple[Refs, dict[str, Any]]:
    """Each model's reference (request bodies as validated, answers as serialized; a
    model whose two schemas differ gets a `-Input` and an `-Output` one) and the
    components they refer to."""
    wanted: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {}
    for route in routes:
        wanted.update(dict.fromkeys((m, "validation") for m in _request_models(route)))
        answer = _answer_model(route)
        if answer is not None:
            wanted[(answer, "serialization")] = None
            if route.auth == "ingestion":
                wanted[(ReplayedMessage, "serialization")] = None
    refs, schema = models_json_schema(list(wanted), by_alias=True,
                                      ref_template="#/components/schemas/{model}")
    return refs, dict(schema.get("$defs", {}))


def _answer_schema(route: Route, status: int, refs: Refs) -> dict[str, Any]:
    model = _answer_model(route)
    if model is None:
        return {"type": "object"}  # tests/api/test_openapi_responses.py refuses this
    answer = refs[(model, "serialization")]
    if route.auth == "ingestion" and status == 200:
        return {"anyOf": [answer, refs[(ReplayedMessage, "serialization")]]}
    return answer


def build_openapi(routes: Sequence[Route]) -> dict[str, Any]:
    refs, components = _schemas(routes)
    components["Error"] = _ERROR
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        operation: dict[str, Any] = {
            "operationId": route.operation_id,
            "summary": route.summary,
            "tags": [route.tag],
            "security": _SECURITY[route.auth],
            "responses": {},
        }
        params = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                  for name in route.pattern.groupindex]
        params += [{"name": name, "in": "query", "required": False, "description": text,
                    "schema": {"type": "string"}} for name, text in route.query.items()]
        if params:
            operation["parameters"] = params
        if route.request_model is not None:
            body_refs = [refs[(m, "validation")] for m in _request_models(route)]
            body_schema = body_refs[0] if len(body_refs) == 1 else {"oneOf": body_refs}
            operation["requestBody"] = {"required": True,
                                        "content": {route.request_content: {"schema": body_schema}}}
        elif route.request_content != "application/json":
            operation["requestBody"] = {"required": True, "content": {
                route.request_content: {"schema": {"type": "string"}}}}
        statuses = dict(route.responses)
        if route.auth != "public":
            statuses.setdefault(401, "authentication failed")
        if route.method in ("POST", "PUT"):
            for status, text in _COMMON_ERRORS.items():
                statuses.setdefault(status, text)
        for status, text in sorted(statuses.items()):
            response: dict[str, Any] = {"description": text}
            if status in route.answer_statuses or (
                    status < 300 and route.response_content == "application/json"):
                content = {"application/json": {"schema": _answer_schema(route, status, refs)}}
            elif status >= 400:
                content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
            else:
                types = ((route.response_content,) if isinstance(route.response_content, str)
                         else route.response_content)
                content = {kind: {"schema": {"type": "string", "format": "binary"}}
                           for kind in types}
            response["content"] = content
            operation["responses"][str(status)] = response
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "metric-stream", "version": __version__,
                 "description": "The Daily Index Tracker's HTTP API."},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "webhookSignature": {"type": "apiKey", "in": "header", "name": "webhook-signature",
                                     "description": "Standard Webhooks signature with "
                                                    "webhook-id and webhook-timestamp"},
                "adminKey": {"type": "http", "scheme": "bearer"},
                "proxySignature": {"type": "apiKey", "in": "header",
                                   "name": "x-metric-stream-proxy-signature",
                                   "description": "the Cloudflare Worker proxy's signature "
                                                  "of its cron tick (origin `cron`)"},
            },
        },
    }

"""metric-stream on AWS Lambda: the core's routes behind API Gateway, through Chalice.

Thin on purpose: every route of the core's table is registered here and handed to
the same `Api.handle` that `metric-stream serve` uses. Services are built on the
first request (no I/O at import), from `METRIC_STREAM_*` environment variables.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice import Chalice
from chalice import Response as ChaliceResponse

from metric_stream.api.app import ROUTES, build_api
from metric_stream.api.http import Api, Request, Route

app = Chalice(app_name="metric-stream")

_api: Api | None = None


def current_api() -> Api:
    global _api
    if _api is None:
        from metric_stream.bootstrap import build_services

        _api = build_api(build_services())
    return _api


def use_api(api: Api | None) -> None:
    """Bind the app to other services (tests), or forget them (None)."""
    global _api
    _api = api


def _view(route: Route) -> Callable[..., ChaliceResponse]:
    def view(**params: str) -> ChaliceResponse:
        incoming = app.current_request
        request = Request(
            method=incoming.method,
            path=route.path.format(**params),
            headers={k.lower(): v for k, v in incoming.headers.items()},
            body=incoming.raw_body or b"",
            query=dict(incoming.query_params or {}),
        )
        response = current_api().handle(request)
        body: Any = response.body
        if response.headers.get("content-type", "").startswith(("application/json", "text/")):
            body = response.body.decode()
        return ChaliceResponse(body=body, status_code=response.status, headers=response.headers)

    view.__name__ = route.operation_id
    return view


for _route in ROUTES:
    app.route(_route.path, methods=[_route.method],
              content_types=[_route.request_content, "text/plain"])(_view(_route))

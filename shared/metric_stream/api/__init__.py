"""The HTTP API, defined once: routes, auth, errors and the OpenAPI document.

`Api.handle(Request) -> Response` is framework-free; `metric-stream serve` exposes it
through ASGI (uvicorn) and the Chalice app in `functions/` through API Gateway.
"""

from metric_stream.api.http import Api, Request, Response, Route

__all__ = ["Api", "Request", "Response", "Route"]

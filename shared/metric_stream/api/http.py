"""Requests, responses, routing and the error model shared by every way of serving."""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel

from metric_stream.errors import (
    InvalidInput,
    MetricStreamError,
    PayloadTooLarge,
    error_body,
    http_status,
)
from metric_stream.logs import request_context

if TYPE_CHECKING:
    from metric_stream.bootstrap import Services

log = logging.getLogger("metric_stream.api")

Auth = Literal["public", "ingestion", "admin", "scheduler"]
DEFAULT_MAX_BODY = 256 * 1024
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@dataclass
class Request:
    method: str
    path: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes = b""
    query: Mapping[str, str] = field(default_factory=dict)
    path_params: dict[str, str] = field(default_factory=dict)
    request_id: str = ""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        """The body as JSON, or `InvalidInput` (400) saying where it breaks."""
        if not self.body.strip():
            raise MalformedBody("the request body is empty; expected JSON")
        try:
            return json.loads(self.body)
        except UnicodeDecodeError:
            raise MalformedBody("the request body is not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            raise MalformedBody(
                f"the request body is not valid JSON: {exc.msg} at line {exc.lineno} "
                f"column {exc.colno}") from None


class MalformedBody(InvalidInput):
    """The body cannot be read at all (400), as opposed to readable but invalid (422)."""

    code = "malformed_body"


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: Mapping[str, str] | None = None
             ) -> Response:
        body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
        return cls(status, body, {"content-type": "application/json", **(headers or {})})

    @classmethod
    def error(cls, error: MetricStreamError, headers: Mapping[str, str] | None = None
              ) -> Response:
        return cls.json(error_body(error), status_of(error), headers)


def status_of(error: BaseException) -> int:
    if isinstance(error, MalformedBody):
        return 400
    if isinstance(error, InvalidInput) and not isinstance(error, PayloadTooLarge):
        return 422
    return http_status(error)


Handler = Callable[["Api", Request], "Response | tuple[int, Any] | Any"]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    auth: Auth
    summary: str
    request_model: type[BaseModel] | Sequence[type[BaseModel]] | None = None
    request_content: str = "application/json"
    responses: Mapping[int, str] = field(default_factory=dict)
    response_content: str | tuple[str, ...] = "application/json"  # of the success answers
    answer: str | None = None  # the model of the JSON success answers, in `api.answers`
    answer_statuses: tuple[int, ...] = ()  # other statuses answered with it, not an error
    max_body: int = DEFAULT_MAX_BODY
    tag: str = "api"
    query: Mapping[str, str] = field(default_factory=dict)  # name -> description
    quick: bool = False  # sub-millisecond on a local store: may run on the event loop

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.path) + "$")

    @property
    def operation_id(self) -> str:
        name = self.handler.__name__
        return re.sub(r"_(\w)", lambda m: m.group(1).upper(), name)


class HandlerTimings:
    """Per route, the call count and the durations of the last `window` calls, kept in
    this process (thread-safe) for `GET /api/metrics`."""

    def __init__(self, window: int = 1000) -> None:
        self.window = window
        self._lock = threading.Lock()
        self._calls: dict[str, int] = {}
        self._recent: dict[str, deque[float]] = {}

    def record(self, route: str, seconds: float) -> None:
        with self._lock:
            self._calls[route] = self._calls.get(route, 0) + 1
            self._recent.setdefault(route, deque(maxlen=self.window)).append(seconds)

    def snapshot(self) -> dict[str, tuple[int, list[float]]]:
        """Route -> (calls since start, durations of the recent calls in seconds)."""
        with self._lock:
            return {route: (count, list(self._recent[route]))
                    for route, count in self._calls.items()}


class Authenticator(Protocol):
    def check(self, route: Route, request: Request) -> Response | None: ...

    def succeeded(self, request: Request) -> None: ...


class Api:
    """Matches a request to its route, authenticates it, calls the handler with the
    services and turns every outcome (errors included) into a JSON response with a
    request id."""

    def __init__(self, routes: Sequence[Route], services: Services,
                 authenticator: Authenticator) -> None:
        self.routes = list(routes)
        self._compiled = [(r, r.pattern) for r in self.routes]
        self.services = services
        self.authenticator = authenticator
        self.timings = HandlerTimings()

    def route_for(self, method: str, path: str) -> Route | None:
        for route, pattern in self._compiled:
            if route.method == method and pattern.match(path):
                return route
        return None

    def max_body_for(self, method: str, path: str) -> int:
        route = self.route_for(method, path)
        return route.max_body if route else DEFAULT_MAX_BODY

    def is_quick(self, method: str, path: str) -> bool:
        route = self.route_for(method, path)
        return route is not None and route.quick

    def handle(self, request: Request) -> Response:
        started = time.perf_counter()
        given = request.header("x-request-id") or ""
        request.request_id = given if _REQUEST_ID.match(given) else secrets.token_hex(8)
        with request_context(request.request_id):  # on every line logged meanwhile
            response = self._dispatch(request)
            if log.isEnabledFor(logging.DEBUG):
                log.debug("%s %s -> %s in %.1f ms", request.method, request.path,
                          response.status, (time.perf_counter() - started) * 1000)
        response.headers["x-request-id"] = request.request_id
        return response

    def _dispatch(self, request: Request) -> Response:
        allowed: list[str] = []
        for route, pattern in self._compiled:
            match = pattern.match(request.path)
            if match is None:
                continue
            if route.method != request.method:
                allowed.append(route.method)
                continue
            request.path_params = match.groupdict()
            return self._call(route, request)
        if allowed:
            return Response.json(
                {"error": {"code": "method_not_allowed",
                           "message": f"{request.method} is not allowed on {request.path}; "
                                      f"use {', '.join(sorted(set(allowed)))}"}},
                405, {"allow": ", ".join(sorted(set(allowed)))})
        return Response.json({"error": {"code": "not_found",
                                        "message": f"no route {request.path}"}}, 404)

    def _call(self, route: Route, request: Request) -> Response:
        started = time.perf_counter()
        try:
            return self._run(route, request)
        finally:
            self.timings.record(f"{route.method} {route.path}", time.perf_counter() - started)

    def _run(self, route: Route, request: Request) -> Response:
        try:
            if len(request.body) > route.max_body:
                raise PayloadTooLarge(f"the body is {len(request.body)} bytes; "
                                      f"the limit here is {route.max_body}")
            early = self.authenticator.check(route, request)
            if early is not None:
                return early
            result = route.handler(self, request)
        except MetricStreamError as exc:
            headers = {"www-authenticate": "Bearer"} if status_of(exc) == 401 else None
            return Response.error(exc, headers)
        except Exception:
            log.exception("unexpected error in %s %s [%s]", request.method, request.path,
                          request.request_id)
            return Response.json({"error": {
                "code": "internal_error",
                "message": f"internal error; quote request id {request.request_id}"}}, 500)
        if isinstance(result, tuple):
            status, data = result
            result = Response.json(data, status)
        elif not isinstance(result, Response):
            result = Response.json(result)
        if result.status < 300:
            self.authenticator.succeeded(request)
        return result

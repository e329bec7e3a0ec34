"""How the console reaches metric-stream: one `AdminClient` interface, two ways in.

    AdminClient          the admin API as coroutines answering parsed JSON (abstract)
    ├── HttpClient       httpx against `metric-stream serve` or a deployed API
    └── LocalClient      the same route table called in this process, on the local store

Both answer the same thing for the same method, path and body, so a screen never knows
which one it talks to. Everything shared (encoding, error mapping, the typed methods)
lives here once; an implementation only fills in `_exchange`.

Failures are one tree:

    ClientError(status, code, message, field)   the API answered an error, or no answer
    ├── ConnectionLost                          the API cannot be reached (status None)
    └── RequestTimedOut                         it was reached but did not answer in time

The admin key is kept as a `SecretStr` and only ever put in the Authorization header.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote, unquote

from pydantic import SecretStr

from metric_stream import __version__

if TYPE_CHECKING:
    import httpx

    from metric_stream.api.http import Api, Request, Response, Route
    from metric_stream.bootstrap import Services
    from metric_stream.ports import Clock
    from metric_stream.settings import Settings

Json = Any
WorkflowAction = Literal["start", "stop", "pause"]
ConfigSection = Literal["retry", "fallback"]


# ---------------------------------------------------------------- errors
class ClientError(Exception):
    """A call that did not succeed: the API's `{error: {code, message, field?}}` with its
    status, or (status None) no answer at all."""

    def __init__(self, status: int | None, code: str, message: str,
                 field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field

    @property
    def title(self) -> str:
        """A short heading for a notification: `422 invalid_input`."""
        return f"{self.status} {self.code}" if self.status else self.code.replace("_", " ")

    def problems(self) -> list[tuple[str, str]]:
        """(field, reason) pairs: the API joins several invalid fields into one message
        (`name: must not be blank; unit: ...`); the first is also named in `field`."""
        found: list[tuple[str, str]] = []
        for part in self.message.split("; "):
            match = _PROBLEM.match(part)
            if match:
                found.append((match["field"], match["reason"]))
        if not found and self.field:
            found.append((self.field, self.message))
        return found

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status!r}, {self.code!r}, {self.message!r})"


_PROBLEM = re.compile(r"^(?P<field>[A-Za-z][\w.\-\[\]]*): (?P<reason>.+)$", re.DOTALL)


class ConnectionLost(ClientError):
    def __init__(self, message: str) -> None:
        super().__init__(None, "connection_lost", message)


class RequestTimedOut(ClientError):
    def __init__(self, message: str) -> None:
        super().__init__(None, "timeout", message)


@dataclass
class Reply:
    """A raw answer: status, content type and body."""

    status: int
    content_type: str = "application/json"
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------- the interface
def _segment(value: str) -> str:
    return quote(value, safe="")


def utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class AdminClient(ABC):
    """The admin API, route by route. Every method is a coroutine answering the parsed
    JSON body (bytes for a document), or raising `ClientError`."""

    target: str
    """Where the client talks to, for display (a URL or the local store's folder)."""

    # -- the one thing an implementation provides
    @abstractmethod
    async def _exchange(self, method: str, path: str, query: Mapping[str, str], body: bytes,
                        content_type: str | None, timeout: float | None) -> Reply:
        """Send one request (`path` with its segments percent-encoded)."""

    async def aclose(self) -> None:  # noqa: B027 (nothing to release, unless overridden)
        """Release what the client holds (connections); it may be used again after."""

    # -- the generic call
    async def request(self, method: str, path: str, body: Json | bytes | None = None,
                      query: Mapping[str, Any] | None = None, *,
                      content_type: str | None = None, timeout: float | None = None) -> Json:
        """Call any route: a JSON-able `body` is sent as JSON, bytes as they are (with
        `content_type`); answers parsed JSON, or the bytes of another content type."""
        if body is None:
            raw = b""
        elif isinstance(body, bytes):
            raw = body
        else:
            raw = json.dumps(body, separators=(",", ":")).encode()
            content_type = content_type or "application/json"
        params = {k: _query_text(v) for k, v in (query or {}).items() if v is not None}
        reply = await self._exchange(method.upper(), path, params, raw, content_type, timeout)
        if reply.status >= 400:
            raise _error_of(reply)
        if not reply.body:
            return None
        if reply.content_type.split(";")[0].strip() == "application/json":
            try:
                return json.loads(reply.body)
            except ValueError:
                raise ClientError(reply.status, "bad_answer",
                                  "the API answered with invalid JSON") from None
        return reply.body

    # -- monitoring
    async def health(self) -> Json:
        return await self.request("GET", "/api/health")

    async def metrics(self) -> Json:
        return await self.request("GET", "/api/metrics")

    # -- KPI registry
    async def kpis(self) -> Json:
        return await self.request("GET", "/api/kpis")

    async def kpi(self, kpi_id: str) -> Json:
        return await self.request("GET", f"/api/kpis/{_segment(kpi_id)}")

    async def create_kpi(self, body: Mapping[str, Any]) -> Json:
        return await self.request("POST", "/api/kpis", dict(body))

    async def replace_kpi(self, kpi_id: str, body: Mapping[str, Any]) -> Json:
        return await self.request("PUT", f"/api/kpis/{_segment(kpi_id)}", dict(body))

    async def delete_kpi(self, kpi_id: str, *, force: bool = False) -> Json:
        return await self.request("DELETE", f"/api/kpis/{_segment(kpi_id)}",
                                  query={"force": "true"} if force else None)

    async def import_csv(self, kpi_id: str, data: bytes, filename: str | None = None) -> Json:
        return await self.request("POST", f"/api/kpis/{_segment(kpi_id)}/import", data,
                                  {"filename": filename}, content_type="text/csv",
                                  timeout=120)

    async def timeseries(self, kpi_id: str, *, start: datetime | None = None,
                         end: datetime | None = None, limit: int | None = None) -> Json:
        return await self.request("GET", f"/api/timeseries/{_segment(kpi_id)}",
                                  query={"from": start, "to": end, "limit": limit})

    # -- jobs and documents
    async def jobs(self, *, limit: int = 20, status: str | None = None) -> Json:
        return await self.request("GET", "/api/jobs", query={"limit": limit, "status": status})

    async def job(self, trace_id: str) -> Json:
        return await self.request("GET", f"/api/jobs/{_segment(trace_id)}")

    async def run_now(self, kpis: Sequence[str] | None = None, *, demo: bool = False) -> Json:
        body: dict[str, Any] = {"demo": demo}
        if kpis:
            body["kpis"] = list(kpis)
        return await self.request("POST", "/api/jobs", body, timeout=120)

    async def redeliver(self, trace_id: str, *, failed_only: bool = False,
                        endpoints: Sequence[str] | None = None) -> Json:
        body: dict[str, Any] = {"failedOnly": failed_only}
        if endpoints:
            body["endpoints"] = list(endpoints)
        return await self.request("POST", f"/api/jobs/{_segment(trace_id)}/deliver", body,
                                  timeout=300)

    async def document(self, trace_id: str) -> bytes:
        answer = await self.request("GET", f"/api/documents/{_segment(trace_id)}", timeout=60)
        return answer if isinstance(answer, bytes) else json.dumps(answer).encode()

    # -- schedules
    async def schedules(self) -> Json:
        return await self.request("GET", "/api/schedules")

    async def schedule(self, schedule_id: str) -> Json:
        return await self.request("GET", f"/api/schedules/{_segment(schedule_id)}")

    async def create_schedule(self, body: Mapping[str, Any]) -> Json:
        return await self.request("POST", "/api/schedules", dict(body))

    async def replace_schedule(self, schedule_id: str, body: Mapping[str, Any]) -> Json:
        return await self.request("PUT", f"/api/schedules/{_segment(schedule_id)}", dict(body))

    async def delete_schedule(self, schedule_id: str) -> Json:
        return await self.request("DELETE", f"/api/schedules/{_segment(schedule_id)}")

    # -- configuration
    async def config(self) -> Json:
        return await self.request("GET", "/api/config")

    async def put_config(self, body: Mapping[str, Any]) -> Json:
        return await self.request("PUT", "/api/config", dict(body))

    async def put_config_section(self, section: ConfigSection, body: Mapping[str, Any]) -> Json:
        return await self.request("PUT", f"/api/config/{section}", dict(body))

    # -- delivery endpoints
    async def endpoints(self) -> Json:
        return await self.request("GET", "/api/endpoints")

    async def endpoint(self, endpoint_id: str) -> Json:
        return await self.request("GET", f"/api/endpoints/{_segment(endpoint_id)}")

    async def create_endpoint(self, body: Mapping[str, Any]) -> Json:
        return await self.request("POST", "/api/endpoints", dict(body))

    async def replace_endpoint(self, endpoint_id: str, body: Mapping[str, Any]) -> Json:
        return await self.request("PUT", f"/api/endpoints/{_segment(endpoint_id)}", dict(body))

    async def delete_endpoint(self, endpoint_id: str) -> Json:
        return await self.request("DELETE", f"/api/endpoints/{_segment(endpoint_id)}")

    async def test_endpoint(self, endpoint_id: str) -> Json:
        return await self.request("POST", f"/api/endpoints/{_segment(endpoint_id)}/test",
                                  timeout=120)

    # -- n8n workflows
    async def workflow(self, workflow_id: str, action: WorkflowAction) -> Json:
        return await self.request("POST", f"/api/workflows/{_segment(workflow_id)}/{action}",
                                  timeout=60)

    async def start_workflow(self, workflow_id: str) -> Json:
        return await self.workflow(workflow_id, "start")

    async def stop_workflow(self, workflow_id: str) -> Json:
        return await self.workflow(workflow_id, "stop")

    async def pause_workflow(self, workflow_id: str) -> Json:
        return await self.workflow(workflow_id, "pause")


def _query_text(value: Any) -> str:
    if isinstance(value, datetime):
        return utc_text(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _error_of(reply: Reply) -> ClientError:
    """The API's error body as a `ClientError`; a body that is not one (a proxy's HTML
    page) is quoted briefly."""
    try:
        error = json.loads(reply.body).get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, Mapping) and isinstance(error.get("message"), str):
        field_ = error.get("field")
        return ClientError(reply.status, str(error.get("code") or "error"), error["message"],
                           field_ if isinstance(field_, str) else None)
    text = reply.body.decode("utf-8", "replace").strip()
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text)).strip()[:200]
    return ClientError(reply.status, "http_error", text or f"HTTP {reply.status}")


# ---------------------------------------------------------------- over HTTP
class HttpClient(AdminClient):
    """The admin API of `metric-stream serve` or a deployment, with the admin key as a
    Bearer token. The httpx client is made on first use (in the running event loop)."""

    def __init__(self, url: str, admin_key: SecretStr | str | None, *,
                 timeout_s: float = 15.0, connect_timeout_s: float = 5.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        self.target = self.url
        self._key = admin_key if isinstance(admin_key, SecretStr | None) else SecretStr(admin_key)
        self._timeout_s = timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._transport = transport
        self._http: httpx.AsyncClient | None = None

    def _client(self) -> httpx.AsyncClient:
        import httpx

        if self._http is None:
            headers = {"user-agent": f"metric-stream-tui/{__version__}",
                       "accept": "application/json"}
            if self._key is not None:
                headers["authorization"] = f"Bearer {self._key.get_secret_value()}"
            self._http = httpx.AsyncClient(
                base_url=self.url, headers=headers, transport=self._transport,
                timeout=httpx.Timeout(self._timeout_s, connect=self._connect_timeout_s),
                follow_redirects=False)
        return self._http

    async def _exchange(self, method: str, path: str, query: Mapping[str, str], body: bytes,
                        content_type: str | None, timeout: float | None) -> Reply:
        import httpx

        headers = {"content-type": content_type} if content_type else {}
        options: dict[str, Any] = {}
        if timeout is not None:
            options["timeout"] = httpx.Timeout(timeout, connect=self._connect_timeout_s)
        try:
            response = await self._client().request(method, path, params=dict(query),
                                                    content=body or None, headers=headers,
                                                    **options)
        except httpx.ConnectTimeout:
            raise ConnectionLost(f"{self.url} did not accept the connection in time") from None
        except httpx.TimeoutException:
            raise RequestTimedOut(f"{self.url} did not answer {method} {path} in time") from None
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError,
                httpx.WriteError) as exc:
            raise ConnectionLost(f"cannot reach {self.url}: {_reason(exc)}") from None
        except httpx.HTTPError as exc:
            raise ClientError(None, "http_error", f"{type(exc).__name__}: {exc}") from None
        return Reply(response.status_code, response.headers.get("content-type", ""),
                     response.content, dict(response.headers))

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None


def _reason(error: Exception) -> str:
    text = str(error) or type(error).__name__
    return text.split("] ")[-1]  # "[Errno 111] Connection refused" -> "Connection refused"


# ---------------------------------------------------------------- in this process
class LocalOperator:
    """The authenticator of the local console: whoever can open the store is the
    operator, so every route is let through (there is no key to check)."""

    def check(self, route: Route, request: Request) -> Response | None:
        return None

    def succeeded(self, request: Request) -> None:
        return None


class LocalClient(AdminClient):
    """The route table called in this process on the configured (embedded or AWS)
    store: no server, no network. Services are built on the first call, and each call
    runs in a thread, since the stores are synchronous."""

    def __init__(self, settings: Settings, *, clock: Clock | None = None,
                 services: Services | None = None) -> None:
        self.settings = settings
        where = settings.home if settings.backend == "embedded" else settings.table_name
        self.target = f"local store {where}"
        self._clock = clock
        self._services = services
        self._api: Api | None = None
        self._building = threading.Lock()

    @property
    def services(self) -> Services:
        """The services (built on first use), e.g. for a test to arrange data."""
        with self._building:
            if self._services is None:
                from metric_stream.bootstrap import build_services

                self._services = build_services(self.settings, clock=self._clock)
                self._services.init()
            return self._services

    def _build_api(self) -> Api:
        from metric_stream.api.app import ROUTES
        from metric_stream.api.http import Api

        services = self.services
        with self._building:
            if self._api is None:
                self._api = Api(ROUTES, services, LocalOperator())
            return self._api

    async def _exchange(self, method: str, path: str, query: Mapping[str, str], body: bytes,
                        content_type: str | None, timeout: float | None) -> Reply:
        from metric_stream.api.http import Request

        api = self._api
        if api is None:
            api = await asyncio.to_thread(self._build_api)  # opens the store: not on the loop
        headers = {"content-type": content_type} if content_type else {}
        # as an ASGI server does: the route table sees the path decoded
        request = Request(method, unquote(path), headers, body, dict(query))
        response = await asyncio.to_thread(api.handle, request)
        return Reply(response.status, response.headers.get("content-type", ""), response.body,
                     response.headers)

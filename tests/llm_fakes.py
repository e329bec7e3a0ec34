"""A local fake of the LLM providers: the OpenRouter, Gemini and Anthropic APIs (their
paths, their authentication, their answer and error bodies, token usage) on one threaded
HTTP server on 127.0.0.1. It records every call, and answers from the provider's script
first, then with its responder; it counts the most requests it held at once.

    with FakeProviders(lambda call: ok(call.provider)) as fake:
        fake.script("gemini", error("gemini", 429, "Quota exceeded"), ok("gemini"))
        client = GeminiClient(http, KEY, fake.base_url("gemini"))
        ...
        assert len(fake.calls) == 2
"""

from __future__ import annotations

import json
import re
import sys
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self, get_args
from urllib.parse import parse_qs, urlsplit

from metric_stream.models.config import Provider

PROVIDERS: tuple[Provider, ...] = get_args(Provider)
KEY = "sk-test-0123456789abcdef"
MODELS: dict[Provider, str] = {
    "openrouter": "openai/gpt-4o-mini",
    "gemini": "gemini-2.5-flash",
    "anthropic": "claude-sonnet-4-5",
}
USAGE: dict[Provider, tuple[int, int]] = {
    "gemini": (300, 20), "openrouter": (120, 30), "anthropic": (200, 40)}
"""(input, output) tokens each provider reports for an answer, unless a test says else."""


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: Mapping[str, Any] | list[Any] | bytes | None = None
    """JSON, or raw bytes."""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass(frozen=True)
class Call:
    """One request as the server received it."""

    provider: Provider
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    """Lower-case names."""
    body: dict[str, Any]

    @property
    def parts(self) -> list[dict[str, Any]]:
        """The user message's parts, images first and the step's text last."""
        if self.provider == "gemini":
            parts: list[dict[str, Any]] = self.body["contents"][0]["parts"]
            return parts
        messages = self.body["messages"]
        user: list[dict[str, Any]] = messages[-1]["content"]
        return user

    @property
    def prompt(self) -> dict[str, Any]:
        """The step's user text, which the chain writes as JSON."""
        prompt: dict[str, Any] = json.loads(self.parts[-1]["text"])
        return prompt

    @property
    def step(self) -> str:
        return str(self.prompt["step"])

    @property
    def kpi_id(self) -> str | None:
        """The KPI the chain reads; None for the consolidated chain."""
        kpi_id = self.prompt["kpi"].get("id")
        return None if kpi_id is None else str(kpi_id)


Responder = Callable[[Call], Reply]


def ok_body(provider: Provider, text: str | None = "Fine.",
            tokens: tuple[int, int] | None = None) -> dict[str, Any]:
    """The provider's answer of `text` (None: an answer without any)."""
    tokens_in, tokens_out = tokens or USAGE[provider]
    model = MODELS[provider]
    if provider == "openrouter":
        return {"id": "gen-1", "object": "chat.completion", "model": model,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": tokens_in, "completion_tokens": tokens_out,
                          "total_tokens": tokens_in + tokens_out}}
    if provider == "gemini":
        parts = [] if text is None else [{"text": text}]
        return {"candidates": [{"content": {"role": "model", "parts": parts},
                                "finishReason": "STOP", "index": 0}],
                "usageMetadata": {"promptTokenCount": tokens_in,
                                  "candidatesTokenCount": tokens_out,
                                  "totalTokenCount": tokens_in + tokens_out},
                "modelVersion": model}
    return {"id": "msg_01", "type": "message", "role": "assistant", "model": model,
            "content": [] if text is None else [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": tokens_in, "output_tokens": tokens_out}}


def ok(provider: Provider, text: str | None = "Fine.") -> Reply:
    return Reply(body=ok_body(provider, text))


GOOGLE_STATUS = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 429: "RESOURCE_EXHAUSTED",
                  500: "INTERNAL", 503: "UNAVAILABLE"}
ANTHROPIC_TYPE = {400: "invalid_request_error", 401: "authentication_error",
                   403: "permission_error", 429: "rate_limit_error", 500: "api_error",
                   529: "overloaded_error"}


def error_body(provider: Provider, status: int, message: str) -> dict[str, Any]:
    if provider == "openrouter":
        return {"error": {"message": message, "code": status}}
    if provider == "gemini":
        return {"error": {"code": status, "message": message, "status": GOOGLE_STATUS[status]}}
    return {"type": "error", "error": {"type": ANTHROPIC_TYPE[status], "message": message}}


def error(provider: Provider, status: int, message: str, **headers: str) -> Reply:
    """The provider's error; `retry_after="3"` sends a `retry-after: 3` header."""
    return Reply(status, error_body(provider, status, message),
                 {k.replace("_", "-"): v for k, v in headers.items()})


_GEMINI_PATH = re.compile(r"/v1beta/models/(?P<model>[^/:]+):generateContent")


def _route(path: str) -> Provider | None:
    if path == "/api/v1/chat/completions":
        return "openrouter"
    if _GEMINI_PATH.fullmatch(path):
        return "gemini"
    if path == "/v1/messages":
        return "anthropic"
    return None


def _auth_error(call: Call) -> Reply | None:
    """The provider's answer to a missing or wrong key, as the real APIs give it."""
    headers, provider = call.headers, call.provider
    if provider == "openrouter" and headers.get("authorization") != f"Bearer {KEY}":
        return error(provider, 401, "No auth credentials found")
    if provider == "gemini" and KEY not in (headers.get("x-goog-api-key"),
                                            *call.query.get("key", ())):
        return error(provider, 400, "API key not valid. Please pass a valid API key.")
    if provider == "anthropic" and (headers.get("x-api-key") != KEY
                                    or "anthropic-version" not in headers):
        return error(provider, 401, "invalid x-api-key")
    return None


class FakeProviders:
    """The three providers' APIs on one local server (see the module docstring).
    `respond` answers a call no script does; `delay_s` holds every reply that has no
    delay of its own; `reset()` brings back the responder it was made with."""

    def __init__(self, respond: Responder) -> None:
        self.calls: list[Call] = []
        self.respond = self._default = respond
        self.delay_s = 0.0
        self.max_in_flight = 0
        self.closing = threading.Event()
        self._script: dict[Provider, deque[Reply]] = {p: deque() for p in PROVIDERS}
        self._in_flight = 0
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler, self)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05})
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def base_url(self, provider: Provider) -> str:
        paths: dict[Provider, str] = {
            "openrouter": "/api/v1", "gemini": "/v1beta", "anthropic": "/v1"}
        return self.url + paths[provider]

    def script(self, provider: Provider, *replies: Reply) -> None:
        """Answer the provider's next calls with `replies`, in order."""
        with self._lock:
            self._script[provider].extend(replies)

    def unused(self) -> dict[Provider, int]:
        """The scripted replies no call has taken, by provider."""
        with self._lock:
            return {p: len(r) for p, r in self._script.items() if r}

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            for replies in self._script.values():
                replies.clear()
            self.respond = self._default
            self.delay_s = 0.0
            self.max_in_flight = 0

    def of(self, provider: Provider | None = None, *, step: str | None = None,
           kpi_id: str | None = None) -> list[Call]:
        with self._lock:
            calls = list(self.calls)
        return [c for c in calls if (provider is None or c.provider == provider)
                and (step is None or c.step == step)
                and (kpi_id is None or c.kpi_id == kpi_id)]

    def enter(self, call: Call) -> Reply:
        with self._lock:
            self.calls.append(call)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            auth_error = _auth_error(call)
            if auth_error is not None:
                return auth_error
            script = self._script[call.provider]
            scripted = script.popleft() if script else None
            respond, delay_s = self.respond, self.delay_s
        reply = scripted if scripted is not None else respond(call)
        return reply if reply.delay_s or not delay_s else replace(reply, delay_s=delay_s)

    def leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def close(self) -> None:
        self.closing.set()  # wakes the slow replies, so closing does not wait for them
        self._server.shutdown()
        self._server.server_close()  # joins the request threads
        self._thread.join()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins every request thread

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 fake: FakeProviders) -> None:
        self.fake = fake
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out has closed its socket before the reply is written.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        raw = self.rfile.read(int(self.headers.get("content-length", "0")))
        provider = _route(url.path)
        if provider is None:
            self._send(Reply(404, {"error": {"message": f"no route {url.path}"}}))
            return
        fake, call = self.server.fake, Call(
            provider=provider, path=url.path, query=parse_qs(url.query),
            headers={k.lower(): v for k, v in self.headers.items()}, body=json.loads(raw))
        try:
            reply = fake.enter(call)
            if reply.delay_s and fake.closing.wait(reply.delay_s):
                return
            self._send(reply)
        finally:
            fake.leave()

    def _send(self, reply: Reply) -> None:
        raw = isinstance(reply.body, bytes)
        data = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        try:
            self.send_response(reply.status)
            if not raw:
                self.send_header("Content-Type", "application/json")
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except ConnectionError:
            pass  # the client gave up waiting

"""Local fakes of the services delivery sends to: HTTP servers speaking Telegram's,
Discord's, Slack's and Twilio's formats (or any other, given a responder), and an SMTP
server. Each listens on 127.0.0.1 on a free port in a thread of its own (so sync and
async tests alike can use it), records every request, and answers from its script
first, then with its responder (by default the service's usual success).

    with fake_telegram() as telegram:
        telegram.script(telegram_error(429, "Too Many Requests", retry_after=7))
        settings = Settings(telegram_base_url=telegram.url)
        ...
        assert telegram.requests[0].json["chat_id"] == "123456"
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import itertools
import json
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl

from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

HOST = "127.0.0.1"
_CHUNK = b"x" * 65536


@dataclass(frozen=True)
class Reply:
    """One scripted answer: `body` bytes or text as is, a dict or list as JSON; after a
    `delay` (cut short when the server stops); then `filler` more bytes streamed (a
    huge answer, written until the client hangs up)."""

    status: int = 200
    body: Any = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    filler: int = 0

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, bytes):
            return self.body, "application/octet-stream"
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain; charset=utf-8"
        return json.dumps(self.body).encode(), "application/json"


@dataclass(frozen=True)
class Part:
    """One part of a multipart/form-data request."""

    name: str
    filename: str | None
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Recorded:
    """One request as the server received it (header names in lower case)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))

    @property
    def parts(self) -> dict[str, Part]:
        """The multipart/form-data fields by name."""
        head = f"Content-Type: {self.headers['content-type']}\r\n\r\n".encode()
        message = message_from_bytes(head + self.body, policy=default_policy)
        parts: dict[str, Part] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            data = part.get_payload(decode=True)
            parts[str(name)] = Part(str(name), part.get_filename(), part.get_content_type(),
                                    data if isinstance(data, bytes) else b"")
        return parts

    @property
    def basic_auth(self) -> tuple[str, str] | None:
        scheme, _, value = self.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        user, _, password = base64.b64decode(value).decode().partition(":")
        return user, password


Responder = Callable[[Recorded], Reply]


class FakeHttpServer:
    """An aiohttp server on 127.0.0.1 in its own thread and event loop."""

    def __init__(self, responder: Responder | Reply | None = None) -> None:
        self.responder = responder or Reply()
        self.requests: list[Recorded] = []
        self.streamed = 0
        """Filler bytes written before the client hung up (or all of them)."""
        self.port = 0
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with `replies`, in order."""
        with self._lock:
            self._script.extend(replies)

    def start(self) -> Self:
        loop = asyncio.new_event_loop()
        started: concurrent.futures.Future[web.AppRunner] = concurrent.futures.Future()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                runner = loop.run_until_complete(self._serve())
            except BaseException as exc:
                started.set_exception(exc)
                loop.close()
                return
            started.set_result(runner)
            loop.run_forever()
            loop.run_until_complete(self._shutdown(runner))
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="fake-http", daemon=True)
        self._thread.start()
        started.result(timeout=10)
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()

    async def _serve(self) -> web.AppRunner:
        self._stopping = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, HOST, 0)
        await site.start()
        self.port = runner.addresses[0][1]
        return runner

    async def _shutdown(self, runner: web.AppRunner) -> None:
        assert self._stopping is not None
        self._stopping.set()  # wakes delayed replies
        await runner.cleanup()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        recorded = Recorded(request.method, request.path, dict(request.query),
                            {k.lower(): v for k, v in request.headers.items()},
                            await request.read())
        with self._lock:
            self.requests.append(recorded)
            reply = self._script.popleft() if self._script else None
        if reply is None:
            reply = self.responder if isinstance(self.responder, Reply) else (
                self.responder(recorded))
        if reply.delay:
            assert self._stopping is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), reply.delay)
        body, content_type = reply.encoded()
        headers = {"Content-Type": content_type, **reply.headers}
        if not reply.filler:
            return web.Response(status=reply.status, body=body, headers=headers)
        response = web.StreamResponse(status=reply.status, headers=headers)
        response.content_length = len(body) + reply.filler
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            await response.write(body)
            while self.streamed < reply.filler:
                chunk = _CHUNK[: reply.filler - self.streamed]
                await response.write(chunk)
                self.streamed += len(chunk)
            await response.write_eof()
        return response


# The services' answers ----------------------------------------------------------------

_ids = itertools.count(1)


def telegram_ok(request: Recorded) -> Reply:
    """What the Bot API answers to sendMessage and sendDocument."""
    chat = request.json.get("chat_id") if "json" in request.headers.get(
        "content-type", "") else None
    return Reply(200, {"ok": True, "result": {"message_id": next(_ids), "date": 1796000000,
                                              "chat": {"id": chat, "type": "private"}}})


def telegram_error(code: int, description: str, *, retry_after: int | None = None,
                   migrate_to: int | None = None) -> Reply:
    parameters: dict[str, int] = {}
    if retry_after is not None:
        parameters["retry_after"] = retry_after
    if migrate_to is not None:
        parameters["migrate_to_chat_id"] = migrate_to
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return Reply(code, body)


def discord_ok(request: Recorded) -> Reply:
    """With `?wait=true` the created message (200), else 204."""
    if request.query.get("wait") != "true":
        return Reply(204)
    return Reply(200, {"id": str(1100000000000000000 + next(_ids)), "type": 0,
                       "channel_id": "1000000000000000001", "webhook_id": "1"})


def discord_error(status: int, message: str, code: int = 0, *,
                  retry_after: float | None = None) -> Reply:
    body: dict[str, Any] = {"message": message, "code": code}
    headers: dict[str, str] = {}
    if retry_after is not None:
        body.update(retry_after=retry_after, **{"global": False})
        headers["Retry-After"] = str(int(retry_after) + 1)
    return Reply(status, body, headers)


def slack_ok(_: Recorded) -> Reply:
    return Reply(200, "ok", {"Content-Type": "text/html"})


def slack_error(status: int, word: str, *, retry_after: int | None = None) -> Reply:
    headers = {"Content-Type": "text/html"}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return Reply(status, word, headers)


def twilio_ok(request: Recorded) -> Reply:
    form = request.form
    return Reply(201, {"sid": f"SM{next(_ids):032x}", "status": "queued", "to": form.get("To"),
                       "from": form.get("From"), "body": form.get("Body"),
                       "num_segments": "1"})


def twilio_error(status: int, code: int, message: str) -> Reply:
    return Reply(status, {"code": code, "message": message, "status": status,
                          "more_info": f"https://www.twilio.com/docs/errors/{code}"})


def fake_telegram() -> FakeHttpServer:
    return FakeHttpServer(telegram_ok)


def fake_discord() -> FakeHttpServer:
    return FakeHttpServer(discord_ok)


def fake_slack() -> FakeHttpServer:
    return FakeHttpServer(slack_ok)


def fake_twilio() -> FakeHttpServer:
    return FakeHttpServer(twilio_ok)


# SMTP ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.data, policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        return parsed


class _Controller(Controller):
    """aiosmtpd's controller on a free port (it needs the port to check it is up)."""

    def _trigger_server(self) -> None:
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


class FakeSmtpServer:
    """An SMTP server on 127.0.0.1 without TLS (so without STARTTLS), recording the
    mail it accepts. With `credentials`, it offers AUTH and checks them; `rcpt_replies`
    answers chosen recipients (`"550 5.1.1 no such user"`), `data_reply` the DATA;
    `port` 0 takes a free one."""

    def __init__(self, credentials: tuple[str, str] | None = None, *, port: int = 0) -> None:
        self.credentials = credentials
        self.mails: list[Mail] = []
        self.logins: list[tuple[str, str]] = []
        self.rcpt_replies: dict[str, str] = {}
        self.data_reply: str | None = None
        options: dict[str, Any] = {"auth_require_tls": False}
        if credentials is not None:
            options["authenticator"] = self._authenticate
        self._controller = _Controller(self, hostname=HOST, port=port,
                                       server_hostname="fake-smtp.test", ready_timeout=10,
                                       **options)

    @property
    def host(self) -> str:
        return HOST

    @property
    def port(self) -> int:
        return self._controller.port

    def __enter__(self) -> Self:
        self._controller.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._controller.stop()

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope,
                      mechanism: str, auth_data: Any) -> AuthResult:
        # handled=False: aiosmtpd answers the failure (535) itself
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = (auth_data.login.decode(), auth_data.password.decode())
        self.logins.append(login)
        return AuthResult(success=login == self.credentials, handled=False)

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_reply is not None:
            return self.data_reply
        data = envelope.original_content or b""
        self.mails.append(Mail(str(envelope.mail_from), tuple(envelope.rcpt_tos), data))
        return "250 Message accepted for delivery"

"""Every other service Apprise knows (ntfy, Gotify, Pushover, Matrix, Teams, ...): the
plain summary and the report link, sent by Apprise.

Apprise keeps no delivery state and reports only success or failure, so a failure is
retried like a 5xx (with the delivery retries) and its reason is Apprise's log line.
Apprise does its own HTTP (requests, in threads of its own): once Apprise has sent for
us, every request made through `requests` in this process (only Apprise uses it) is
checked against the outbound rules (its host resolved and refused if private, loopback
or metadata, unless allowed) and does not follow redirects; and the connection it then
opens goes to an address resolved and checked at that moment, so a name that resolves
elsewhere after the first check (DNS rebinding) leads nowhere.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from metric_stream.delivery.base import Channel, Outgoing, SendContext, SendResult, short
from metric_stream.errors import Forbidden, InvalidInput

if TYPE_CHECKING:
    from metric_stream.settings import Settings

log = logging.getLogger(__name__)
_guard: dict[str, Settings] = {}


_connecting = threading.local()  # the settings a `requests` call in this thread checks with


def _install_guard(settings: Settings) -> None:
    """Wrap requests' Session.request (once): no redirects, the outbound check on every
    URL, with the latest settings; and urllib3's connection factory, so that the
    connections those requests open (in the same thread) go to checked addresses only.
    Other urllib3 users (botocore) call the factory outside a guarded request: unchanged."""
    import requests.sessions
    import urllib3.util.connection

    _guard["settings"] = settings
    original = requests.sessions.Session.request
    if getattr(original, "_metric_stream_guard", False):
        return

    def request(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        settings = _guard.get("settings")
        if settings is None:
            return original(self, method, url, *args, **kwargs)
        kwargs["allow_redirects"] = False
        refusal = _url_refusal(url, settings)
        if refusal:
            raise requests.exceptions.ConnectionError(refusal)
        _connecting.settings = settings
        try:
            return original(self, method, url, *args, **kwargs)
        finally:
            _connecting.settings = None

    create_connection = urllib3.util.connection.create_connection

    def checked_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> Any:
        settings = getattr(_connecting, "settings", None)
        if settings is None:
            return create_connection(address, *args, **kwargs)
        from metric_stream.services.outbound import connect_checked

        host, port = address
        try:
            return connect_checked(host, port, settings,
                                   lambda checked: create_connection(checked, *args, **kwargs))
        except Forbidden as refused:  # an OSError reads as a connection failure to urllib3
            raise ConnectionRefusedError(f"refused: {refused.message}") from None

    request._metric_stream_guard = True  # type: ignore[attr-defined]
    requests.sessions.Session.request = request  # type: ignore[method-assign,assignment]
    urllib3.util.connection.create_connection = checked_connection


def _url_refusal(url: str, settings: Settings) -> str | None:
    from urllib.parse import urlsplit

    from metric_stream.errors import MetricStreamError
    from metric_stream.services.outbound import check_outbound_url

    try:
        check_outbound_url(url, settings)
    except MetricStreamError as exc:
        return f"{urlsplit(url).hostname}: {exc.message}"
    return None


def _plugin(url: str) -> Any:
    import apprise

    plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    if plugin is None:
        raise InvalidInput(
            "is not a URL metric-stream or Apprise can deliver to: use https://, tgram://, "
            "discord://, slack://, mailto://, ses://, sns://, twilio:// or any scheme Apprise "
            "supports (https://github.com/caronc/apprise/wiki)", field="url")
    return plugin


@dataclass(frozen=True)
class AppriseChannel(Channel):
    url: str = field(repr=False)
    service: str
    target_host: str
    kind = "apprise"

    @classmethod
    def from_url(cls, url: str) -> AppriseChannel:
        plugin = _plugin(url)
        return cls(url, type(plugin).__name__.removeprefix("Notify").lower(),
                   str(getattr(plugin, "host", "") or ""))

    @property
    def host(self) -> str:
        return self.target_host or self.service

    def check(self, settings: Settings) -> None:
        if not self.target_host:
            return
        import ipaddress

        from metric_stream.services.outbound import address_refusal

        try:
            infos = socket.getaddrinfo(self.target_host, None, proto=socket.IPPROTO_TCP)
        except socket.gaierror:
            return  # a name that does not resolve now fails at send time, with a reason
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            reason = address_refusal(address, settings)
            if reason:
                raise Forbidden(f"{self.target_host} resolves to {address}, {reason}",
                                field="url")

    async def send(self, out: Outgoing, ctx: SendContext) -> SendResult:
        try:
            await asyncio.to_thread(self.check, ctx.settings)
        except Forbidden as exc:
            return SendResult(ok=False, error=exc.message, retryable=False)
        title, body = _plain(out)
        return await asyncio.to_thread(self._notify, title, body, ctx.timeout_s, ctx.settings)

    def _notify(self, title: str, body: str, timeout_s: float, settings: Settings
                ) -> SendResult:
        import apprise

        _install_guard(settings)
        notifier = apprise.Apprise()
        plugin = _plugin(self.url)
        if hasattr(plugin, "socket_read_timeout"):
            plugin.socket_read_timeout = timeout_s
            plugin.socket_connect_timeout = min(timeout_s, 10.0)
        notifier.add(plugin)
        with apprise.LogCapture(level=logging.WARNING) as captured:  # type: ignore[no-untyped-call]
            ok = notifier.notify(title=title, body=body)
        if ok:
            return SendResult(ok=True)
        lines = [line for line in captured.getvalue().splitlines() if line.strip()]
        reason = lines[-1] if lines else "Apprise reported a failure"
        return SendResult(ok=False, error=short(f"{self.service}: {reason}"), retryable=True)


def _plain(out: Outgoing) -> tuple[str, str]:
    if out.test:
        return "metric-stream test", f"Test message for endpoint {out.endpoint_id}: delivery works."
    email = out.messages.get("email") or {}
    title = str(email.get("subject") or f"Daily Index Report {out.trace_id}")
    body = str(email.get("text") or out.messages.get("sms") or "")
    if out.report_url and out.report_url not in body:
        body = f"{body}\n\nReport: {out.report_url}".strip()
    return title, body

"""What every delivery channel shares: the message to send, the outcome of a send, and
the context a channel sends with (an HTTP session whose connections are checked, the
settings with each service's base URL, a thread pool for blocking clients).

A channel is built from an endpoint's URL by `channels.parse_channel`; it never keeps
state between sends, and never puts a secret of its URL in an error or a log line.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import aiohttp

    from metric_stream.settings import Settings

MAX_ERROR_CHARS = 300
MAX_RETRY_AFTER_S = 300.0


@dataclass(frozen=True)
class Outgoing:
    """One message to one endpoint. `messages` is the job's channel messages (the
    consolidated package's `messages`: email, telegram, discord, slack, sms, webhook);
    each channel picks its own. `message_id` is `{traceId}:{endpointId}` (an alert's
    `{traceId}:{cause}:{endpointId}`): the idempotency id receivers may use to drop a
    duplicate."""

    trace_id: str
    endpoint_id: str
    messages: Mapping[str, Any]
    report_url: str | None = None
    pdf: bytes | None = None
    """The report's bytes when the endpoint wants it attached (else None: link only)."""
    pdf_name: str = "report.pdf"
    test: bool = False
    """A test send (`POST /api/endpoints/{id}/test`): same path, a test message."""
    signing_secret: str | None = None
    """The endpoint's Standard Webhooks secret (`whsec_...`), for generic webhooks."""
    timestamp: int = 0
    """Unix seconds of the send (the webhook timestamp); 0: now."""
    kind: str = "report"
    """`report`, or an operator alert's cause (`alert-partial`, ...)."""

    @property
    def message_id(self) -> str:
        if self.kind == "report":
            return f"{self.trace_id}:{self.endpoint_id}"
        return f"{self.trace_id}:{self.kind}:{self.endpoint_id}"


@dataclass(frozen=True)
class SendResult:
    ok: bool
    status: int | None = None
    """The service's HTTP status (or SMTP reply code), when there was one."""
    error: str | None = None
    """Why it failed, without any secret of the endpoint URL, at most 300 characters."""
    retryable: bool = False
    retry_after: float | None = None
    """Seconds the service asked to wait (429/503 `Retry-After`, Telegram's
    `retry_after`), capped at MAX_RETRY_AFTER_S."""
    gone: bool = False
    """The service says the address is gone for good (HTTP 410, a deleted webhook, a
    blocked bot): the endpoint is disabled at once."""


@dataclass
class SendContext:
    session: aiohttp.ClientSession
    """Connections go through the outbound check (see `safety.SafeResolver`); redirects
    are never followed (pass `allow_redirects=False`)."""
    settings: Settings
    timeout_s: float = 10.0
    max_body_bytes: int = 64 * 1024
    """Read at most this much of a response body (a huge answer is cut, not loaded)."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def client_timeout(self) -> aiohttp.ClientTimeout:
        """One `ClientTimeout` for every request of the run (built once)."""
        timeout = self.extra.get("client-timeout")
        if timeout is None:
            import aiohttp

            timeout = self.extra["client-timeout"] = aiohttp.ClientTimeout(total=self.timeout_s)
        return timeout


class Channel(ABC):
    """One endpoint's way out. `kind` names the channel (`webhook`, `telegram`, ...);
    `host` is what per-host limits count (the service's host name)."""

    kind: str = ""

    @property
    @abstractmethod
    def host(self) -> str: ...

    @abstractmethod
    async def send(self, out: Outgoing, ctx: SendContext) -> SendResult: ...

    def check(self, settings: Settings) -> None:  # noqa: B027 (optional hook)
        """Raise `InvalidInput`/`Forbidden` (field "url") when the endpoint cannot be
        used as configured: called when an endpoint is saved. Default: nothing."""


def short(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def retry_after_seconds(value: str | float | None) -> float | None:
    """A `Retry-After` value (seconds, or an HTTP date) as capped seconds."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        from datetime import UTC, datetime
        from email.utils import parsedate_to_datetime

        try:
            moment = parsedate_to_datetime(str(value))
        except (TypeError, ValueError):
            return None
        seconds = (moment - datetime.now(UTC)).total_seconds()
    return max(0.0, min(seconds, MAX_RETRY_AFTER_S))


def http_result(status: int, body: bytes, *, retry_after: str | None = None) -> SendResult:
    """The outcome of an HTTP answer, the common way: 2xx sent; 410 gone; 408, 425, 429
    and 5xx retryable (with `Retry-After`); other 4xx not retryable; a 3xx is a refused
    redirect (never followed)."""
    if 200 <= status < 300:
        return SendResult(ok=True, status=status)
    text = body[:500].decode("utf-8", "replace")
    if 300 <= status < 400:
        return SendResult(ok=False, status=status, retryable=False,
                          error=f"HTTP {status}: redirects are not followed")
    if status == 410:
        return SendResult(ok=False, status=status, gone=True,
                          error=short(f"HTTP 410 Gone: {text}"))
    retryable = status in (408, 425, 429) or status >= 500
    return SendResult(ok=False, status=status, retryable=retryable,
                      retry_after=retry_after_seconds(retry_after) if retryable else None,
                      error=short(f"HTTP {status}: {text}" if text.strip() else f"HTTP {status}"))

"""Where reports go (delivery endpoints) and what happened per job and endpoint."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import AfterValidator, Field, field_validator

from metric_stream.models.base import AdminModel, Id, KpiId, Timestamp, TraceId, unique_ids


class EndpointHealth(AdminModel):
    """How the endpoint's deliveries went lately: it is disabled after failing without a
    success for the configured period (`delivery.autoDisableAfterS`), or at once when
    the service says the address is gone (HTTP 410, a deleted webhook, a blocked bot)."""

    consecutive_failures: int = Field(default=0, ge=0)
    failing_since: Timestamp | None = None
    last_success_at: Timestamp | None = None
    last_failure_at: Timestamp | None = None
    last_error: str | None = Field(default=None, max_length=500)
    last_status: int | None = None
    disabled_reason: str | None = None
    disabled_at: Timestamp | None = None


class DeliveryEndpoint(AdminModel):
    """An Apprise-style address (`tgram://...`, `mailto://...`, `https://...`) and what it
    wants: every KPI, a list of KPIs, or only reports that carry alerts."""

    id: Id
    name: str = Field(min_length=1, max_length=200)
    url: str = Field(min_length=3, max_length=4096)
    active: bool = True
    kpis: Literal["all", "alerts"] | Annotated[list[KpiId], AfterValidator(unique_ids)] = "all"
    operator: bool = False
    """An operator channel: it receives short operational alerts (a partial or failed
    job, a failed LLM chain, an endpoint disabled, dead letters, storage), not reports."""
    attach_pdf: bool = False
    """Attach the report's PDF where the channel can (email, Telegram, Discord); the
    link is always in the message."""
    signing_secret: str | None = Field(default=None, pattern=r"^whsec_[A-Za-z0-9+/=]{20,200}$")
    """The Standard Webhooks secret of a generic webhook (made when the endpoint is
    created; shown once in that answer, never again)."""
    health: EndpointHealth = Field(default_factory=EndpointHealth)
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None

    @field_validator("url")
    @classmethod
    def _has_scheme(cls, value: str) -> str:
        parts = urlsplit(value)
        if not parts.scheme or not (parts.netloc or parts.path):
            raise ValueError("must be a URL with a scheme, e.g. tgram://token/chat or https://...")
        return value

    @property
    def masked_url(self) -> str:
        return mask_url(self.url)


def mask_url(url: str) -> str:
    """The URL with every secret hidden: safe for logs, API answers and screens.

    Apprise-style schemes carry tokens anywhere (`tgram://{token}/{chat}`), so only
    their scheme is shown; http(s) URLs keep their host.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return f"{parts.scheme}://***"
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 address keeps its brackets
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:  # not a port: shown as such, never as the text written there
        port = None
        host = f"{host}:***"
    if port:
        host = f"{host}:{port}"
    path = "/***" if parts.path.strip("/") else parts.path
    return urlunsplit((parts.scheme, host, path, "***" if parts.query else "", ""))


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"


class DeliveryRecord(AdminModel):
    """`delivery:{traceId}` / endpoint id: one endpoint's outcome for one job."""

    trace_id: TraceId
    endpoint_id: Id
    status: DeliveryStatus = DeliveryStatus.PENDING
    channel: str | None = None
    lease_until: Timestamp | None = None
    """While `in_flight`: the send is someone's until then (a crashed sender's lapses)."""
    attempts: int = Field(default=0, ge=0)
    last_error: str | None = None
    last_status_code: int | None = None
    first_attempt_at: Timestamp | None = None
    last_attempt_at: Timestamp | None = None
    sent_at: Timestamp | None = None

    @property
    def message_id(self) -> str:
        return f"{self.trace_id}:{self.endpoint_id}"

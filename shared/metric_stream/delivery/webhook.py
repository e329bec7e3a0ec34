"""Generic webhooks: the job's structured summary as JSON, signed per Standard Webhooks.

`https://host/path` and `http://host/path` as they are; `json://host/path` and
`jsons://host/path` (Apprise's names) are the same over http and https. Each POST
carries `webhook-id` = `{traceId}:{endpointId}` (the same on every retry and re-run,
so a receiver can drop a duplicate), `webhook-timestamp` and, when the endpoint has a
secret, `webhook-signature` (`v1,` + base64 HMAC-SHA256 of `id.timestamp.body`).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

import aiohttp

from metric_stream.delivery.base import (
    Channel,
    Outgoing,
    SendContext,
    SendResult,
    http_result,
    short,
)
from metric_stream.delivery.safety import literal_refusal, refused
from metric_stream.errors import InvalidInput
from metric_stream.signing import sign

SCHEMES = {"http": "http", "https": "https", "json": "http", "jsons": "https"}


@dataclass(frozen=True)
class WebhookChannel(Channel):
    url: str = field(repr=False)
    target_host: str = ""
    kind = "webhook"

    @classmethod
    def from_url(cls, url: str) -> WebhookChannel:
        parts = urlsplit(url)
        scheme = SCHEMES.get(parts.scheme.lower())
        if scheme is None or not parts.hostname:
            raise InvalidInput("must be a webhook URL with a host, e.g. https://example.com/hook",
                               field="url")
        try:
            parts.port  # noqa: B018 (validates the port)
        except ValueError:
            raise InvalidInput("has an invalid port", field="url") from None
        return cls(urlunsplit((scheme, parts.netloc, parts.path or "/", parts.query, "")),
                   parts.hostname)

    @property
    def host(self) -> str:
        return self.target_host

    def _scrub(self, text: str) -> str:
        parts = urlsplit(self.url)
        secrets = [p for p in parts.path.split("/") if len(p) >= 4]
        secrets += [v for _, v in parse_qsl(parts.query) if len(v) >= 4]
        if parts.path.strip("/"):
            secrets.append(parts.path)
        for secret in sorted(secrets, key=len, reverse=True):
            for form in {secret, quote(secret, safe=""), quote(secret)}:
                text = text.replace(form, "***")
        return short(text)

    def body(self, out: Outgoing, ctx: SendContext) -> bytes:
        """The JSON body, serialised once per job and reused for every endpoint."""
        if out.test:
            return json.dumps({"type": "metric-stream.test", "version": 1,
                               "endpointId": out.endpoint_id,
                               "message": "metric-stream test message: delivery works"}).encode()
        cache: dict[tuple[str, str], bytes] = ctx.extra.setdefault("webhook-bodies", {})
        body = cache.get((out.trace_id, out.kind))
        if body is None:
            payload: Any = out.messages.get("webhook") or {"traceId": out.trace_id}
            body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
            cache[(out.trace_id, out.kind)] = body
        return body

    async def send(self, out: Outgoing, ctx: SendContext) -> SendResult:
        checked: dict[str, str | None] = ctx.extra.setdefault("literal-refusals", {})
        if self.target_host not in checked:
            checked[self.target_host] = literal_refusal(self.target_host, ctx)
        refusal = checked[self.target_host]
        if refusal:
            return SendResult(ok=False, error=refusal, retryable=False)
        body = self.body(out, ctx)
        timestamp = out.timestamp or int(time.time())
        headers = {"content-type": "application/json", "user-agent": "metric-stream",
                   "webhook-id": out.message_id, "webhook-timestamp": str(timestamp)}
        if out.signing_secret:
            headers["webhook-signature"] = sign(out.signing_secret, out.message_id, timestamp,
                                                body)
        try:
            async with ctx.session.post(self.url, data=body, headers=headers,
                                        allow_redirects=False, timeout=ctx.client_timeout
                                        ) as response:
                answer = await response.content.read(ctx.max_body_bytes)
                result = http_result(response.status, answer,
                                     retry_after=response.headers.get("retry-after"))
                if result.error:  # a receiver may echo the path or query: their secrets
                    result = replace(result, error=self._scrub(result.error))
                return result
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            reason = refused(exc)
            if reason:
                return SendResult(ok=False, error=short(reason), retryable=False)
            what = "timed out" if isinstance(exc, asyncio.TimeoutError) else (
                f"{type(exc).__name__}: {exc}")
            return SendResult(ok=False, error=short(f"no answer: {what}"), retryable=True)

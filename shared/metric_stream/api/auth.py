"""Who may call what: an ingestion key or a Standard Webhooks signature for ingestion,
the admin bearer key for admin routes (it also opens ingestion routes), the admin key
or the proxy's own signed cron request for the scheduler tick.

Behind the Cloudflare Worker proxy (`METRIC_STREAM_PROXY_SECRET` set), every request
must first carry the proxy's signature (`api/proxy.py`); one without is refused (403)
before any other check, so nothing reaches the routes around the proxy.

Comparisons are constant-time; a 401 never says which part failed. A signed message's
`webhook-id` is remembered after it succeeds, so the sender's replay is answered as a
duplicate without being processed again.
"""

from __future__ import annotations

import hmac
import time
from datetime import timedelta

from pydantic import SecretStr

from metric_stream.api.http import Request, Response, Route
from metric_stream.api.proxy import Origin, verified_origin
from metric_stream.errors import Forbidden, Unauthorized
from metric_stream.ports import Absent, Key, Put, RecordStore
from metric_stream.settings import Settings
from metric_stream.signing import sign

TOLERANCE_S = 5 * 60
_SEEN_PARTITION = "webhook-id"
_SEEN_TTL = timedelta(seconds=2 * TOLERANCE_S)  # a replay past the window fails the time check


def _same(given: str, secret: SecretStr | None) -> bool:
    if secret is None:
        return False
    return hmac.compare_digest(given.encode(), secret.get_secret_value().encode())


class Authenticator:
    def __init__(self, settings: Settings, records: RecordStore) -> None:
        self.settings = settings
        self.records = records

    def check(self, route: Route, request: Request) -> Response | None:
        """Raise `Unauthorized` or `Forbidden`, answer early (a replayed signed message),
        or let pass."""
        origin = self._through_proxy(request)
        if route.auth == "public":
            return None
        if self._admin(request):
            return None
        if route.auth == "scheduler" and origin == "cron":
            return None
        if route.auth == "ingestion":
            api_key = request.header("x-api-key")
            if api_key is not None:
                if _same(api_key, self.settings.ingestion_key):
                    return None
                raise Unauthorized("authentication failed")
            if request.header("webhook-signature") is not None and self._signed(request):
                message_id = request.header("webhook-id") or ""
                if self.records.get(Key(_SEEN_PARTITION, message_id)) is not None:
                    return Response.json({"status": "duplicate", "webhookId": message_id,
                                          "message": "this webhook-id was already processed"})
                return None
        raise Unauthorized("authentication failed")

    def succeeded(self, request: Request) -> None:
        """Remember a signed message once it was processed (only then: a sender retries
        failures with the same id, and those must be processed)."""
        message_id = request.header("webhook-id")
        if message_id and request.header("webhook-signature") and not request.header("x-api-key"):
            expires = self.records.clock.now() + _SEEN_TTL
            self.records.put_many([Put(Key(_SEEN_PARTITION, message_id[:200]), {"seen": True},
                                       Absent(), expires_at=expires)])

    def _through_proxy(self, request: Request) -> Origin | None:
        """In proxy mode, the verified origin of the request (or `Forbidden`)."""
        secret = self.settings.proxy_secret
        if secret is None:
            return None
        origin = verified_origin(secret, request.method, request.path, request.query,
                                 request.headers, request.body)
        if origin is None:
            raise Forbidden("this server accepts requests only through the metric-stream "
                            "proxy: the proxy signature is missing, stale or wrong")
        return origin

    def _admin(self, request: Request) -> bool:
        authorization = request.header("authorization") or ""
        scheme, _, token = authorization.partition(" ")
        return scheme.lower() == "bearer" and _same(token.strip(), self.settings.admin_key)

    def _signed(self, request: Request) -> bool:
        secret = self.settings.hmac_secret
        message_id = request.header("webhook-id")
        stamp = request.header("webhook-timestamp")
        if secret is None or not message_id or not stamp or not stamp.isdigit():
            return False
        if abs(time.time() - int(stamp)) > TOLERANCE_S:
            return False
        expected = sign(secret.get_secret_value(), message_id, int(stamp), request.body)
        given = (request.header("webhook-signature") or "").split()
        return any(hmac.compare_digest(expected.encode(), g.encode()) for g in given)

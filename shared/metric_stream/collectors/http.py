"""Fetching a source's JSON the same careful way for every collector.

Retries follow the operator's collection policy (default 3 retries after 1, 2, 4 s) on
connection and read errors, 5xx and 429; a 429 or 503 with `Retry-After` is waited
out as the source asks (capped) instead. Other 4xx answers are not retried: they will
not change (a 451 means the source refuses this server's region). Failures become
`CollectionFailed` naming the source, the URL without secrets, and the last status.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from metric_stream import __version__
from metric_stream.collectors.base import (
    CollectionFailed,
    Collector,
    CollectRequest,
    MalformedAnswer,
    Sleep,
)
from metric_stream.models.config import RetryPolicy

log = logging.getLogger(__name__)

USER_AGENT = f"metric-stream/{__version__}"
MAX_RETRY_AFTER_S = 60.0
_SECRET_HINTS = ("key", "token", "secret", "signature", "password", "auth")
_TRANSIENT_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)

T = TypeVar("T")


class _Retryable(Exception):
    def __init__(self, reason: str, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after


class ResponseCache:
    """Answers kept for one cycle: collectors asking for the same URL (CBBI's large
    `latest.json` for several entries) share one fetch, even when running at once."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._answers: dict[str, Any] = {}

    def get_or_fetch(self, key: str, fetch: Callable[[], Any]) -> Any:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._answers:
                self._answers[key] = fetch()  # a failure is not kept: the next asker retries
            return self._answers[key]


def public_url(url: str, params: Mapping[str, str] | None = None) -> str:
    """The URL as it may be shown and stored: no user info, no secret-looking parameters."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    shown = [(k, v) for k, v in (params or {}).items()
             if not any(hint in k.lower() for hint in _SECRET_HINTS)]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(shown), ""))


def retry_after_seconds(response: httpx.Response) -> float | None:
    """`Retry-After` as seconds to wait (delay-seconds or an HTTP date), capped."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
            sent = response.headers.get("date")
            now = parsedate_to_datetime(sent) if sent else datetime.now(UTC)
            seconds = (when - now).total_seconds()
        except (TypeError, ValueError):
            return None
    return max(0.0, min(seconds, MAX_RETRY_AFTER_S))


def _client_error(source: str, shown: str, response: httpx.Response,
                  attempts: int) -> CollectionFailed:
    status = response.status_code
    hint = {
        401: "the source refused the request; check its API key, if it needs one",
        403: "the source refused the request; check its API key, if it needs one",
        404: "not found; check the base URL and the KPI's parameters",
        451: "regional restriction: the source refuses requests from this server's "
             "region (Binance does so from the US, for one); point the KPI's "
             "params.baseUrl at a mirror reachable from here, or deactivate the KPI",
    }.get(status, "the source refused the request")
    detail = response.text.strip()[:300]
    return CollectionFailed(
        f"{source}: GET {shown} answered HTTP {status} {response.reason_phrase}: {hint}",
        code=f"http_{status}", source=source, url=shown, status=status,
        attempts=attempts, **({"detail": detail} if detail else {}))


def fetch_json(http: httpx.Client, url: str, *, source: str, retry: RetryPolicy,
               params: Mapping[str, str] | None = None,
               headers: Mapping[str, str] | None = None, sleep: Sleep = time.sleep,
               cache: ResponseCache | None = None) -> Any:
    """GET `url` and decode its JSON, retrying per `retry`; `CollectionFailed` when it
    cannot. Headers (API keys) are sent, never shown."""
    shown = public_url(url, params)
    if cache is not None:
        return cache.get_or_fetch(
            f"{url}?{urlencode(sorted((params or {}).items()))}",
            lambda: fetch_json(http, url, source=source, retry=retry, params=params,
                               headers=headers, sleep=sleep))
    attempts = 0

    def attempt() -> httpx.Response:
        nonlocal attempts
        attempts += 1
        try:
            response = http.get(url, params=params,
                                headers={"user-agent": USER_AGENT, "accept": "application/json",
                                         **(headers or {})},
                                follow_redirects=True)
        except _TRANSIENT_ERRORS as exc:
            raise _Retryable(f"{type(exc).__name__}: {exc or 'no detail'}") from None
        except httpx.HTTPError as exc:
            raise CollectionFailed(f"{source}: GET {shown} failed: {type(exc).__name__}: {exc}",
                                   code="request_error", source=source, url=shown,
                                   attempts=attempts) from None
        status = response.status_code
        if status == 429 or status >= 500:
            waited = retry_after_seconds(response) if status in (429, 503) else None
            raise _Retryable(f"HTTP {status} {response.reason_phrase}", status, waited)
        if status >= 400:
            raise _client_error(source, shown, response, attempts)
        return response

    def wait(state: RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome else None
        if isinstance(failure, _Retryable) and failure.retry_after is not None:
            return failure.retry_after
        return retry.delay(state.attempt_number)

    def before_sleep(state: RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome else None
        log.warning("%s: GET %s: %s; retry %d of %d in %.1f s", source, shown, failure,
                    state.attempt_number, retry.retries,
                    state.next_action.sleep if state.next_action else 0.0)

    retrying = Retrying(stop=stop_after_attempt(retry.retries + 1), wait=wait,
                        retry=retry_if_exception_type(_Retryable), sleep=sleep,
                        before_sleep=before_sleep, reraise=True)
    try:
        response = retrying(attempt)
    except _Retryable as last:
        fields: dict[str, object] = {"code": "retries_exhausted", "source": source, "url": shown,
                                     "attempts": attempts}
        if last.status is not None:
            fields["status"] = last.status
        raise CollectionFailed(
            f"{source}: GET {shown} failed after {attempts} attempt(s): {last.reason}",
            **fields) from None
    try:
        return response.json()
    except ValueError:
        start = response.text.strip()[:80]
        raise CollectionFailed(
            f"{source}: GET {shown} answered HTTP {response.status_code} with a body that is "
            f"not JSON (it starts {start!r})",
            code="malformed_response", source=source, url=shown,
            status=response.status_code, attempts=attempts) from None


class JsonCollector(Collector):
    """A collector whose source answers JSON to a GET."""

    def get_json(self, request: CollectRequest, path: str, read: Callable[[Any, str], T], *,
                 params: Mapping[str, str] | None = None,
                 headers: Mapping[str, str] | None = None) -> T:
        """Fetch `path` under the KPI's base URL and `read` the answer (with its public
        URL); a `MalformedAnswer` from `read` fails the collection with that reason."""
        url = self.base_url_for(request) + path
        shown = public_url(url, params)
        answer = fetch_json(self.http, url, source=self.name, retry=self.retry, params=params,
                            headers=headers, sleep=self.sleep, cache=self.cache)
        try:
            return read(answer, shown)
        except MalformedAnswer as exc:
            raise CollectionFailed(
                f"{self.name}: GET {shown} answered in an unexpected shape: {exc}",
                code="malformed_response", source=self.name, url=shown) from None

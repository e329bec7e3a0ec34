"""A local receiver for delivery tests: an HTTP server on 127.0.0.1 whose paths answer as
told (fail a few times, 429 with Retry-After, 410, a redirect, slowly, never, a huge
body), recording every request and how many were in flight at once, per host."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest

CHUNK = 64 * 1024
# Apprise loads its plugins on first use; on Python < 3.13 one of them imports `imghdr`,
# deprecated there. Not ours to fix: only this warning is let through.
APPRISE_IMPORT = pytest.mark.filterwarnings(
    "ignore:'imghdr' is deprecated:DeprecationWarning")


@dataclass(frozen=True)
class Rule:
    status: int = 200
    fail: int = 0
    """The first `fail` requests answer `fail_status` (with `retry_after`), then `status`."""
    fail_status: int = 500
    retry_after: str | None = None
    delay: float = 0.0
    hang: bool = False
    """Never answer (until the sink closes)."""
    location: str | None = None
    body: bytes = b"ok"
    stream_bytes: int = 0
    """Answer this many bytes, written in 64 KiB chunks (the client may stop reading)."""


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    query: str
    host: str
    headers: dict[str, str]
    """Header names in lower case."""
    body: bytes


class Sink:
    def __init__(self) -> None:
        self.rules: dict[str, Rule] = {}
        self.received: list[Received] = []
        self.streamed = 0
        """Bytes of `stream_bytes` answers the client accepted before it hung up."""
        self.peak_total = 0
        self.peak_by_host: Counter[str] = Counter()
        self._in_flight: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._released = threading.Event()
        handler = type("SinkHandler", (_Handler,), {"sink": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,),
                                        name="delivery-sink", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def on(self, path: str, **rule: Any) -> str:
        """Answer `path` as `Rule(**rule)`; the URL of the path on 127.0.0.1."""
        self.rules[path] = Rule(**rule)
        return self.base + path

    def hits(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def paths(self) -> Counter[str]:
        with self._lock:
            return Counter(r.path for r in self.received)

    def wait_for(self, count: int, seconds: float = 10.0) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return True
            time.sleep(0.01)
        return False

    def start(self) -> Sink:
        self._thread.start()
        return self

    def close(self) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    # ------------------------------------------------------------ used by the handler
    def _arrived(self, received: Received) -> tuple[Rule, int]:
        with self._lock:
            rule = self.rules.get(received.path, Rule())
            earlier = sum(1 for r in self.received if r.path == received.path)
            self.received.append(received)
            self._in_flight[received.host] += 1
            self.peak_by_host[received.host] = max(self.peak_by_host[received.host],
                                                   self._in_flight[received.host])
            self.peak_total = max(self.peak_total, sum(self._in_flight.values()))
        return rule, earlier

    def _answered(self, host: str) -> None:
        with self._lock:
            self._in_flight[host] -= 1


@contextmanager
def running_sink() -> Iterator[Sink]:
    sink = Sink().start()
    try:
        yield sink
    finally:
        sink.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 5  # an idle keep-alive connection does not hold the sink open for long
    sink: Sink

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        parts = urlsplit(self.path)
        host = (self.headers.get("host") or "").rsplit(":", 1)[0]
        received = Received(self.command, parts.path, parts.query, host,
                            {k.lower(): v for k, v in self.headers.items()}, body)
        rule, earlier = self.sink._arrived(received)
        try:
            if rule.hang:
                self.sink._released.wait(30)
            elif rule.delay:
                self.sink._released.wait(rule.delay)
        finally:
            self.sink._answered(host)  # before answering: the client's slot is still held
        try:
            self._answer(rule, failing=earlier < rule.fail)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_POST
    do_PUT = do_POST

    def _answer(self, rule: Rule, *, failing: bool) -> None:
        status = rule.fail_status if failing else rule.status
        self.send_response(status)
        if failing and rule.retry_after is not None:
            self.send_header("retry-after", rule.retry_after)
        if rule.location and not failing:
            self.send_header("location", rule.location)
        if rule.stream_bytes and not failing:
            self.send_header("content-length", str(rule.stream_bytes))
            self.end_headers()
            chunk = b"x" * CHUNK
            left = rule.stream_bytes
            while left > 0:
                self.wfile.write(chunk[:left])
                self.sink.streamed += min(left, CHUNK)
                left -= CHUNK
            return
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(rule.body)))
        self.end_headers()
        self.wfile.write(rule.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass

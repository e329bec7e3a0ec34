"""A local stand-in for the real APIs: recorded answers served from 127.0.0.1.

`RecordedApi` serves each file of `recorded/` at the path the real API uses, can be
told to answer a path with a sequence of replies first (503, 429 with Retry-After,
a dropped connection, ...), and records every request it got.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

RECORDED = Path(__file__).parent / "recorded"

ROUTES = {
    "/api/v3/simple/price": "coingecko_simple_price.json",
    "/api/v3/global": "coingecko_global.json",
    "/fng/": "alternative_me_fng.json",
    "/cbbi/data/latest.json": "cbbi_latest.json",
    "/stablecoincharts/all": "defillama_stablecoincharts_all.json",
    "/api/v3/ticker/24hr": "binance_ticker_24hr.json",
}

# Where each collector's base URL sits on the local server (the real APIs' layout).
PREFIXES = {"coingecko-price": "/api/v3", "coingecko-global": "/api/v3",
            "cbbi-multi": "/cbbi/data", "alternative-me-fng": "", "defillama-stablecoins": "",
            "binance-ticker": ""}


def recorded(name: str) -> bytes:
    return (RECORDED / name).read_bytes()


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection without answering

    @classmethod
    def json(cls, value: Any, status: int = 200, **headers: str) -> Reply:
        return cls(status, json.dumps(value).encode(), headers)


@dataclass(frozen=True)
class Seen:
    path: str
    query: dict[str, str]
    headers: dict[str, str]


class RecordedApi:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queued: dict[str, deque[Reply]] = {}
        self._default = {path: Reply(body=recorded(name)) for path, name in ROUTES.items()}
        self.seen: list[Seen] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                reply = api._take(Seen(parts.path, dict(parse_qsl(parts.query)),
                                       {k.lower(): v for k, v in self.headers.items()}))
                if reply.drop:
                    self.close_connection = True
                    return
                self.send_response_only(reply.status)
                if "Date" not in reply.headers:
                    self.send_header("Date", self.date_time_string())
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply.body)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.01}, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def base_url(self, collector: str) -> str:
        return self.url + PREFIXES[collector]

    def answer(self, path: str, *replies: Reply) -> None:
        """Answer `path` with these replies, in order, before its recorded answer."""
        with self._lock:
            self._queued.setdefault(path, deque()).extend(replies)

    def serve(self, path: str, reply: Reply) -> None:
        """Answer `path` with `reply` from now on (after any queued replies)."""
        with self._lock:
            self._default[path] = reply

    def requests(self, path: str) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.path == path]

    def _take(self, seen: Seen) -> Reply:
        with self._lock:
            self.seen.append(seen)
            queued = self._queued.get(seen.path)
            if queued:
                return queued.popleft()
            return self._default.get(seen.path) or Reply.json({"error": "no such route"}, 404)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class SleepLog:
    """An injected sleep that does not sleep, and remembers what it was asked."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def api() -> Iterator[RecordedApi]:
    server = RecordedApi()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def http(api: RecordedApi) -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as client:
        yield client


@pytest.fixture
def sleeps() -> SleepLog:
    return SleepLog()

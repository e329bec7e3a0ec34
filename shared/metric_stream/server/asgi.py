"""The API as an ASGI application, for uvicorn.

Handlers are synchronous (SQLite, boto3), so each request runs on a bounded thread
pool; the event loop only moves bytes. Bodies over a route's limit are refused
without reading the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qsl

from metric_stream.api.http import Api, Request

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class AsgiApp:
    def __init__(self, api: Api, *, threads: int = 16, inline: bool = False) -> None:
        self.api = api
        self.inline = inline
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="api")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.executor.shutdown(wait=True)  # in-flight handlers finish their writes
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        method, path = scope["method"], scope["path"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        limit = self.api.max_body_for(method, path)
        body = await self._read_body(receive, headers, limit)
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        request = Request(method=method, path=path, headers=headers, body=body, query=query)
        if self.inline and self.api.is_quick(method, path):
            response = self.api.handle(request)
        else:
            loop = asyncio.get_running_loop()
            response = await loop.run_in_executor(self.executor, self.api.handle, request)
        await send({
            "type": "http.response.start",
            "status": response.status,
            "headers": [(b"content-length", str(len(response.body)).encode()),
                        *((k.encode("latin-1"), v.encode("latin-1"))
                          for k, v in response.headers.items())],
        })
        await send({"type": "http.response.body", "body": response.body})

    @staticmethod
    async def _read_body(receive: Receive, headers: dict[str, str], limit: int) -> bytes:
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return b"\0" * (limit + 1)  # refused by size alone; the rest is never read
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return b"\0" * (limit + 1)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

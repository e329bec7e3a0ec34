"""The client layer: the same answers in process and over HTTP, the API's errors as
`ClientError` with their field, and what a network failure becomes."""

from __future__ import annotations

import json

import httpx
import pytest

from metric_stream_tui.client import (
    ClientError,
    ConnectionLost,
    HttpClient,
    LocalClient,
    RequestTimedOut,
)
from tests.tui.conftest import PARTIAL, Console

pytestmark = pytest.mark.anyio


async def test_local_client_calls_the_route_table(console: Console) -> None:
    client = console.client
    kpis = await client.kpis()
    assert kpis["count"] == 7 and kpis["kpis"][0]["yields"]
    job = await client.job(PARTIAL)
    assert job["status"] == "partial" and job["kpis"]["demo-fear-greed-index"]["error"]
    series = await client.timeseries("demo-btc-price-usd", start=console.clock.now().replace(
        day=22))
    assert series["count"] == 6 and series["from"] == "2026-11-22T09:30:00Z"  # 23rd-28th
    with pytest.raises(ClientError) as missing:
        await client.kpi("ghost/../x")  # quoted on the way, decoded by the route table
    assert missing.value.status == 404
    with pytest.raises(ClientError) as invalid:
        await client.create_kpi({"id": "x", "name": "", "kpiType": "price",
                                 "source": {"kind": "collector", "collector": "demo"},
                                 "unit": "u" * 40})
    error = invalid.value
    assert (error.status, error.code, error.field) == (422, "invalid_input", "name")
    assert error.title == "422 invalid_input"
    assert [f for f, _ in error.problems()] == ["name", "unit"]
    with pytest.raises(ClientError, match="missing from the blob store"):
        await client.document(PARTIAL)  # the seeded record has no file
    console.services.blobs.put(f"reports/2026/11/{PARTIAL}.pdf", b"%PDF-1.7 x",
                               content_type="application/pdf")
    assert await client.document(PARTIAL) == b"%PDF-1.7 x"


def mock(handler: object) -> HttpClient:
    return HttpClient("http://api.test", "the-admin-key",
                      transport=httpx.MockTransport(handler))  # type: ignore[arg-type]


async def test_http_client_sends_the_key_and_maps_errors() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/api/kpis/nope":
            return httpx.Response(404, json={"error": {"code": "not_found",
                                                       "message": "no such entry",
                                                       "field": "id"}})
        if request.url.path == "/api/metrics":
            return httpx.Response(502, text="<html><h1>502 Bad Gateway</h1></html>")
        return httpx.Response(200, json={"kpis": [], "count": 0})

    client = mock(handler)
    assert await client.kpis() == {"kpis": [], "count": 0}
    assert seen[0].headers["authorization"] == "Bearer the-admin-key"
    with pytest.raises(ClientError) as missing:
        await client.kpi("nope")
    assert (missing.value.status, missing.value.field) == (404, "id")
    with pytest.raises(ClientError) as proxy:
        await client.metrics()
    assert proxy.value.status == 502 and proxy.value.message == "502 Bad Gateway"
    await client.delete_kpi("a b", force=True)
    assert seen[-1].url.raw_path == b"/api/kpis/a%20b?force=true"
    await client.redeliver(PARTIAL, failed_only=True)
    assert json.loads(seen[-1].content) == {"failedOnly": True}
    assert "the-admin-key" not in repr(client.__dict__)
    await client.aclose()


@pytest.mark.parametrize(("failure", "kind"), [
    (httpx.ConnectError("[Errno 111] Connection refused"), ConnectionLost),
    (httpx.ConnectTimeout("timed out"), ConnectionLost),
    (httpx.ReadTimeout("timed out"), RequestTimedOut),
    (httpx.RemoteProtocolError("Server disconnected"), ConnectionLost),
])
async def test_http_client_network_failures(failure: Exception, kind: type[ClientError]
                                            ) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise failure

    with pytest.raises(kind) as caught:
        await mock(handler).jobs()
    assert caught.value.status is None


async def test_a_refused_connection_is_a_lost_one() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nobody listens there
    with pytest.raises(ConnectionLost) as caught:
        await HttpClient(f"http://127.0.0.1:{port}", "k").health()
    assert "Connection refused" in caught.value.message or "connect" in caught.value.message


def test_local_client_names_its_store(console: Console) -> None:
    assert console.client.target == "local store home"
    assert isinstance(console.client, LocalClient)

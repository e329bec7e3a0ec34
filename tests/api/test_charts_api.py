"""Chart routes: generate, fetch the bytes, batch, health (admin key, except health)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import timedelta
from typing import Any

import pytest

from metric_stream.api.app import ROUTES, openapi_document
from metric_stream.bootstrap import Services
from metric_stream.clock import ManualClock
from metric_stream.errors import StorageUnavailable
from metric_stream.models import DataPoint
from tests.api.conftest import Client, body_of
from tests.api.test_admin_registry import ADMIN, admin

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def history(services: Services, clock: ManualClock) -> None:
    services.timeseries.append_many([
        DataPoint(kpi_id="btc-price", timestamp=clock.now() - timedelta(days=d),
                  value=90_000.0 + 50 * d) for d in range(60)])


def generate(client: Client, body: Any) -> tuple[int, Any]:
    return admin(client, "POST", "/api/charts/generate", body)


@pytest.mark.usefixtures("history")
def test_generate_then_fetch_a_png(client: Client, services: Services) -> None:
    status, chart = generate(client, {"kpiId": "btc-price", "days": 30})
    assert status == 201, chart
    assert chart["chartId"].startswith("chart_20261129_060000_")
    assert chart["url"] == f"/api/charts/{chart['chartId']}"
    assert {k: chart[k] for k in ("kpiId", "format", "contentType", "fallback", "attempts",
                                  "createdAt")} == {
        "kpiId": "btc-price", "format": "png", "contentType": "image/png", "fallback": False,
        "attempts": 1, "createdAt": "2026-11-29T06:00:00Z"}
    assert "reason" not in chart

    response = client.call("GET", chart["url"], headers=ADMIN)
    assert response.status == 200
    assert response.body.startswith(PNG)
    assert response.headers["content-type"] == "image/png"
    assert response.headers["cache-control"] == "private, max-age=86400"
    assert response.headers["content-disposition"] == f'inline; filename="{chart["chartId"]}.png"'


@pytest.mark.usefixtures("history")
def test_generate_an_svg(client: Client) -> None:
    status, chart = generate(client, {"kpiId": "btc-price", "format": "svg", "type": "bar",
                                      "from": "2026-11-01T00:00:00Z",
                                      "to": "2026-11-29T07:00:00+01:00"})
    assert status == 201 and chart["contentType"] == "image/svg+xml"
    response = client.call("GET", chart["url"], headers=ADMIN)
    assert response.headers["content-type"] == "image/svg+xml"
    root = ET.fromstring(response.body)  # noqa: S314 - our own output
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert b"btc-price" in response.body  # text stays text in SVG


def test_a_kpi_without_points_gets_the_fallback(client: Client, services: Services,
                                                clock: ManualClock) -> None:
    status, _ = admin(client, "PUT", "/api/config/fallback",
                      {"chart": "text", "chartText": "No chart."})
    assert status == 200
    status, chart = generate(client, {"kpiId": "fear-greed"})
    assert status == 201
    assert chart["fallback"] is True and chart["format"] == "text"
    assert chart["reason"] == "chart 'fear-greed' has no points to draw"
    response = client.call("GET", chart["url"], headers=ADMIN)
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.body.decode() == "No chart. (chart 'fear-greed' has no points to draw)"


@pytest.mark.parametrize(("body", "field"), [
    ({}, "kpiId"),
    ({"kpiId": "btc-price", "size": "large"}, "size"),
    ({"kpiId": "btc-price", "format": "jpeg"}, "format"),
    ({"kpiId": "btc-price", "type": "pie"}, "type"),
    ({"kpiId": "btc-price", "from": "2026-11-01"}, "from"),
    ({"kpiId": "btc-price", "to": "2026-11-01T00:00:00"}, "to"),
    ({"kpiId": "btc-price", "days": 0}, "days"),
    ({"kpiId": "btc-price", "days": 4000}, "days"),
    ({"kpiId": "btc-price", "days": 7, "from": "2026-11-01T00:00:00Z"}, "days"),
    ({"kpiId": "cbbi-multi", "type": "bar"}, "type"),
])
def test_generate_refuses_a_bad_body_naming_the_field(client: Client, body: dict[str, Any],
                                                      field: str) -> None:
    status, answer = generate(client, body)
    assert status == 422, answer
    assert answer["error"]["code"] == "invalid_input"
    assert answer["error"]["field"] == field


def test_generate_refuses_what_is_not_a_readable_object(client: Client) -> None:
    assert admin(client, "POST", "/api/charts/generate", b"{not json")[0] == 400
    status, answer = generate(client, ["btc-price"])
    assert status == 422 and "JSON object" in answer["error"]["message"]
    too_big = json.dumps({"kpiId": "btc-price", "pad": "x" * 20_000})
    assert admin(client, "POST", "/api/charts/generate", too_big)[0] == 413


def test_unknown_kpi_and_unknown_chart_are_404(client: Client, services: Services) -> None:
    status, answer = generate(client, {"kpiId": "doge-price"})
    assert status == 404 and answer["error"]["field"] == "kpiId"
    for chart_id in ("chart_20260101_000000_deadbeef", "generate", "..%2F..%2Fetc"):
        status, answer = admin(client, "GET", f"/api/charts/{chart_id}")
        assert status == 404 and answer["error"]["field"] == "chartId"
    status, chart = generate(client, {"kpiId": "btc-price"})  # its file goes missing: 404
    assert status == 201
    services.blobs.delete(f"charts/{chart['chartId']}.png")
    status, answer = admin(client, "GET", chart["url"])
    assert status == 404 and "missing from the blob store" in answer["error"]["message"]


def test_chart_routes_want_the_admin_key(client: Client) -> None:
    for method, path in (("POST", "/api/charts/generate"), ("POST", "/api/charts/batch"),
                         ("GET", "/api/charts/chart_1")):
        response = client.call(method, path, {"kpiId": "btc-price"})
        assert response.status == 401, path
        assert body_of(response)["error"]["code"] == "unauthorized"


@pytest.mark.usefixtures("history")
def test_batch_answers_each_item_on_its_own(client: Client, services: Services) -> None:
    status, answer = admin(client, "POST", "/api/charts/batch", {"charts": [
        {"kpiId": "btc-price"},
        {"kpiId": "nope"},
        {"kpiId": "btc-price", "format": "svg", "days": 7},
        {"kpiId": "btc-price", "days": -1},
        "btc-price",
    ]})
    assert status == 200, answer
    results = answer["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4]
    assert [r["ok"] for r in results] == [True, False, True, False, False]
    assert results[0]["chart"]["format"] == "png"
    assert results[2]["chart"]["format"] == "svg"
    assert results[1]["error"]["code"] == "not_found"
    assert results[1]["error"]["field"] == "kpiId"
    assert results[3]["error"] == {"code": "invalid_input", "field": "days",
                                   "message": "days: Input should be greater than or equal to 1"}
    assert results[4]["error"]["code"] == "invalid_input"
    for good in (results[0], results[2]):
        fetched = client.call("GET", good["chart"]["url"], headers=ADMIN)
        assert fetched.status == 200
    assert len(services.blobs.keys("charts/")) == 2


def test_one_failing_item_does_not_stop_the_batch(client: Client, services: Services,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    real = services.charts.put
    calls: list[str] = []

    def put_once_broken(record: Any) -> None:
        calls.append(record.chart_id)
        if len(calls) == 1:
            raise StorageUnavailable("the table is throttled")
        real(record)

    monkeypatch.setattr(services.charts, "put", put_once_broken)
    status, answer = admin(client, "POST", "/api/charts/batch",
                           {"charts": [{"kpiId": "btc-price"}, {"kpiId": "fear-greed"}]})
    assert status == 200
    assert answer["results"][0]["error"]["code"] == "storage_unavailable"
    assert answer["results"][1]["ok"] is True


@pytest.mark.usefixtures("history")
def test_a_batch_past_its_request_budget_says_which_items_it_did_not_start(
        client: Client, services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """API Gateway cuts every request at 29 s: a slow batch answers in time instead."""
    import metric_stream.api.chart_routes as routes

    services.settings.request_budget_s = 5.0
    ticks = iter([0.0, 1.0, 4.0, 6.0, 7.0])  # the start, then before each item
    monkeypatch.setattr(routes, "elapsed_clock", lambda: next(ticks))
    status, answer = admin(client, "POST", "/api/charts/batch", {"charts": [
        {"kpiId": "btc-price", "format": "svg"}] * 4})
    assert status == 200, answer
    results = answer["results"]
    assert [r["ok"] for r in results] == [True, True, False, False]
    assert {r["error"]["code"] for r in results[2:]} == {"time_budget"}
    assert "send this one again" in results[2]["error"]["message"]
    assert len(services.blobs.keys("charts/")) == 2  # the skipped ones stored nothing


@pytest.mark.parametrize(("body", "field"), [
    ({}, "charts"),
    ({"charts": []}, "charts"),
    ({"charts": [{"kpiId": "btc-price"}] * 51}, "charts"),
    ({"charts": {"kpiId": "btc-price"}}, "charts"),
    ({"charts": [{"kpiId": "btc-price"}], "parallel": True}, "parallel"),
    ([{"kpiId": "btc-price"}], None),
])
def test_batch_refuses_a_body_of_the_wrong_shape(client: Client, services: Services,
                                                 body: Any, field: str | None) -> None:
    status, answer = admin(client, "POST", "/api/charts/batch", body)
    assert status == 422, answer
    assert answer["error"].get("field") == field
    assert services.blobs.keys("charts/") == []


def test_health_is_public_and_not_a_chart_id(client: Client) -> None:
    response = client.call("GET", "/api/charts/health")
    assert response.status == 200, response.body
    health = body_of(response)
    assert health["status"] == "ok" and health["formats"] == ["png", "svg"]
    assert health["blobStore"] == "ok" and health["renderer"].startswith("matplotlib ")


def test_health_is_503_when_degraded(client: Client, services: Services,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(key: str, data: bytes, content_type: str) -> None:
        raise StorageUnavailable("bucket gone")

    monkeypatch.setattr(services.blobs, "_put", broken)
    response = client.call("GET", "/api/charts/health")
    assert response.status == 503
    assert body_of(response)["blobStore"] == "StorageUnavailable: bucket gone"
    assert body_of(client.call("GET", "/api/charts/health"))["status"] == "degraded"


def test_the_openapi_document_describes_the_chart_routes() -> None:
    paths = openapi_document()["paths"]
    assert {m for p in paths if p.startswith("/api/charts") for m in paths[p]} == {"get", "post"}
    fetched = paths["/api/charts/{chartId}"]["get"]["responses"]["200"]["content"]
    assert set(fetched) == {"image/png", "image/svg+xml", "text/plain; charset=utf-8"}
    assert paths["/api/charts/health"]["get"]["security"] == []
    batch = paths["/api/charts/batch"]["post"]["requestBody"]["content"]["application/json"]
    schemas = openapi_document()["components"]["schemas"]
    assert batch["schema"] == {"$ref": "#/components/schemas/ChartBatch"}
    items = schemas["ChartBatch"]["properties"]["charts"]["items"]
    assert items == {"$ref": "#/components/schemas/ChartRequest"}
    assert {"kpiId", "format", "type", "from", "to", "days"} == set(
        schemas["ChartRequest"]["properties"])
    order = [r.path for r in ROUTES if r.path.startswith("/api/charts/")]
    assert order.index("/api/charts/health") < order.index("/api/charts/{chartId}")

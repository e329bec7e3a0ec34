"""POST /api/kpi-data and /api/kpi-error through the API, as SPEC's data contract says."""

from __future__ import annotations

from typing import Any

import pytest

from metric_stream.bootstrap import Services
from metric_stream.models import Job, KpiStatus
from tests.api.conftest import TRACE, Client, body_of

SINGLE = {"traceId": TRACE, "kpiId": "btc-price", "timestamp": "2026-11-29T01:00:00-05:00",
          "kpiType": "price", "data": {"value": 97123.45, "currency": "usd"},
          "chart": {"url": "https://charts.example/btc.png", "type": "line", "timeRange": "30d"},
          "metadata": {"workflow": "cg"}, "n8nExtra": {"kept": True}}
MULTI = {"traceId": TRACE, "timestamp": "2026-11-29T00:00:00Z", "kpiType": "cbbi-multi",
         "kpiIds": ["cbbi-mvrv", "cbbi-rhodl", "cbbi-confidence"],
         "data": {"cbbi-mvrv": 2.1, "cbbi-rhodl": 0.4, "cbbi-confidence": {"value": 0.71}}}


def test_single_result_stores_point_package_and_marks_the_job(
        client: Client, services: Services, job: Job) -> None:
    response = client.ingest(SINGLE)
    assert response.status == 200
    body = body_of(response)
    assert body["status"] == "stored" and body["stored"] == ["btc-price"]
    assert body["job"] == {"known": True, "collected": ["btc-price"], "alreadySettled": [],
                           "notInJob": []}
    (point,) = services.timeseries.points("btc-price")
    assert point.value == 97123.45
    assert point.timestamp.isoformat() == "2026-11-29T06:00:00+00:00"
    assert point.metadata == {"currency": "usd"} and point.trace_id == TRACE
    package = services.packages.get(TRACE, "btc-price")
    assert package is not None and package.chart is not None
    assert package.chart.time_range == "30d" and package.metadata == {"workflow": "cg"}
    state = services.jobs.require(TRACE).state_of("btc-price")
    assert state.status is KpiStatus.COLLECTED


def test_multi_result_settles_every_kpi_at_once(client: Client, services: Services,
                                                job: Job) -> None:
    response = client.ingest(MULTI)
    assert response.status == 200
    assert sorted(body_of(response)["stored"]) == ["cbbi-confidence", "cbbi-mvrv", "cbbi-rhodl"]
    stored = services.jobs.require(TRACE)
    assert all(stored.state_of(k).status is KpiStatus.COLLECTED for k in MULTI["kpiIds"])
    assert services.timeseries.points("cbbi-confidence")[0].value == 0.71


def test_replay_is_a_duplicate_and_a_new_value_is_a_409(client: Client, services: Services,
                                                        job: Job) -> None:
    assert client.ingest(SINGLE).status == 200
    replay = client.ingest(SINGLE)
    assert replay.status == 200
    assert body_of(replay)["status"] == "duplicate"
    assert body_of(replay)["job"]["alreadySettled"] == ["btc-price"]
    changed = client.ingest({**SINGLE, "data": 1.0})
    assert changed.status == 409
    assert body_of(changed)["error"]["code"] == "point_conflict"
    assert [p.value for p in services.timeseries.points("btc-price")] == [97123.45]


def test_unknown_trace_stores_the_point_and_answers_202(client: Client,
                                                       services: Services) -> None:
    response = client.ingest({**SINGLE, "traceId": "trace_unknown"})
    assert response.status == 202
    assert "no job has this traceId" in body_of(response)["message"]
    assert len(services.timeseries.points("btc-price")) == 1
    assert services.jobs.get("trace_unknown") is None


def test_unknown_kpi_is_404_and_nothing_is_stored(client: Client, services: Services,
                                                  job: Job) -> None:
    response = client.ingest({**MULTI, "kpiIds": ["cbbi-mvrv", "nope"],
                              "data": {"cbbi-mvrv": 1.0, "nope": 2.0}})
    assert response.status == 404
    assert body_of(response)["error"]["field"] == "kpiIds"
    assert "nope" in body_of(response)["error"]["message"]
    assert services.timeseries.points("cbbi-mvrv") == []


@pytest.mark.parametrize(("change", "field"), [
    ({"timestamp": "2026-11-29T06:00:00"}, "timestamp"),
    ({"timestamp": 1764396000}, "timestamp"),
    ({"data": "97000"}, "data"),
    ({"data": {"value": None}}, "data.value"),
    ({"data": True}, "data"),
    ({"kpiId": "btc price"}, "kpiId"),
    ({"traceId": ""}, "traceId"),
    ({"kpiType": None}, "kpiType"),
    ({"chart": {"url": "ftp://x/y", "type": "line", "timeRange": "1d"}}, "chart.url"),
])
def test_malformed_results_name_the_field_and_store_nothing(
        client: Client, services: Services, job: Job, change: dict[str, Any], field: str) -> None:
    response = client.ingest({**SINGLE, **change})
    assert response.status == 422
    error = body_of(response)["error"]
    assert error["code"] == "invalid_input" and error["field"] == field
    assert services.timeseries.points("btc-price") == []
    assert services.jobs.require(TRACE).state_of("btc-price").status is KpiStatus.PENDING


@pytest.mark.parametrize("raw", [b'{"traceId": NaN}', b"[1, 2]", b'{"a": Infinity}'])
def test_nan_infinity_and_non_objects_are_refused(client: Client, raw: bytes) -> None:
    response = client.ingest(raw)
    assert response.status == 422
    assert "error" in body_of(response)


def test_nan_value_is_refused_naming_data(client: Client, services: Services) -> None:
    raw = '{"traceId":"t","kpiId":"btc-price","timestamp":"2026-11-29T06:00:00Z",' \
          '"kpiType":"price","data":NaN}'
    response = client.ingest(raw)
    assert response.status == 422
    assert body_of(response)["error"]["field"] == "data"
    assert services.timeseries.points("btc-price") == []


@pytest.mark.parametrize("raw", [b"", b"not json", b'{"unterminated": ', b"\xff\xfe"])
def test_unreadable_bodies_are_400(client: Client, raw: bytes) -> None:
    response = client.ingest(raw)
    assert response.status == 400
    assert body_of(response)["error"]["code"] == "malformed_body"


def test_oversized_body_is_413_before_anything_else(client: Client) -> None:
    response = client.call("POST", "/api/kpi-data", b"x" * (256 * 1024 + 1))
    assert response.status == 413  # even without credentials: the size is checked first


def test_error_report_marks_kpis_failed_and_keeps_the_error_whole(
        client: Client, services: Services, job: Job) -> None:
    error = {"message": "CoinGecko answered 429", "name": "NodeApiError", "code": 429,
             "status": "rejected", "stack": "NodeApiError: ...\n at HttpRequest"}
    response = client.ingest({"traceId": TRACE, "kpiIds": ["cbbi-mvrv", "cbbi-rhodl"],
                              "error": error, "workflowId": "wf1", "executionId": 77,
                              "retryCount": 3, "component": "HTTP Request"},
                             path="/api/kpi-error")
    assert response.status == 200
    body = body_of(response)
    assert body["message"] == "CoinGecko answered 429"
    assert body["job"]["failed"] == ["cbbi-mvrv", "cbbi-rhodl"]
    state = services.jobs.require(TRACE).state_of("cbbi-mvrv")
    assert state.status is KpiStatus.FAILED and state.error == error
    assert state.detail == {"workflowId": "wf1", "executionId": "77", "retryCount": 3,
                            "component": "HTTP Request"}
    # an error after a success does not flip the KPI
    client.ingest(SINGLE)
    late = client.ingest({"traceId": TRACE, "kpiId": "btc-price", "error": "late"},
                         path="/api/kpi-error")
    assert body_of(late)["job"]["alreadySettled"] == ["btc-price"]
    assert services.jobs.require(TRACE).state_of("btc-price").status is KpiStatus.COLLECTED


def test_error_report_validation(client: Client) -> None:
    response = client.ingest({"traceId": TRACE, "kpiId": "btc-price"}, path="/api/kpi-error")
    assert response.status == 422 and body_of(response)["error"]["field"] == "error"
    response = client.ingest({"traceId": TRACE, "kpiId": "ghost", "error": {"message": "x"}},
                             path="/api/kpi-error")
    assert response.status == 404

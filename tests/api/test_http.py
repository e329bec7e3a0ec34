"""Routing, auth, request ids and the error model, shared by every route."""

from __future__ import annotations

import time

from metric_stream.api.auth import sign
from metric_stream.bootstrap import Services
from tests.api.conftest import ADMIN_KEY, HMAC_SECRET, Client, body_of
from tests.api.test_ingestion import SINGLE


def signed_headers(body: bytes, message_id: str = "msg_1", stamp: int | None = None,
                   secret: str = HMAC_SECRET) -> dict[str, str]:
    stamp = int(time.time()) if stamp is None else stamp
    return {"webhook-id": message_id, "webhook-timestamp": str(stamp),
            "webhook-signature": sign(secret, message_id, stamp, body)}


def test_unknown_route_and_wrong_method(client: Client) -> None:
    missing = client.call("GET", "/api/nothing")
    assert missing.status == 404 and body_of(missing)["error"]["code"] == "not_found"
    wrong = client.call("GET", "/api/kpi-data")
    assert wrong.status == 405 and wrong.headers["allow"] == "POST"


def test_every_answer_carries_a_request_id(client: Client) -> None:
    generated = client.call("GET", "/api/health")
    assert len(generated.headers["x-request-id"]) == 16
    echoed = client.call("GET", "/api/health", headers={"x-request-id": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    unsafe = client.call("GET", "/api/health", headers={"x-request-id": "a b\nc"})
    assert unsafe.headers["x-request-id"] != "a b\nc"


def test_missing_or_wrong_credentials_get_401_saying_only_that(client: Client) -> None:
    for headers in ({}, {"x-api-key": "wrong"}, {"authorization": "Bearer wrong"},
                    {"authorization": f"Basic {ADMIN_KEY}"}):
        response = client.call("POST", "/api/kpi-data", SINGLE, headers)
        assert response.status == 401
        assert body_of(response) == {"error": {"code": "unauthorized",
                                               "message": "authentication failed"}}


def test_admin_key_opens_ingestion(client: Client, services: Services) -> None:
    response = client.call("POST", "/api/kpi-data", SINGLE,
                           {"authorization": f"Bearer {ADMIN_KEY}"})
    assert response.status == 202


def test_standard_webhooks_signature(client: Client, services: Services) -> None:
    import json

    raw = json.dumps(SINGLE).encode()
    accepted = client.call("POST", "/api/kpi-data", raw, signed_headers(raw))
    assert accepted.status == 202
    replay = client.call("POST", "/api/kpi-data", raw, signed_headers(raw))
    assert replay.status == 200 and body_of(replay)["status"] == "duplicate"
    assert len(services.timeseries.points("btc-price")) == 1


def test_signature_accepts_one_of_several_for_key_rotation(client: Client) -> None:
    import json

    raw = json.dumps(SINGLE).encode()
    headers = signed_headers(raw, "msg_rot")
    old = signed_headers(raw, "msg_rot", secret="whsec_b2xkLXNlY3JldA==")["webhook-signature"]
    headers["webhook-signature"] = f"{old} {headers['webhook-signature']}"
    assert client.call("POST", "/api/kpi-data", raw, headers).status == 202


def test_bad_signatures_are_refused(client: Client, services: Services) -> None:
    import json

    raw = json.dumps(SINGLE).encode()
    stale = signed_headers(raw, "msg_old", stamp=int(time.time()) - 301)
    future = signed_headers(raw, "msg_future", stamp=int(time.time()) + 301)
    wrong_secret = signed_headers(raw, "msg_x", secret="whsec_d3Jvbmc=")
    tampered = signed_headers(raw, "msg_t")
    for headers, body in ((stale, raw), (future, raw), (wrong_secret, raw),
                          (tampered, raw.replace(b"97123.45", b"1.0"))):
        assert client.call("POST", "/api/kpi-data", body, headers).status == 401
    assert services.timeseries.points("btc-price") == []


def test_a_failed_signed_message_is_processed_again_on_retry(client: Client,
                                                            services: Services) -> None:
    import json

    bad = json.dumps({**SINGLE, "kpiId": "ghost"}).encode()
    assert client.call("POST", "/api/kpi-data", bad, signed_headers(bad, "msg_r")).status == 404
    again = client.call("POST", "/api/kpi-data", bad, signed_headers(bad, "msg_r"))
    assert again.status == 404  # not answered as a duplicate: it never succeeded


def test_health_and_openapi_are_public(client: Client) -> None:
    health = client.call("GET", "/api/health")
    assert health.status == 200 and body_of(health)["status"] == "ok"
    spec = body_of(client.call("GET", "/api/openapi.json"))
    assert spec["openapi"] == "3.1.0"
    post = spec["paths"]["/api/kpi-data"]["post"]
    assert {"401", "404", "409", "413", "422"} <= set(post["responses"])
    schemas = spec["components"]["schemas"]
    assert {"KpiResult", "MultiKpiResult", "ErrorReport", "Error"} <= set(schemas)


def test_csv_import_route(client: Client, services: Services) -> None:
    csv_text = ("timestamp,value,metadata\n"
                "2026-01-01T00:00:00Z,100.5,\n"
                "2026-01-02T00:00:00+01:00,101,\"{\"\"src\"\": \"\"x\"\"}\"\n"
                "2026-01-03T00:00:00,102,\n"
                "2026-01-04T00:00:00Z,NaN,\n")
    admin = {"authorization": f"Bearer {ADMIN_KEY}", "content-type": "text/csv"}
    response = client.call("POST", "/api/kpis/btc-price/import?x=1", csv_text, admin)
    assert response.status == 200, response.body
    body = body_of(response)
    assert (body["rowsImported"], body["rowsRefused"]) == (2, 2)
    assert [e["row"] for e in body["errors"]] == [4, 5]
    assert "zone" in body["errors"][0]["reason"] or "timezone" in body["errors"][0]["reason"]
    assert [p.value for p in services.timeseries.points("btc-price")] == [100.5, 101.0]
    again = body_of(client.call("POST", "/api/kpis/btc-price/import", csv_text, admin))
    assert again["rowsImported"] == 0 and again["rowsDuplicate"] == 2
    assert client.call("POST", "/api/kpis/ghost/import", csv_text, admin).status == 404
    ingest_key = {"x-api-key": "ingest-key-for-tests"}
    assert client.call("POST", "/api/kpis/btc-price/import", csv_text, ingest_key).status == 401
    big = client.call("POST", "/api/kpis/btc-price/import", b"x" * (10 * 1024 * 1024 + 1), admin)
    assert big.status == 413

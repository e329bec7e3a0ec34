"""Every route of the OpenAPI document (so a route added later is covered without a
change here): the public ones are exactly health, chart health and the document; every
other refuses a request without the right credentials with a 401 JSON error, and the
store is exactly as it was. Ingestion routes also refuse a wrong key and every kind of
bad signature; admin routes refuse the ingestion key."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from metric_stream.api.app import openapi_document
from metric_stream.api.http import Response
from metric_stream.signing import sign
from tests.security.conftest import (
    ADMIN_KEY,
    HMAC_SECRET,
    INGEST_KEY,
    PUBLIC,
    InProcess,
    Operation,
    Served,
    operations,
    request_body,
    store_snapshot,
)

OPERATIONS = operations()
PROTECTED = [o for o in OPERATIONS if not o.public]

ADMIN_REFUSED: dict[str, dict[str, str]] = {
    "no credentials": {},
    "a wrong bearer key": {"authorization": "Bearer not-the-admin-key"},
    "the admin key less its last character": {"authorization": f"Bearer {ADMIN_KEY[:-1]}"},
    "the admin key plus a character": {"authorization": f"Bearer {ADMIN_KEY}x"},
    "the admin key without a scheme": {"authorization": ADMIN_KEY},
    "the admin key as Basic": {"authorization": f"Basic {ADMIN_KEY}"},
    "the admin key as X-API-Key": {"x-api-key": ADMIN_KEY},
    "an empty bearer": {"authorization": "Bearer "},
    "the ingestion key as bearer": {"authorization": f"Bearer {INGEST_KEY}"},
    "the ingestion key as X-API-Key": {"x-api-key": INGEST_KEY},
    "forged proxy headers": {"x-metric-stream-proxy-timestamp": "1",
                             "x-metric-stream-proxy-origin": "cron",
                             "x-metric-stream-proxy-signature": "v1=00"},
}


def ingestion_refused(body: bytes) -> dict[str, dict[str, str]]:
    now = int(time.time())

    def signed(secret: str = HMAC_SECRET, stamp: int = now, data: bytes = body,
               message_id: str = "msg_security_1") -> dict[str, str]:
        return {"webhook-id": message_id, "webhook-timestamp": str(stamp),
                "webhook-signature": sign(secret, message_id, stamp, data)}

    return {
        "no credentials": {},
        "a wrong X-API-Key": {"x-api-key": "not-the-ingestion-key"},
        "an empty X-API-Key": {"x-api-key": ""},
        "a wrong X-API-Key with a valid signature": {**signed(), "x-api-key": "nope"},
        "a garbage signature": {**signed(), "webhook-signature": "v1,Zm9yZ2Vk"},
        "a signature by another secret": signed(secret="whsec_QW5vdGhlclNlY3JldEtleTEy"),
        "a signature ten minutes old": signed(stamp=now - 600),
        "a signature of another body": signed(data=body + b" "),
        "a signature for another message id": {**signed(), "webhook-id": "msg_other"},
        "a signature without its timestamp": {
            k: v for k, v in signed().items() if k != "webhook-timestamp"},
        "the ingestion key as bearer": {"authorization": f"Bearer {INGEST_KEY}"},
    }


def assert_unauthorized(response: Response | httpx.Response, why: str) -> None:
    status = response.status if isinstance(response, Response) else response.status_code
    raw = response.body if isinstance(response, Response) else response.content
    assert status == 401, f"{why}: {status} {raw[:300]!r}"
    assert response.headers["content-type"].startswith("application/json"), why
    error = json.loads(raw)["error"]
    assert error["code"] == "unauthorized" and error["message"], (why, error)
    assert ADMIN_KEY not in raw.decode() and INGEST_KEY not in raw.decode(), why


def test_the_public_routes_are_exactly_health_chart_health_and_the_document() -> None:
    assert {(o.method, o.path) for o in OPERATIONS if o.public} == PUBLIC
    assert len(PROTECTED) >= 35, "every other route is protected"
    for operation in PROTECTED:
        responses = openapi_document()["paths"][operation.path][operation.method.lower()][
            "responses"]
        assert "401" in responses, f"{operation.label} documents its 401"
        assert set(operation.security) <= {"apiKey", "webhookSignature", "adminKey",
                                           "proxySignature"}, operation.label
        assert "adminKey" in operation.security, operation.label


def test_the_public_routes_answer_without_credentials(in_process: InProcess) -> None:
    for method, path in sorted(PUBLIC):
        assert in_process.call(method, path).status in (200, 503), path


@pytest.mark.parametrize("operation", PROTECTED, ids=lambda o: o.label)
def test_a_protected_route_refuses_bad_credentials_and_changes_nothing(
        in_process: InProcess, operation: Operation) -> None:
    path = operation.url(**{n: in_process.seeded.value_for(operation, n)
                            for n in operation.path_params})
    body = request_body(in_process, operation)
    headers = {"content-type": operation.body_type} if operation.body_type else {}
    refusals = dict(ADMIN_REFUSED)
    if operation.ingestion:
        refusals = {k: v for k, v in refusals.items()
                    if k not in ("the ingestion key as X-API-Key",)}
        refusals.update(ingestion_refused(body))
    before = store_snapshot(in_process.seeded.home)
    for why, credentials in refusals.items():
        answer = in_process.call(operation.method, path, {**headers, **credentials}, body)
        assert_unauthorized(answer, f"{operation.label} with {why}")
        assert answer.headers.get("www-authenticate") == "Bearer"
    assert store_snapshot(in_process.seeded.home) == before, (
        f"{operation.label} wrote while refusing")
    # the control: the same request with the right credentials gets past authentication
    right = {"x-api-key": INGEST_KEY} if operation.ingestion else {
        "authorization": f"Bearer {ADMIN_KEY}"}
    accepted = in_process.call(operation.method, path, {**headers, **right}, body)
    documented = openapi_document()["paths"][operation.path][operation.method.lower()][
        "responses"]
    assert accepted.status not in (401, 403), (operation.label, accepted.body[:300])
    assert str(accepted.status) in documented, (operation.label, accepted.body[:300])


def test_a_valid_signature_opens_ingestion_once(in_process: InProcess) -> None:
    """The control for the signature refusals: a fresh one by the right secret passes,
    and its replay is answered as a duplicate, not processed again."""
    operation = next(o for o in PROTECTED if o.path == "/api/kpi-data")
    body = request_body(in_process, operation)
    stamp = int(time.time())
    headers = {"content-type": "application/json", "webhook-id": "msg_ok",
               "webhook-timestamp": str(stamp),
               "webhook-signature": sign(HMAC_SECRET, "msg_ok", stamp, body)}
    first = in_process.call("POST", "/api/kpi-data", headers, body)
    assert first.status == 200, first.body
    again = in_process.call("POST", "/api/kpi-data", headers, body)
    assert json.loads(again.body)["status"] == "duplicate"


def test_over_http_every_protected_route_refuses_and_changes_nothing(served: Served) -> None:
    document = httpx.get(f"{served.url}/api/openapi.json").json()
    assert document == json.loads(json.dumps(openapi_document()))
    before = store_snapshot(served.home)
    checked = 0
    with httpx.Client(base_url=served.url, timeout=30) as http:
        for operation in OPERATIONS:
            path = operation.url(**dict.fromkeys(operation.path_params, "some-id"))
            for why, credentials in (("no credentials", {}),
                                     ("a wrong key", {"authorization": "Bearer wrong",
                                                      "x-api-key": "wrong"})):
                answer = http.request(operation.method, path, headers=credentials,
                                      content=b"{}" if operation.body_type else None)
                if operation.public:
                    assert answer.status_code in (200, 503), operation.label
                    continue
                assert_unauthorized(answer, f"{operation.label} over HTTP with {why}")
                checked += 1
    assert checked == 2 * len(PROTECTED)
    assert store_snapshot(served.home) == before

"""Behind the Cloudflare Worker proxy: every request needs the proxy's signature, the
tick route opens to the proxy's signed cron, and a refused request changes nothing."""

from __future__ import annotations

import json
import string
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from metric_stream.api.app import build_api
from metric_stream.api.proxy import (
    ORIGIN,
    SIGNATURE,
    TIMESTAMP,
    canonical_query,
    proxy_signature,
    verified_origin,
)
from metric_stream.bootstrap import Services
from metric_stream.clock import ManualClock
from metric_stream.models import CollectorSource, KpiDefinition, Schedule
from tests.api.conftest import ADMIN_KEY, INGEST_KEY, Client, body_of
from tests.conftest import make_services

SECRET = "proxy-secret-for-tests"
VECTORS = Path(__file__).resolve().parents[2] / "wrangler" / "test" / "vectors.json"


def signed(method: str, path: str, body: bytes = b"", query: dict[str, str] | None = None,
           *, origin: str = "forward", secret: str = SECRET,
           at: float | None = None) -> dict[str, str]:
    stamp = str(int(time.time() if at is None else at))
    return {TIMESTAMP: stamp, ORIGIN: origin,
            SIGNATURE: proxy_signature(secret, stamp, origin, method, path, query or {}, body)}


@pytest.fixture
def proxied(tmp_path: Path, clock: ManualClock) -> Services:
    services = make_services("embedded", tmp_path, clock, ingestion_key=INGEST_KEY,
                             admin_key=ADMIN_KEY, proxy_secret=SECRET)
    services.registry.kpis.create(KpiDefinition(
        id="btc-price", name="BTC", kpi_type="price", source=CollectorSource(collector="demo")))
    return services


@pytest.fixture
def api(proxied: Services) -> Client:
    return Client(build_api(proxied))


ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}


def test_a_request_without_the_proxy_signature_is_refused_even_with_the_admin_key(
        api: Client) -> None:
    for method, path in (("GET", "/api/health"), ("GET", "/api/kpis"),
                         ("GET", "/api/openapi.json")):
        answer = api.call(method, path, headers=ADMIN)
        assert answer.status == 403, path
        error = body_of(answer)["error"]
        assert error["code"] == "forbidden"
        assert "through the metric-stream proxy" in error["message"]


def test_a_signed_request_then_meets_the_routes_own_auth(api: Client) -> None:
    assert api.call("GET", "/api/health", headers=signed("GET", "/api/health")).status == 200
    assert api.call("GET", "/api/kpis", headers=signed("GET", "/api/kpis")).status == 401
    answer = api.call("GET", "/api/kpis", headers={**ADMIN, **signed("GET", "/api/kpis")})
    assert answer.status == 200


def test_the_query_is_part_of_the_signature(api: Client) -> None:
    headers = {**ADMIN, **signed("GET", "/api/jobs", query={"limit": "5"})}
    assert api.call("GET", "/api/jobs?limit=5", headers=headers).status == 200
    assert api.call("GET", "/api/jobs?limit=6", headers=headers).status == 403


@pytest.mark.parametrize("tamper", ["body", "path", "method", "secret", "stale", "future",
                                    "origin", "no-stamp", "garbled"])
def test_a_forged_or_stale_signature_is_refused_and_nothing_is_stored(
        api: Client, proxied: Services, tamper: str) -> None:
    body = json.dumps({"id": "new-kpi", "name": "New", "kpiType": "price",
                       "source": {"collector": "demo"}}).encode()
    headers = {**ADMIN, **signed("POST", "/api/kpis", body)}
    if tamper == "body":
        body = body.replace(b"New", b"Old")
    elif tamper == "path":
        headers.update(signed("POST", "/api/kpi", body))
    elif tamper == "method":
        headers.update(signed("PUT", "/api/kpis", body))
    elif tamper == "secret":
        headers.update(signed("POST", "/api/kpis", body, secret="guessed"))
    elif tamper == "stale":
        headers.update(signed("POST", "/api/kpis", body, at=time.time() - 301))
    elif tamper == "future":
        headers.update(signed("POST", "/api/kpis", body, at=time.time() + 301))
    elif tamper == "origin":
        headers[ORIGIN] = "cron"
    elif tamper == "no-stamp":
        del headers[TIMESTAMP]
    else:
        headers[SIGNATURE] = "v1=" + "0" * 64
    answer = api.call("POST", "/api/kpis", body, {**headers, "content-type": "application/json"})
    assert answer.status == 403
    assert body_of(answer)["error"]["code"] == "forbidden"
    assert proxied.registry.kpis.get("new-kpi") is None


def test_the_tick_opens_to_the_proxys_cron_and_the_admin_key_only(
        api: Client, proxied: Services, clock: ManualClock) -> None:
    proxied.registry.schedules.create(Schedule(id="every-minute", cron="* * * * *",
                                               created_at=clock.now()))
    clock.advance(120)
    forwarded = api.call("POST", "/api/tick", headers=signed("POST", "/api/tick"))
    assert forwarded.status == 401  # a client's request through the proxy: no key, no tick
    assert proxied.jobs.list(limit=5) == []
    answer = api.call("POST", "/api/tick", headers=signed("POST", "/api/tick", origin="cron"))
    assert answer.status == 200
    fired = body_of(answer)["fired"]
    assert [(f["scheduleId"], f["error"]) for f in fired] == [("every-minute", None)]
    assert [j.trace_id for j in proxied.jobs.list(limit=5)] == [fired[0]["traceId"]]


def test_without_proxy_mode_the_tick_needs_the_admin_key(client: Client) -> None:
    assert client.call("POST", "/api/tick").status == 401
    assert client.call("POST", "/api/tick", headers=signed("POST", "/api/tick",
                                                           origin="cron")).status == 401
    answer = client.call("POST", "/api/tick", headers=ADMIN)
    assert answer.status == 200
    assert set(body_of(answer)) == {"fired", "recovered", "alerts"}


# ---------------------------------------------------------------- the protocol
def test_the_signature_matches_the_workers_own_vector() -> None:
    """The Worker's unit tests check the same vector (wrangler/test/vectors.json)."""
    vectors: list[dict[str, Any]] = json.loads(VECTORS.read_text())
    assert vectors
    for vector in vectors:
        assert proxy_signature(vector["secret"], vector["timestamp"], vector["origin"],
                               vector["method"], vector["path"], vector["query"],
                               vector["body"].encode()) == vector["signature"]


def test_the_canonical_query_sorts_and_encodes_like_encode_uri_component() -> None:
    assert canonical_query({}) == ""
    assert canonical_query({"b": "2", "a": "x y"}) == "a=x%20y&b=2"
    assert canonical_query({"q": "ä/&=*'()!~"}) == "q=%C3%A4%2F%26%3D*'()!~"
    assert canonical_query({"empty": "", "a": "1"}) == "a=1"


TEXT = st.text(alphabet=string.printable + "äß€😀", max_size=20)


@given(method=st.sampled_from(["GET", "POST", "DELETE"]), path=TEXT, body=st.binary(max_size=64),
       query=st.dictionaries(TEXT, TEXT, max_size=4), origin=st.sampled_from(["forward", "cron"]))
def test_any_request_signed_verifies_and_any_change_does_not(
        method: str, path: str, body: bytes, query: dict[str, str], origin: str) -> None:
    now = 1_800_000_000.0
    headers = signed(method, path, body, query, origin=origin, at=now)
    secret = SecretStr(SECRET)
    assert verified_origin(secret, method, path, query, headers, body, now=now) == origin
    assert verified_origin(secret, method, path + "x", query, headers, body, now=now) is None
    assert verified_origin(secret, method, path, query, headers, body + b"x", now=now) is None
    assert verified_origin(secret, method, path, {**query, "zz": "1"}, headers, body,
                           now=now) is None
    assert verified_origin(SecretStr("other"), method, path, query, headers, body,
                           now=now) is None

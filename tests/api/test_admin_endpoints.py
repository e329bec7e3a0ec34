"""Admin API: delivery endpoints. No answer ever holds an endpoint's URL (only its masked
form) nor its signing secret (answered once, when a webhook endpoint is created). The
test route sends a test message through the endpoint's channel."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from metric_stream.bootstrap import Services
from metric_stream.clock import ManualClock
from metric_stream.models.config import DeliveryConfig, RetryPolicy
from metric_stream.signing import sign
from tests.api.conftest import ADMIN_KEY, Client, body_of
from tests.delivery_sink import APPRISE_IMPORT, Sink, running_sink

TOKEN = "tok-8c1f0e2d9b7a"
KEY = "key-5a4e3d2c1b0f"
PUBLIC_URL = f"https://93.184.215.14/hooks/{TOKEN}?key={KEY}"
BOT = f"123456789:AA{TOKEN}"
"""A Telegram bot token (its shape), holding TOKEN so no answer may show it."""


class Recorder:
    """Calls the API as the admin, keeping every body it answered."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.bodies: list[bytes] = []

    def __call__(self, method: str, path: str, body: Any = b"") -> tuple[int, Any]:
        response = self.client.call(method, path, body,
                                    {"authorization": f"Bearer {ADMIN_KEY}"})
        self.bodies.append(response.body)
        return response.status, body_of(response)

    def assert_no_secret(self) -> None:
        """No URL secret in any answer; each signing secret in one answer only (the
        creation's)."""
        for body in self.bodies:
            assert TOKEN.encode() not in body and KEY.encode() not in body, body
        secrets = {json.loads(body).get("signingSecret") for body in self.bodies
                   if body.startswith(b"{")} - {None}
        for secret in secrets:
            assert sum(secret.encode() in body for body in self.bodies) == 1, secret


@pytest.fixture
def api(client: Client) -> Iterator[Recorder]:
    recorder = Recorder(client)
    yield recorder
    recorder.assert_no_secret()


@pytest.fixture(autouse=True)
def fast_retries(services: Services, clock: ManualClock) -> None:
    config = services.config.get()
    services.config.put(config.model_copy(update={
        "retry": config.retry.model_copy(update={
            "delivery": RetryPolicy(retries=2, delays_s=[0, 0.01])}),
        "delivery": DeliveryConfig(timeout_s=2, jitter=0),
    }), clock.now())


@pytest.fixture
def sink() -> Iterator[Sink]:
    with running_sink() as running:
        yield running


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_crud_never_answers_the_url_nor_the_signing_secret(
        api: Recorder, services: Services) -> None:
    status, created = api("POST", "/api/endpoints",
                          {"id": "hook", "name": "Hook", "url": PUBLIC_URL,
                           "kpis": ["btc-price", "cbbi-mvrv"],
                           "health": {"consecutiveFailures": 9}})
    assert status == 201, created
    assert created["url"] == "https://93.184.215.14/***?***" and created["scheme"] == "https"
    assert created["health"] == {"consecutiveFailures": 0}  # health is the system's to keep
    secret = created.pop("signingSecret")
    assert secret.startswith("whsec_") and created["signed"] is True
    stored = services.registry.endpoints.require("hook")
    assert stored.url == PUBLIC_URL and stored.signing_secret == secret
    status, telegram = api("POST", "/api/endpoints",
                           {"id": "tg", "name": "TG", "url": f"tgram://{BOT}/-100200"})
    assert status == 201 and telegram["url"] == "tgram://***"
    assert telegram["signed"] is False and "signingSecret" not in telegram

    status, listed = api("GET", "/api/endpoints")
    assert status == 200 and [e["id"] for e in listed["endpoints"]] == ["hook", "tg"]
    assert listed["endpoints"][0] == created
    assert api("GET", "/api/endpoints/hook") == (200, created)

    status, renamed = api("PUT", "/api/endpoints/hook", {"name": "Renamed", "kpis": "alerts"})
    assert status == 200 and renamed["name"] == "Renamed" and renamed["kpis"] == "alerts"
    assert services.registry.endpoints.require("hook").url == PUBLIC_URL  # url left out: kept
    status, round_trip = api("PUT", "/api/endpoints/hook", {**renamed, "active": False})
    assert status == 200 and round_trip["active"] is False and round_trip["signed"] is True
    assert services.registry.endpoints.require("hook").url == PUBLIC_URL  # masked: kept
    new_url = f"https://93.184.215.15/hooks/{TOKEN}-2"
    status, moved = api("PUT", "/api/endpoints/hook", {**renamed, "url": new_url})
    assert status == 200 and moved["url"] == "https://93.184.215.15/***"
    assert "signingSecret" not in moved and moved["signed"] is True
    assert services.registry.endpoints.require("hook").url == new_url
    assert services.registry.endpoints.require("hook").signing_secret == secret  # kept
    assert moved["createdAt"] == created["createdAt"]

    assert api("DELETE", "/api/endpoints/hook") == (200, {"deleted": "hook"})
    assert api("GET", "/api/endpoints/hook")[0] == 404
    assert api("DELETE", "/api/endpoints/hook")[0] == 404


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"id": "e", "name": "E", "url": "no scheme"}, 422, "url"),
    ({"id": "e", "name": "E"}, 422, "url"),
    pytest.param({"id": "e", "name": "E", "url": "foo://x"}, 422, "url", marks=APPRISE_IMPORT),
    ({"id": "e", "name": "E", "url": "tgram://"}, 422, "url"),
    ({"id": "e", "name": "E", "url": f"tgram://{BOT}"}, 422, "url"),
    ({"id": "e", "name": "E", "url": f"tgram://{BOT}/not-a-chat"}, 422, "url"),
    ({"id": "e", "name": "E", "url": "https://example.com:99999/hook"}, 422, "url"),
    ({"id": "e", "url": f"tgram://{BOT}/1"}, 422, "name"),
    ({"id": "e", "name": "E", "url": f"tgram://{BOT}/1", "kpis": ["ghost"]}, 422, "kpis"),
    ({"id": "e", "name": "E", "url": f"tgram://{BOT}/1", "kpis": "some"}, 422, "kpis"),
    ({"id": "e", "name": "E", "url": f"http://169.254.169.254/{TOKEN}"}, 403, "url"),
    ({"id": "e", "name": "E", "url": f"http://10.1.2.3/{TOKEN}"}, 403, "url"),
])
def test_invalid_or_refused_endpoints(api: Recorder, services: Services, body: dict[str, Any],
                                      status: int, field: str) -> None:
    answered, error = api("POST", "/api/endpoints", body)
    assert answered == status and error["error"]["field"] == field, error
    assert services.registry.endpoints.get("e") is None


@pytest.mark.parametrize(("url", "reason"), [
    pytest.param("foo://x", "is not a URL metric-stream or Apprise can deliver to",
                 marks=APPRISE_IMPORT),
    (f"tgram://{BOT}", "names no Telegram chat"),
    ("tgram://", "must be a URL with a scheme"),
    ("tgram://123456789/-100200", "the Telegram bot token is missing or malformed"),
])
def test_an_unusable_url_says_why(api: Recorder, url: str, reason: str) -> None:
    status, error = api("POST", "/api/endpoints", {"id": "e", "name": "E", "url": url})
    assert status == 422 and reason in error["error"]["message"], error


def test_conflicts_mismatches_and_unresolvable_hosts(api: Recorder) -> None:
    assert api("POST", "/api/endpoints", {"id": "e", "name": "E", "url": PUBLIC_URL})[0] == 201
    status, error = api("POST", "/api/endpoints", {"id": "e", "name": "E", "url": PUBLIC_URL})
    assert status == 409 and error["error"]["code"] == "already_exists"
    status, error = api("PUT", "/api/endpoints/e", {"id": "f", "name": "E"})
    assert status == 422 and error["error"]["field"] == "id"
    assert api("PUT", "/api/endpoints/ghost", {"name": "G", "url": f"tgram://{BOT}/1"})[0] == 404
    status, created = api("POST", "/api/endpoints",
                          {"id": "later", "name": "Later",
                           "url": f"https://hooks.invalid/{TOKEN}"})
    assert status == 201 and "cannot be resolved" in created["warnings"][0]


def test_the_test_route_sends_a_signed_test_message(
        api: Recorder, services: Services, sink: Sink) -> None:
    url = f"{sink.on(f'/hooks/{TOKEN}', status=204, body=b'')}?key={KEY}"
    _, created = api("POST", "/api/endpoints", {"id": "local", "name": "Local", "url": url})
    status, result = api("POST", "/api/endpoints/local/test")
    assert status == 200, result
    assert result["delivered"] is True and result["status"] == 204
    assert result["attempts"] == 1 and result["channel"] == "webhook"
    assert result.get("error") is None and result["elapsedMs"] >= 0
    assert result["url"] == f"http://127.0.0.1:{sink.port}/***?***"

    (received,) = sink.received
    assert received.method == "POST" and received.query == f"key={KEY}"
    assert json.loads(received.body) == {
        "type": "metric-stream.test", "version": 1, "endpointId": "local",
        "message": "metric-stream test message: delivery works"}
    headers = received.headers
    assert headers["webhook-id"] == "test:local"
    assert headers["webhook-signature"] == sign(created["signingSecret"], "test:local",
                                                int(headers["webhook-timestamp"]),
                                                received.body)
    endpoint = services.registry.endpoints.require("local")
    assert endpoint.health.last_success_at is None  # a test does not count


def test_the_test_route_reports_a_failing_endpoint(api: Recorder, sink: Sink) -> None:
    url = sink.on(f"/hooks/{TOKEN}", status=503, body=b"maintenance until 07:00")
    api("POST", "/api/endpoints", {"id": "down", "name": "Down", "url": url})
    status, result = api("POST", "/api/endpoints/down/test")
    assert status == 200
    assert result["delivered"] is False and result["status"] == 503
    assert result["attempts"] == 3 and result["error"] == "HTTP 503: maintenance until 07:00"
    assert len(sink.received) == 3

    url = f"http://127.0.0.1:{closed_port()}/hooks/{TOKEN}?key={KEY}"
    api("POST", "/api/endpoints", {"id": "closed", "name": "Closed", "url": url})
    status, result = api("POST", "/api/endpoints/closed/test")
    assert status == 200 and result["delivered"] is False and result["status"] is None
    assert result["error"].startswith("no answer: ClientConnectorError")


def test_an_error_echoing_the_url_does_not_reveal_it(client: Client, sink: Sink) -> None:
    recorder = Recorder(client)
    url = f"{sink.on(f'/hooks/{TOKEN}', status=404, body=f'Cannot POST /hooks/{TOKEN}'.encode())}"
    recorder("POST", "/api/endpoints", {"id": "echo", "name": "Echo", "url": f"{url}?key={KEY}"})
    status, result = recorder("POST", "/api/endpoints/echo/test")
    assert status == 200 and result["delivered"] is False and result["status"] == 404
    recorder.assert_no_secret()


@APPRISE_IMPORT
def test_the_test_route_on_other_channels(api: Recorder, services: Services,
                                          sink: Sink) -> None:
    api("POST", "/api/endpoints", {"id": "ntfy", "name": "ntfy",
                                   "url": f"ntfy://127.0.0.1:{sink.port}/alerts?token=tk_{TOKEN}"})
    status, result = api("POST", "/api/endpoints/ntfy/test")
    assert status == 200, result
    assert result["delivered"] is True and result["channel"] == "apprise"
    assert result["url"] == "ntfy://***"
    (received,) = sink.hits("/")
    assert json.loads(received.body)["title"] == "metric-stream test"
    assert received.headers["authorization"] == f"Bearer tk_{TOKEN}"

    services.settings.telegram_base_url = sink.base
    sink.on(f"/bot{BOT}/sendMessage", body=b'{"ok": true, "result": {"message_id": 7}}')
    api("POST", "/api/endpoints", {"id": "tg", "name": "TG", "url": f"tgram://{BOT}/-100200"})
    status, result = api("POST", "/api/endpoints/tg/test")
    assert status == 200 and result["delivered"] is True and result["channel"] == "telegram"
    (message,) = sink.hits(f"/bot{BOT}/sendMessage")
    assert json.loads(message.body)["chat_id"] == "-100200"


def test_the_test_route_refuses_an_address_no_longer_allowed(
        api: Recorder, services: Services, sink: Sink) -> None:
    url = f"http://localhost:{sink.port}/{TOKEN}"
    assert api("POST", "/api/endpoints", {"id": "lo", "name": "Lo", "url": url})[0] == 201
    services.settings.outbound_allow_loopback = False  # the operator turned loopback off since
    status, result = api("POST", "/api/endpoints/lo/test")
    assert status == 200 and result["delivered"] is False and result["attempts"] == 1
    assert "loopback address" in result["error"]
    assert sink.received == []
    assert api("POST", "/api/endpoints/ghost/test")[0] == 404

"""Admin API: delivery endpoints. No answer ever holds an endpoint's URL: only its
masked form."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from metric_stream.bootstrap import Services
from tests.api.conftest import ADMIN_KEY, Client, body_of

TOKEN = "tok-8c1f0e2d9b7a"
KEY = "key-5a4e3d2c1b0f"
PUBLIC_URL = f"https://93.184.215.14/hooks/{TOKEN}?key={KEY}"


class Recorder:
    """What a webhook under test received, and every body the API answered."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.bodies: list[bytes] = []

    def __call__(self, method: str, path: str, body: Any = b"") -> tuple[int, Any]:
        response = self.client.call(method, path, body,
                                    {"authorization": f"Bearer {ADMIN_KEY}"})
        self.bodies.append(response.body)
        return response.status, body_of(response)

    def assert_no_secret(self) -> None:
        for body in self.bodies:
            assert TOKEN.encode() not in body and KEY.encode() not in body, body


@pytest.fixture
def api(client: Client) -> Iterator[Recorder]:
    recorder = Recorder(client)
    yield recorder
    recorder.assert_no_secret()


class Webhook(BaseHTTPRequestHandler):
    seen: list[tuple[str, str]] = []

    def do_HEAD(self) -> None:
        self.seen.append(("HEAD", self.path))
        self.send_response(405)
        self.send_header("allow", "POST")
        self.end_headers()

    def do_GET(self) -> None:
        self.seen.append(("GET", self.path))
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def do_POST(self) -> None:
        self.seen.append(("POST", self.path))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[tuple[str, str]]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Webhook)
    seen: list[tuple[str, str]] = []
    server.RequestHandlerClass = type("Recording", (Webhook,), {"seen": seen})
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()
    thread.join()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_crud_never_answers_the_url(api: Recorder, services: Services) -> None:
    status, created = api("POST", "/api/endpoints",
                          {"id": "hook", "name": "Hook", "url": PUBLIC_URL,
                           "kpis": ["btc-price", "cbbi-mvrv"],
                           "health": {"consecutiveFailures": 9}})
    assert status == 201, created
    assert created["url"] == "https://93.184.215.14/***?***" and created["scheme"] == "https"
    assert created["health"] == {"consecutiveFailures": 0}  # health is the system's to keep
    assert services.registry.endpoints.require("hook").url == PUBLIC_URL
    status, telegram = api("POST", "/api/endpoints",
                           {"id": "tg", "name": "TG", "url": f"tgram://{TOKEN}/-100200"})
    assert status == 201 and telegram["url"] == "tgram://***"

    status, listed = api("GET", "/api/endpoints")
    assert status == 200 and [e["id"] for e in listed["endpoints"]] == ["hook", "tg"]
    assert api("GET", "/api/endpoints/hook") == (200, created)

    status, renamed = api("PUT", "/api/endpoints/hook", {"name": "Renamed", "kpis": "alerts"})
    assert status == 200 and renamed["name"] == "Renamed" and renamed["kpis"] == "alerts"
    assert services.registry.endpoints.require("hook").url == PUBLIC_URL  # url left out: kept
    status, round_trip = api("PUT", "/api/endpoints/hook", {**renamed, "active": False})
    assert status == 200 and round_trip["active"] is False
    assert services.registry.endpoints.require("hook").url == PUBLIC_URL  # masked: kept
    new_url = f"https://93.184.215.15/hooks/{TOKEN}-2"
    status, moved = api("PUT", "/api/endpoints/hook", {**renamed, "url": new_url})
    assert status == 200 and moved["url"] == "https://93.184.215.15/***"
    assert services.registry.endpoints.require("hook").url == new_url
    assert moved["createdAt"] == created["createdAt"]

    assert api("DELETE", "/api/endpoints/hook") == (200, {"deleted": "hook"})
    assert api("GET", "/api/endpoints/hook")[0] == 404
    assert api("DELETE", "/api/endpoints/hook")[0] == 404


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"id": "e", "name": "E", "url": "no scheme"}, 422, "url"),
    ({"id": "e", "name": "E"}, 422, "url"),
    ({"id": "e", "url": "tgram://a/b"}, 422, "name"),
    ({"id": "e", "name": "E", "url": "tgram://a/b", "kpis": ["ghost"]}, 422, "kpis"),
    ({"id": "e", "name": "E", "url": "tgram://a/b", "kpis": "some"}, 422, "kpis"),
    ({"id": "e", "name": "E", "url": f"http://169.254.169.254/{TOKEN}"}, 403, "url"),
    ({"id": "e", "name": "E", "url": f"http://10.1.2.3/{TOKEN}"}, 403, "url"),
])
def test_invalid_or_refused_endpoints(api: Recorder, services: Services, body: dict[str, Any],
                                      status: int, field: str) -> None:
    answered, error = api("POST", "/api/endpoints", body)
    assert answered == status and error["error"]["field"] == field
    assert services.registry.endpoints.get("e") is None


def test_conflicts_mismatches_and_unresolvable_hosts(api: Recorder) -> None:
    assert api("POST", "/api/endpoints", {"id": "e", "name": "E", "url": PUBLIC_URL})[0] == 201
    status, error = api("POST", "/api/endpoints", {"id": "e", "name": "E", "url": PUBLIC_URL})
    assert status == 409 and error["error"]["code"] == "already_exists"
    status, error = api("PUT", "/api/endpoints/e", {"id": "f", "name": "E"})
    assert status == 422 and error["error"]["field"] == "id"
    assert api("PUT", "/api/endpoints/ghost", {"name": "G", "url": "tgram://a/b"})[0] == 404
    status, created = api("POST", "/api/endpoints",
                          {"id": "later", "name": "Later",
                           "url": f"https://hooks.invalid/{TOKEN}"})
    assert status == 201 and "cannot be resolved" in created["warnings"][0]


def test_the_test_route_checks_without_delivering(
        api: Recorder, webhook: tuple[str, list[tuple[str, str]]]) -> None:
    base, seen = webhook
    url = f"{base}/hooks/{TOKEN}?key={KEY}"
    api("POST", "/api/endpoints", {"id": "local", "name": "Local", "url": url})
    status, result = api("POST", "/api/endpoints/local/test")
    assert status == 200, result
    assert result["allowed"] is True and result["reachable"] is True
    assert result["status"] == 200 and result["delivered"] is False
    assert "nothing was delivered" in result["message"]
    assert [method for method, _ in seen] == ["HEAD", "GET"]  # HEAD refused with 405: GET
    assert seen[0][1] == f"/hooks/{TOKEN}?key={KEY}"


def test_the_test_route_reports_an_unreachable_host(api: Recorder) -> None:
    url = f"http://127.0.0.1:{closed_port()}/hooks/{TOKEN}"
    api("POST", "/api/endpoints", {"id": "down", "name": "Down", "url": url})
    status, result = api("POST", "/api/endpoints/down/test")
    assert status == 200
    assert result["allowed"] is True and result["reachable"] is False
    assert result["message"].startswith("no answer: ConnectError")


def test_the_test_route_on_other_schemes_and_refused_addresses(
        api: Recorder, services: Services) -> None:
    api("POST", "/api/endpoints", {"id": "tg", "name": "TG", "url": f"tgram://{TOKEN}/1"})
    status, result = api("POST", "/api/endpoints/tg/test")
    assert status == 200 and result["reachable"] is None and result["allowed"] is True
    # allowed when saved, refused now (the operator turned loopback off since)
    api("POST", "/api/endpoints", {"id": "lo", "name": "Lo",
                                   "url": f"http://127.0.0.1:9/{TOKEN}"})
    services.settings.outbound_allow_loopback = False
    status, result = api("POST", "/api/endpoints/lo/test")
    assert status == 200 and result["allowed"] is False and "loopback" in result["message"]
    assert api("POST", "/api/endpoints/ghost/test")[0] == 404

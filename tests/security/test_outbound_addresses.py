"""Outbound URLs on both paths that call them: an n8n webhook (saved, then triggered by
a job) and a delivery endpoint (saved, then sent to). Private, shared (CGNAT),
link-local, cloud-metadata, unique-local and IPv4-mapped addresses are refused, so is
loopback (here not allowed) in every notation `inet_aton` reads, whether the URL names
the address or a host resolving to it; and a name that resolves to a public address
when checked and to a refused one when connected (DNS rebinding) reaches nothing.

The names resolve through a fake resolver; any connection but loopback is refused,
so a missed check cannot reach a real network; a recording server on loopback is the
target a missed loopback check would reach. (`tests/unit/test_outbound.py` checks the
address rules themselves.)"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from metric_stream.api.app import build_api
from metric_stream.bootstrap import Services, build_services
from metric_stream.collectors import CollectRequest
from metric_stream.errors import Forbidden
from metric_stream.models import KpiDefinition, N8nSource
from metric_stream.models.delivery import DeliveryEndpoint
from metric_stream.models.job import Job, KpiStatus
from metric_stream.models.kpi import CollectorSource
from metric_stream.services.collect import collect_kpi
from metric_stream.services.outbound import check_outbound_url
from metric_stream.settings import Settings
from tests.delivery_fakes import FakeHttpServer, Reply
from tests.security.conftest import ADMIN_KEY, InProcess, Seeded, keyed_settings
from tests.security.launch import guarded_connects

PUBLIC = "93.184.216.34"
REFUSED_ADDRESSES = [
    "10.0.0.1", "10.255.255.254", "172.16.0.1", "172.31.255.254", "192.168.1.10",
    "100.64.0.1", "100.127.255.254",  # shared address space (RFC 6598, CGNAT)
    "169.254.1.1", "169.254.169.254", "100.100.100.200",
    "fd00:ec2::254", "fd12:3456:789a::1", "fc00::1", "fe80::1",
    "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::ffff:127.0.0.1",
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    "127.0.0.1", "127.8.9.10", "::1", "0.0.0.0",  # noqa: S104 (a target, not a bind)
]
LOOPBACK_NOTATIONS = ["2130706433", "0x7f000001", "017700000001", "127.1", "0177.0.0.1",
                      "0x7f.1"]


@dataclass
class FakeDns:
    """`socket.getaddrinfo` for the test's names: each maps to an address, or to one
    address when a check asks and another when a connection does (a rebinding name
    with a zero TTL), or to one address the first n times and another after (a name
    whose owner flips it); other hosts go to the real resolver (IP literals, inet_aton
    notations, localhost)."""

    real: Any
    names: dict[str, str] = field(default_factory=dict)
    rebinding: dict[str, tuple[str, str]] = field(default_factory=dict)
    flipping: dict[str, tuple[str, int, str]] = field(default_factory=dict)  # first, n, then
    asked: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, host: Any, port: Any, family: int = 0, type: int = 0,
                 proto: int = 0, flags: int = 0) -> list[tuple[Any, ...]]:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name in self.rebinding:
            checked, connected = self.rebinding[name]
            address = checked if _asked_by_a_check() else connected
        elif name in self.flipping:
            first, times, then = self.flipping[name]
            address = first if sum(1 for n, _ in self.asked if n == name) < times else then
        elif name in self.names:
            address = self.names[name]
        else:
            return list(self.real(host, port, family, type, proto, flags))
        self.asked.append((name, address))
        number = int(port) if str(port or "").isdigit() else 0
        if ":" in address:
            return [(socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "",
                     (address, number, 0, 0))]
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "",
                 (address, number))]


_CHECKS = ("metric_stream.services.outbound", "metric_stream.services.admin")


def _asked_by_a_check() -> bool:
    """Whether the resolver is asked by an outbound check (not by a connection)."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_globals.get("__name__") in _CHECKS:
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    fake = FakeDns(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    for name, replacement in guarded_connects().items():
        monkeypatch.setattr(socket.socket, name, replacement)
    return fake


@pytest.fixture
def receiver() -> Iterator[FakeHttpServer]:
    """What a refused URL would reach on loopback: it must record nothing."""
    with FakeHttpServer(Reply(200, {"ok": True})) as server:
        yield server


@pytest.fixture
def strict(seeded_home: Seeded, dns: FakeDns) -> InProcess:
    """The API on a seeded store (retries without waits) whose settings allow neither
    private nor loopback addresses."""
    settings = keyed_settings(seeded_home.home).model_copy(
        update={"outbound_allow_loopback": False})
    return InProcess(seeded_home, build_api(build_services(settings)))


def urls(receiver_port: int) -> list[tuple[str, str]]:
    """(label, URL) for every refused target, as an address and as a name."""
    found = []
    for address in REFUSED_ADDRESSES:
        host = f"[{address}]" if ":" in address else address
        found.append((address, f"http://{host}:{receiver_port}/webhook/x"))
        found.append((f"name -> {address}", f"http://to-{len(found)}.test:{receiver_port}/"
                      f"webhook/x"))
    found += [(f"notation {n}", f"http://{n}:{receiver_port}/webhook/x")
              for n in LOOPBACK_NOTATIONS]
    found.append(("metadata.google.internal", "http://metadata.google.internal/computeMetadata"
                                              "/v1/"))
    return found


def _map_names(dns: FakeDns, targets: list[tuple[str, str]]) -> None:
    from urllib.parse import urlsplit

    for label, url in targets:
        host = urlsplit(url).hostname or ""
        if label.startswith("name -> "):
            dns.names[host] = label.removeprefix("name -> ")
    dns.names["metadata.google.internal"] = "169.254.169.254"


ADMIN = {"authorization": f"Bearer {ADMIN_KEY}", "content-type": "application/json"}


def test_every_refused_target_is_refused_when_saved(strict: InProcess, dns: FakeDns,
                                                    receiver: FakeHttpServer) -> None:
    targets = urls(receiver.port)
    _map_names(dns, targets)
    settings = Settings(backend="embedded", outbound_allow_loopback=False)
    for label, url in targets:
        with pytest.raises(Forbidden):
            check_outbound_url(url, settings)
        kpi = {"id": "n8n-probe", "name": "probe", "kpiType": "price",
               "source": {"kind": "n8n", "webhookUrl": url}}
        saved = strict.call("POST", "/api/kpis", ADMIN, json.dumps(kpi).encode())
        assert saved.status == 403, (label, saved.body)
        assert json.loads(saved.body)["error"]["field"] == "source.webhookUrl"
        endpoint = {"id": "probe", "name": "probe", "url": url}
        saved = strict.call("POST", "/api/endpoints", ADMIN, json.dumps(endpoint).encode())
        assert saved.status == 403, (label, saved.body)
    assert receiver.requests == []


def test_an_n8n_trigger_reaches_no_refused_target(strict: InProcess, dns: FakeDns,
                                                  receiver: FakeHttpServer) -> None:
    """Entries saved when the rules or the names said otherwise: the trigger checks
    again, and the job fails the KPI with the reason."""
    targets = urls(receiver.port)
    _map_names(dns, targets)
    services = strict.api.services
    for index, (_, url) in enumerate(targets):
        services.registry.kpis.create(KpiDefinition(
            id=f"n8n-{index}", name=f"n8n {index}", kpi_type="price",
            source=N8nSource(webhook_url=url)))
    ids = [f"n8n-{i}" for i in range(len(targets))]
    answer = strict.call("POST", "/api/jobs", ADMIN, json.dumps({"kpis": ids}).encode())
    assert answer.status == 201, answer.body
    triggers = {t["entryId"]: t for t in json.loads(answer.body)["triggers"]}
    for index, (label, _) in enumerate(targets):
        trigger = triggers[f"n8n-{index}"]
        assert not trigger["ok"], (label, trigger)
        assert "resolves to" in trigger["detail"] or "cannot be resolved" in trigger["detail"], (
            label, trigger)
    assert receiver.requests == []


def test_a_delivery_reaches_no_refused_target(strict: InProcess, dns: FakeDns,
                                              receiver: FakeHttpServer) -> None:
    targets = urls(receiver.port)
    _map_names(dns, targets)
    services = strict.api.services
    for index, (label, url) in enumerate(targets):
        services.registry.endpoints.create(DeliveryEndpoint(id=f"hook-{index}",
                                                            name=label, url=url))
        answer = strict.call("POST", f"/api/endpoints/hook-{index}/test", ADMIN)
        assert answer.status == 200, answer.body
        outcome = json.loads(answer.body)
        assert not outcome["delivered"], (label, outcome)
        # (aiohttp does not even take the other notations as a URL)
        assert "refused" in outcome["error"] or (
            label.startswith("notation") and "not a canonical" in outcome["error"]), (
            label, outcome)
    assert receiver.requests == []


def test_a_rebinding_name_gets_no_n8n_trigger_through(strict: InProcess, dns: FakeDns,
                                                      receiver: FakeHttpServer) -> None:
    """Public when checked (saved, and again when triggered), loopback when connected:
    the trigger must go to the address checked, or nowhere."""
    dns.rebinding["rebind.test"] = (PUBLIC, "127.0.0.1")
    url = f"http://rebind.test:{receiver.port}/webhook/x"
    kpi = {"id": "n8n-rebind", "name": "rebind", "kpiType": "price",
           "source": {"kind": "n8n", "webhookUrl": url}}
    saved = strict.call("POST", "/api/kpis", ADMIN, json.dumps(kpi).encode())
    assert saved.status == 201, saved.body
    answer = strict.call("POST", "/api/jobs", ADMIN, b'{"kpis": ["n8n-rebind"]}')
    assert answer.status == 201, answer.body
    trigger = json.loads(answer.body)["triggers"][0]
    assert not trigger["ok"], trigger
    assert receiver.requests == [], "the trigger was sent to the rebound address"
    assert ("rebind.test", PUBLIC) in dns.asked


def test_a_rebinding_name_gets_no_delivery_through(strict: InProcess, dns: FakeDns,
                                                   receiver: FakeHttpServer) -> None:
    dns.rebinding["rebind.test"] = (PUBLIC, "127.0.0.1")
    endpoint = {"id": "rebind", "name": "rebind",
                "url": f"http://rebind.test:{receiver.port}/hook"}
    saved = strict.call("POST", "/api/endpoints", ADMIN, json.dumps(endpoint).encode())
    assert saved.status == 201, saved.body
    answer = strict.call("POST", "/api/endpoints/rebind/test", ADMIN)
    outcome = json.loads(answer.body)
    assert not outcome["delivered"] and "refused" in outcome["error"], outcome
    assert ("rebind.test", "127.0.0.1") in dns.asked  # asked when connecting, and refused
    assert receiver.requests == []


def test_a_flipping_name_gets_no_apprise_delivery_through(strict: InProcess, dns: FakeDns,
                                                          receiver: FakeHttpServer) -> None:
    """Apprise (here its form service) checks the name before sending; the name flips to
    loopback right after: the connection Apprise opens is checked again, and refused."""
    dns.names["flip.test"] = PUBLIC
    endpoint = {"id": "flip", "name": "flip", "url": f"form://flip.test:{receiver.port}/hook"}
    saved = strict.call("POST", "/api/endpoints", ADMIN, json.dumps(endpoint).encode())
    assert saved.status == 201, saved.body
    del dns.names["flip.test"]
    dns.asked.clear()
    dns.flipping["flip.test"] = (PUBLIC, 2, "127.0.0.1")  # the channel's check and the URL's
    answer = strict.call("POST", "/api/endpoints/flip/test", ADMIN)
    outcome = json.loads(answer.body)
    assert not outcome["delivered"] and "a loopback address" in outcome["error"], outcome
    assert ("flip.test", "127.0.0.1") in dns.asked  # asked when connecting, and refused
    assert receiver.requests == []


def test_allowing_private_addresses_never_allows_metadata(tmp_path: Path, dns: FakeDns) -> None:
    dns.names["metadata.google.internal"] = "169.254.169.254"
    allowed = Settings(backend="aws", outbound_allow_private=True)
    assert check_outbound_url("http://100.64.1.2/hook", allowed)
    for url in ("http://169.254.169.254/latest/", "http://[fd00:ec2::254]/",
                "http://[::ffff:169.254.169.254]/", "http://metadata.google.internal/",
                "http://100.100.100.200/"):
        with pytest.raises(Forbidden, match="metadata"):
            check_outbound_url(url, allowed)


def test_a_collector_mirror_is_checked_when_saved(strict: InProcess, dns: FakeDns) -> None:
    dns.names["mirror.test"] = "10.1.2.3"
    for url, status in (("http://169.254.169.254/latest", 403), ("http://mirror.test/v3", 403),
                        ("http://127.0.0.1:9/api", 403), ("ftp://mirror.example/v3", 422),
                        (["http://x"], 422)):
        kpi = {"id": "mirror", "name": "mirror", "kpiType": "price",
               "source": {"kind": "collector", "collector": "coingecko-price",
                          "params": {"coin": "bitcoin", "baseUrl": url}}}
        saved = strict.call("POST", "/api/kpis", ADMIN, json.dumps(kpi).encode())
        assert saved.status == status, (url, saved.body)
        assert json.loads(saved.body)["error"]["field"] == "source.params.baseUrl", saved.body
    assert strict.call("GET", "/api/kpis/mirror", ADMIN).status == 404


def _collect_from(services: Services, url: str) -> dict[str, Any]:
    """Collect a KPI whose mirror is `url` (stored as it was saved before the rules or
    the name changed), and the failure the job recorded."""
    kpi = KpiDefinition(id="mirrored", name="mirrored", kpi_type="price", source=CollectorSource(
        collector="coingecko-price", params={"coin": "bitcoin", "baseUrl": url}))
    now = services.clock.now()
    services.registry.kpis.create(kpi.stamped(now))
    services.jobs.create(Job(trace_id="mirror-trace", created_at=now, kpi_ids=["mirrored"]))
    with httpx.Client(timeout=5) as http:
        collect_kpi(services, CollectRequest("mirror-trace", now, kpi), http,
                    sleep=lambda _: None)
    state = services.jobs.require("mirror-trace").state_of("mirrored")
    assert state.status is KpiStatus.FAILED and state.error is not None, state
    return dict(state.error)


@pytest.fixture
def strict_services(seeded_home: Seeded, dns: FakeDns) -> Services:
    return build_services(keyed_settings(seeded_home.home).model_copy(
        update={"outbound_allow_loopback": False}))


def test_a_collector_mirror_is_checked_when_collected(strict_services: Services,
                                                      receiver: FakeHttpServer) -> None:
    error = _collect_from(strict_services, f"http://127.0.0.1:{receiver.port}/api/v3")
    assert error["code"] == "refused_url" and "loopback" in error["message"], error
    assert receiver.requests == []


def test_a_collector_mirror_cannot_redirect_to_metadata(seeded_home: Seeded, dns: FakeDns,
                                                        receiver: FakeHttpServer) -> None:
    """The mirror (loopback, allowed here) answers with a redirect to the metadata
    service: the redirect is checked when it connects, and refused."""
    services = build_services(keyed_settings(seeded_home.home))
    receiver.script(*[Reply(302, b"", {"location": "http://169.254.169.254/latest/meta-data"})
                      for _ in range(4)])
    error = _collect_from(services, f"http://127.0.0.1:{receiver.port}/api/v3")
    assert error["code"] == "refused_url" and "metadata" in error["message"], error
    assert len(receiver.requests) == 1  # asked once, not retried


def test_a_rebinding_collector_mirror_reaches_nothing(strict_services: Services, dns: FakeDns,
                                                      receiver: FakeHttpServer) -> None:
    dns.rebinding["rebind.test"] = (PUBLIC, "127.0.0.1")
    error = _collect_from(strict_services, f"http://rebind.test:{receiver.port}/api/v3")
    assert error["code"] in ("retries_exhausted", "request_error"), error
    assert receiver.requests == []
    assert ("rebind.test", "127.0.0.1") not in dns.asked  # connected to the address checked

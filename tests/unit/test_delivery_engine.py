"""The delivery engine against a real HTTP receiver on 127.0.0.1: retries and their
waits, Retry-After, gone and non-retryable answers, timeouts, bounds on what is in
flight, Standard Webhooks signatures, redirects never followed, huge answers never read
whole, the outbound check at connect time (DNS rebinding), channel URLs, Apprise."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import socket
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from metric_stream.delivery.base import (
    MAX_RETRY_AFTER_S,
    Channel,
    Outgoing,
    SendContext,
    SendResult,
    http_result,
    retry_after_seconds,
)
from metric_stream.delivery.channels import parse_channel
from metric_stream.delivery.engine import Engine, Job, Outcome, run_jobs
from metric_stream.delivery.safety import RefusedAddress, SafeResolver
from metric_stream.delivery.webhook import WebhookChannel
from metric_stream.errors import InvalidInput
from metric_stream.models.config import RetryPolicy
from metric_stream.settings import Settings
from metric_stream.signing import new_secret, sign
from tests.delivery_sink import APPRISE_IMPORT, Sink, running_sink

TRACE = "trace_20261129_060000_abcdef"
TIMESTAMP = 1_796_000_000
MESSAGES: dict[str, Any] = {
    "webhook": {"type": "metric-stream.report", "version": 1, "traceId": TRACE,
                "headline": "BTC ↑ 2.1 % — Fear & Greed 71", "alerts": [], "kpiCount": 3},
    "email": {"subject": "Daily Index Report 2026-11-29", "text": "BTC up 2.1 %."},
}
NO_RETRY = RetryPolicy(retries=0, delays_s=[])
THREE_RETRIES = RetryPolicy(retries=3, delays_s=[1, 2, 4])


@pytest.fixture
def sink() -> Iterator[Sink]:
    with running_sink() as running:
        yield running


def job(endpoint_id: str, url: str, **changes: Any) -> Job:
    out = Outgoing(trace_id=TRACE, endpoint_id=endpoint_id, messages=MESSAGES,
                   timestamp=TIMESTAMP, **changes)
    return Job(out, parse_channel(url))


class Run:
    """One engine run: its outcomes by endpoint, and every wait it asked for."""

    def __init__(self, jobs: list[Job], *, settings: Settings | None = None,
                 policy: RetryPolicy = NO_RETRY, engine: type[Engine] = Engine,
                 real_sleep: bool = False, **options: Any) -> None:
        self.waits: list[float] = []
        self.outcomes: dict[str, Outcome] = {}

        async def sleep(seconds: float) -> None:
            self.waits.append(seconds)
            if real_sleep:
                await asyncio.sleep(seconds)

        options.setdefault("jitter", 0.0)
        self.engine = engine(settings or Settings(), policy, sleep=sleep, **options)
        started = time.monotonic()
        self.sent = run_jobs(self.engine, jobs, self._done)
        self.seconds = time.monotonic() - started

    def _done(self, outcome: Outcome) -> None:
        self.outcomes[outcome.endpoint_id] = outcome

    def __getitem__(self, endpoint_id: str) -> Outcome:
        return self.outcomes[endpoint_id]


def run(url: str, **options: Any) -> tuple[Outcome, list[float]]:
    done = Run([job("e", url)], **options)
    return done["e"], done.waits


# ---------------------------------------------------------------- retries and waits
def test_a_failing_send_is_retried_with_the_policy_waits(sink: Sink) -> None:
    outcome, waits = run(sink.on("/flaky", fail=2), policy=THREE_RETRIES)
    assert outcome.result.ok and outcome.result.status == 200
    assert outcome.attempts == 3 and waits == [1.0, 2.0]
    assert len(sink.hits("/flaky")) == 3


def test_waits_vary_by_the_jitter_and_the_tries_end_with_the_policy(sink: Sink) -> None:
    outcome, waits = run(sink.on("/down", status=500, body=b"upstream exploded"),
                         policy=THREE_RETRIES, jitter=0.5)
    assert not outcome.result.ok and outcome.result.retryable
    assert outcome.result.status == 500 and outcome.result.error == "HTTP 500: upstream exploded"
    assert outcome.attempts == 4 and len(sink.hits("/down")) == 4
    assert len(waits) == 3
    for wait, delay in zip(waits, THREE_RETRIES.delays_s, strict=True):
        assert delay * 0.5 <= wait <= delay * 1.5


def test_retry_after_is_honoured_when_longer_than_the_policy_wait(sink: Sink) -> None:
    outcome, waits = run(sink.on("/busy", fail=1, fail_status=429, retry_after="7"),
                         policy=THREE_RETRIES)
    assert outcome.result.ok and outcome.attempts == 2
    assert waits == [7.0]
    outcome, waits = run(sink.on("/soon", fail=1, fail_status=503, retry_after="0"),
                         policy=RetryPolicy(retries=1, delays_s=[3]))
    assert outcome.result.ok and waits == [3.0]  # the longer of the two
    outcome, waits = run(sink.on("/greedy", fail=1, fail_status=429, retry_after="86400"),
                         policy=RetryPolicy(retries=1, delays_s=[1]))
    assert outcome.result.ok and waits == [MAX_RETRY_AFTER_S]  # capped


def test_retry_after_values() -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= (retry_after_seconds(later) or 0) <= 30
    assert retry_after_seconds("1.5") == 1.5
    assert retry_after_seconds("-3") == 0.0
    assert retry_after_seconds("99999") == MAX_RETRY_AFTER_S
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None
    assert http_result(400, b"no", retry_after="5").retry_after is None  # not retryable


def test_gone_stops_at_once(sink: Sink) -> None:
    outcome, waits = run(sink.on("/gone", status=410, body=b"webhook deleted"),
                         policy=THREE_RETRIES)
    assert outcome.result.gone and not outcome.result.ok
    assert outcome.result.error == "HTTP 410 Gone: webhook deleted"
    assert outcome.attempts == 1 and waits == [] and len(sink.hits("/gone")) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422])
def test_a_client_error_is_not_retried(sink: Sink, status: int) -> None:
    outcome, waits = run(sink.on("/bad", status=status, body=b"bad payload"),
                         policy=THREE_RETRIES)
    assert not outcome.result.ok and not outcome.result.retryable and not outcome.result.gone
    assert outcome.result.error == f"HTTP {status}: bad payload"
    assert outcome.attempts == 1 and waits == [] and len(sink.hits("/bad")) == 1


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504])
def test_timeouts_throttling_and_server_errors_are_retried(sink: Sink, status: int) -> None:
    outcome, _ = run(sink.on("/retry", fail=1, fail_status=status), policy=THREE_RETRIES)
    assert outcome.result.ok and outcome.attempts == 2


def test_a_hanging_service_times_out_and_is_retried(sink: Sink) -> None:
    outcome, waits = run(sink.on("/hang", hang=True), timeout_s=0.2,
                         policy=RetryPolicy(retries=1, delays_s=[0]))
    assert not outcome.result.ok and outcome.result.retryable
    assert outcome.result.error == "no answer: timed out" and outcome.result.status is None
    assert outcome.attempts == 2 and waits == [0.0] and len(sink.hits("/hang")) == 2
    assert 0.4 <= outcome.elapsed_s < 2


def test_a_slow_answer_within_the_timeout_is_sent(sink: Sink) -> None:
    outcome, _ = run(sink.on("/slow", delay=0.3), timeout_s=2)
    assert outcome.result.ok and outcome.attempts == 1 and outcome.elapsed_s >= 0.3


def test_a_closed_port_is_retried_with_a_reason(sink: Sink) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    outcome, waits = run(f"http://127.0.0.1:{port}/x", policy=RetryPolicy(retries=1,
                                                                         delays_s=[0]))
    assert not outcome.result.ok and outcome.result.retryable
    assert outcome.attempts == 2 and waits == [0.0]
    assert (outcome.result.error or "").startswith("no answer: ClientConnectorError")


# ---------------------------------------------------------------- redirects and bodies
@pytest.mark.parametrize("target", ["/landed", "http://169.254.169.254/latest/meta-data/"])
def test_redirects_are_never_followed(sink: Sink, target: str) -> None:
    location = sink.base + target if target.startswith("/") else target
    outcome, waits = run(sink.on("/moved", status=302, location=location),
                         policy=THREE_RETRIES)
    assert not outcome.result.ok and not outcome.result.retryable
    assert outcome.result.status == 302
    assert outcome.result.error == "HTTP 302: redirects are not followed"
    assert outcome.attempts == 1 and waits == []
    assert sink.paths() == {"/moved": 1}


@pytest.mark.parametrize("status", [200, 500])
def test_a_huge_answer_is_not_read_whole(sink: Sink, status: int) -> None:
    size = 50_000_000
    outcome, _ = run(sink.on("/huge", status=status, stream_bytes=size))
    assert outcome.result.ok is (status == 200)
    assert len(outcome.result.error or "") <= 300
    assert outcome.elapsed_s < 2
    assert sink.streamed < size // 5  # the client hung up long before the end


# ---------------------------------------------------------------- bounds
def test_no_more_than_concurrency_sends_are_in_flight(sink: Sink) -> None:
    url = sink.on("/slow", delay=0.1)
    done = Run([job(f"e{i}", url) for i in range(9)], concurrency=3, per_host=10)
    assert done.sent == 9
    assert 1 < sink.peak_total <= 3


def test_no_more_than_per_host_sends_go_to_one_host(sink: Sink) -> None:
    sink.on("/slow", delay=0.1)
    hosts = ["127.0.0.1", "localhost"]
    jobs = [job(f"{h}-{i}", f"http://{h}:{sink.port}/slow") for h in hosts for i in range(5)]
    done = Run(jobs, concurrency=10, per_host=2)
    assert done.sent == 10
    assert set(sink.peak_by_host) == set(hosts)
    assert all(peak <= 2 for peak in sink.peak_by_host.values()), sink.peak_by_host
    assert 2 < sink.peak_total <= 4  # the bound is per host, not overall


def test_a_slot_is_not_held_while_waiting_to_retry(sink: Sink) -> None:
    waiting = sink.on("/wait", fail=1, fail_status=503)
    quick = sink.on("/quick")
    done = Run([job("waiting", waiting), job("quick", quick)], concurrency=1,
               policy=RetryPolicy(retries=1, delays_s=[0.3]), real_sleep=True)
    assert done.sent == 2
    assert [r.path for r in sink.received] == ["/wait", "/quick", "/wait"]


def test_rate_limited_channels_are_spaced(sink: Sink) -> None:
    url = sink.on("/paced")
    done = Run([job(f"e{i}", url) for i in range(5)], rate_limits={"webhook": 25.0})
    assert done.sent == 5 and done.seconds >= 4 / 25 * 0.9


class Exploding(Channel):
    kind = "exploding"

    @property
    def host(self) -> str:
        return "nowhere"

    async def send(self, out: Outgoing, ctx: SendContext) -> SendResult:
        raise RuntimeError("secret-token-in-a-bug")


def test_a_broken_channel_or_url_does_not_sink_the_others(sink: Sink) -> None:
    out = Outgoing(trace_id=TRACE, endpoint_id="broken", messages=MESSAGES)
    unusable = Outgoing(trace_id=TRACE, endpoint_id="unusable", messages=MESSAGES)
    done = Run([Job(out, Exploding()), job("fine", sink.on("/fine")),
                Job(unusable, None, "the endpoint URL cannot be used: no scheme")],
               policy=THREE_RETRIES)
    assert done.sent == 1 and done["fine"].result.ok
    broken = done["broken"]
    assert broken.attempts == 1 and not broken.result.retryable
    assert broken.result.error == "exploding failed: RuntimeError"  # the message may hold secrets
    assert done["unusable"].attempts == 0
    assert done["unusable"].result.error == "the endpoint URL cannot be used: no scheme"


# ---------------------------------------------------------------- the webhook message
def expected_signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(digest.digest()).decode()


def test_webhooks_carry_the_summary_signed_per_standard_webhooks(sink: Sink) -> None:
    secret = new_secret()
    url = sink.on("/signed", fail=1)
    done = Run([job("hook", url, signing_secret=secret), job("plain", sink.on("/plain"))],
               policy=RetryPolicy(retries=1, delays_s=[0]))
    assert done.sent == 2
    first, retry = sink.hits("/signed")
    for received in (first, retry):
        headers = received.headers
        assert headers["webhook-id"] == f"{TRACE}:hook"  # the same on every retry
        assert headers["webhook-timestamp"] == str(TIMESTAMP)
        assert headers["content-type"] == "application/json"
        signature = sign(secret, headers["webhook-id"], TIMESTAMP, received.body)
        assert headers["webhook-signature"] == signature
        assert signature == expected_signature(secret, f"{TRACE}:hook", TIMESTAMP,
                                               received.body)
        assert json.loads(received.body) == MESSAGES["webhook"]
    assert first.body == retry.body
    (plain,) = sink.hits("/plain")
    assert "webhook-signature" not in plain.headers
    assert plain.headers["webhook-id"] == f"{TRACE}:plain"
    assert json.loads(plain.body) == MESSAGES["webhook"]


def test_a_test_send_and_an_alert_have_their_own_body_and_id(sink: Sink) -> None:
    url = sink.on("/hook")
    done = Run([job("test", url, test=True), job("ops", url, kind="alert-disabled")])
    assert done.sent == 2
    bodies = {r.headers["webhook-id"]: json.loads(r.body) for r in sink.hits("/hook")}
    assert bodies[f"{TRACE}:test"]["type"] == "metric-stream.test"
    assert bodies[f"{TRACE}:alert-disabled:ops"] == MESSAGES["webhook"]


# ---------------------------------------------------------------- outbound safety
def test_loopback_is_refused_where_it_is_not_allowed(sink: Sink) -> None:
    url = f"http://localhost:{sink.port}/private"
    for settings in (Settings(backend="aws"), Settings(outbound_allow_loopback=False)):
        outcome, waits = run(url, settings=settings, policy=THREE_RETRIES)
        assert not outcome.result.ok and not outcome.result.retryable
        assert outcome.attempts == 1 and waits == []
        assert (outcome.result.error or "").startswith("localhost is refused: ")
        assert "loopback address" in (outcome.result.error or "")
    assert sink.received == []
    allowed, _ = run(url, settings=Settings(backend="aws", outbound_allow_loopback=True))
    assert allowed.result.ok and len(sink.hits("/private")) == 1


@pytest.mark.parametrize(("url", "reason"), [
    ("http://127.0.0.1:{port}/literal", "a loopback address"),
    ("http://10.20.30.40:{port}/literal", "a private or link-local address"),
    ("http://169.254.169.254/latest/meta-data/", "a cloud metadata address"),
    ("http://[::ffff:169.254.169.254]/latest/meta-data/", "a cloud metadata address"),
])
def test_an_ip_literal_is_checked_too(sink: Sink, url: str, reason: str) -> None:
    # aiohttp connects to a literal without asking the resolver: checked before connecting
    outcome, waits = run(url.format(port=sink.port), settings=Settings(backend="aws"),
                         policy=THREE_RETRIES, timeout_s=0.5)
    assert not outcome.result.ok and not outcome.result.retryable
    assert outcome.attempts == 1 and waits == []
    assert reason in (outcome.result.error or "")
    assert sink.received == []


class FixedResolver(AbstractResolver):
    """DNS as a test wants it: each name answers the given addresses."""

    def __init__(self, answers: Mapping[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        self.asked.append(host)
        return [ResolveResult(hostname=host, host=address, port=port,
                              family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                              proto=0, flags=socket.AI_NUMERICHOST)
                for address in self.answers[host]]

    async def close(self) -> None:
        pass


DNS = FixedResolver({
    "sink.example.com": ["127.0.0.1"],
    "rebound.example.com": ["169.254.169.254"],
    "intranet.example.com": ["10.20.30.40"],
    "mixed.example.com": ["10.20.30.40", "127.0.0.1", "93.184.215.14"],
    "six.example.com": ["::ffff:169.254.169.254", "fd00:ec2::254"],
})


class RebindingEngine(Engine):
    """The engine with its connections resolved by `DNS` (through SafeResolver)."""

    def session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(resolver=SafeResolver(self.settings, inner=DNS),
                                         limit=self.concurrency, limit_per_host=self.per_host)
        return aiohttp.ClientSession(connector=connector)


def test_the_address_connected_is_the_address_checked(sink: Sink) -> None:
    sink.on("/hook")
    allowed, _ = run(f"http://sink.example.com:{sink.port}/hook", engine=RebindingEngine)
    assert allowed.result.ok  # the stub DNS is used: it reached the sink
    assert sink.hits("/hook")[0].headers["host"] == f"sink.example.com:{sink.port}"

    everything = Settings(outbound_allow_private=True, outbound_allow_loopback=True)
    outcome, waits = run(f"http://rebound.example.com:{sink.port}/hook", settings=everything,
                         engine=RebindingEngine, policy=THREE_RETRIES)
    assert not outcome.result.ok and not outcome.result.retryable
    assert outcome.attempts == 1 and waits == []
    assert outcome.result.error == ("rebound.example.com is refused: 169.254.169.254 is a "
                                    "cloud metadata address")

    outcome, _ = run(f"http://intranet.example.com:{sink.port}/hook", engine=RebindingEngine)
    assert not outcome.result.ok and not outcome.result.retryable
    assert "10.20.30.40 is a private or link-local address" in (outcome.result.error or "")
    assert len(sink.hits("/hook")) == 1


def test_the_resolver_keeps_only_the_addresses_allowed() -> None:
    async def resolve(host: str, settings: Settings) -> list[str]:
        resolver = SafeResolver(settings, inner=DNS)
        return [r["host"] for r in await resolver.resolve(host, 443)]

    assert asyncio.run(resolve("mixed.example.com", Settings(backend="aws"))) == [
        "93.184.215.14"]
    assert asyncio.run(resolve("mixed.example.com", Settings())) == [
        "127.0.0.1", "93.184.215.14"]
    with pytest.raises(RefusedAddress, match=r"six\.example\.com is refused: .*metadata"):
        asyncio.run(resolve("six.example.com", Settings(outbound_allow_private=True)))


# ---------------------------------------------------------------- channel URLs
@pytest.mark.parametrize(("url", "message"), [
    ("no scheme at all", "must start with a scheme"),
    ("http://", "must be a webhook URL with a host"),
    ("jsons:///path-only", "must be a webhook URL with a host"),
    ("https://example.com:99999/hook", "has an invalid port"),
    ("foo://x", "is not a URL metric-stream or Apprise can deliver to"),
    ("gotify://host-without-token", "is not a URL metric-stream or Apprise can deliver to"),
])
@APPRISE_IMPORT
def test_unusable_urls_are_refused_with_a_reason(url: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as raised:
        parse_channel(url)
    assert raised.value.field == "url"


@pytest.mark.parametrize(("url", "sent_to"), [
    ("https://example.com/hook?x=1", "https://example.com/hook?x=1"),
    ("http://example.com", "http://example.com/"),
    ("json://example.com:8080/in", "http://example.com:8080/in"),
    ("jsons://example.com/in#fragment", "https://example.com/in"),
])
def test_webhook_urls(url: str, sent_to: str) -> None:
    channel = parse_channel(url)
    assert isinstance(channel, WebhookChannel) and channel.kind == "webhook"
    assert channel.url == sent_to and channel.host == "example.com"
    assert "example.com/" not in repr(channel)  # the URL may hold a token: not in logs


# ---------------------------------------------------------------- Apprise
@APPRISE_IMPORT
def test_an_apprise_service_is_delivered_to(sink: Sink) -> None:
    url = f"ntfy://127.0.0.1:{sink.port}/daily-reports"
    channel = parse_channel(url)
    assert channel.kind == "apprise" and channel.host == "127.0.0.1"
    done = Run([Job(Outgoing(trace_id=TRACE, endpoint_id="ntfy", messages=MESSAGES,
                             report_url="https://reports.example.com/r.pdf"), channel)])
    assert done.sent == 1 and done["ntfy"].attempts == 1
    (received,) = sink.hits("/")  # ntfy: a JSON POST to the server's root
    assert received.method == "POST"
    payload = json.loads(received.body)
    assert payload["topic"] == "daily-reports"
    assert payload["title"] == MESSAGES["email"]["subject"]
    assert payload["message"] == ("BTC up 2.1 %.\n\n"
                                  "Report: https://reports.example.com/r.pdf")


@APPRISE_IMPORT
def test_an_apprise_failure_is_retried_with_apprises_reason(sink: Sink) -> None:
    sink.on("/", status=500, body=b'{"code": 50001, "error": "topic storage full"}')
    outcome, waits = run(f"ntfy://127.0.0.1:{sink.port}/daily",
                         policy=RetryPolicy(retries=1, delays_s=[0]))
    assert not outcome.result.ok and outcome.result.retryable
    assert outcome.attempts == 2 and waits == [0.0] and len(sink.hits("/")) == 2
    assert (outcome.result.error or "").startswith("ntfy: ")
    assert "topic storage full" in (outcome.result.error or "")


@APPRISE_IMPORT
def test_an_apprise_service_on_a_refused_address_is_not_called(sink: Sink) -> None:
    outcome, waits = run(f"ntfy://127.0.0.1:{sink.port}/daily",
                         settings=Settings(backend="aws"), policy=THREE_RETRIES)
    assert not outcome.result.ok and not outcome.result.retryable and waits == []
    assert "loopback address" in (outcome.result.error or "")
    assert sink.received == []


@APPRISE_IMPORT
def test_apprise_does_not_follow_redirects(sink: Sink) -> None:
    sink.on("/", status=302, location=sink.base + "/landed")
    outcome, _ = run(f"ntfy://127.0.0.1:{sink.port}/daily")
    assert sink.hits("/landed") == []
    assert not outcome.result.ok

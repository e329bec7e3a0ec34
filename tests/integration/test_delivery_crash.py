"""A delivery stage SIGKILLed mid-delivery: after its sends' lease lapses, a re-run sends
to every endpoint it had not sent to; what was recorded as sent is not sent again; the
one send that was in flight may arrive twice, with the same `webhook-id` both times."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from metric_stream.bootstrap import Services, build_services
from metric_stream.clock import ManualClock
from metric_stream.collectors.demo import demo_registry, seed_history
from metric_stream.models.config import DeliveryConfig, RetryPolicy
from metric_stream.models.delivery import DeliveryEndpoint, DeliveryStatus
from metric_stream.services import admin, cycle
from metric_stream.services.delivery import FLUSH_EVERY, deliver
from metric_stream.services.stages import default_workers
from metric_stream.settings import Settings
from tests.delivery_sink import Sink, running_sink

pytestmark = pytest.mark.slow

ENDPOINTS = 20
CONCURRENCY = 2

SENDER = r"""
import sys
from metric_stream.bootstrap import build_services
from metric_stream.services import cycle, delivery
from metric_stream.services.stages import default_workers
from metric_stream.settings import Settings

home, flush_every = sys.argv[1], int(sys.argv[2])
delivery.FLUSH_EVERY = flush_every
services = build_services(Settings(home=home))
print("delivering", flush=True)
print(cycle.consume(services, "delivery", default_workers(), wait_seconds=0), flush=True)
"""


def packaged_job(services: Services) -> str:
    entries = demo_registry(3)
    for entry in entries:
        services.registry.kpis.create(entry)
    seed_history(services, entries, 30, (services.clock.now() - timedelta(days=1)).date())
    with httpx.Client() as http:
        job, _ = cycle.start_job(services, cycle.Triggers(http), demo=True)
    workers = default_workers()
    for queue in ("analysis", "packaging"):
        cycle.consume(services, queue, workers, wait_seconds=0)
    return job.trace_id


def prepare(home: Path, sink: Sink) -> str:
    services = build_services(Settings(home=home))
    services.init()
    config = services.config.get()
    services.config.put(config.model_copy(update={
        "retry": config.retry.model_copy(update={
            "delivery": RetryPolicy(retries=1, delays_s=[0])}),
        "delivery": DeliveryConfig(concurrency=CONCURRENCY, timeout_s=5, jitter=0),
    }), services.clock.now())
    trace_id = packaged_job(services)
    for i in range(ENDPOINTS):
        admin.create_endpoint(services, DeliveryEndpoint(
            id=f"hook-{i:02d}", name=f"Hook {i}", url=sink.on(f"/hook-{i:02d}", delay=0.3)))
    return trace_id


@pytest.mark.parametrize("flush_every", [
    1,
    FLUSH_EVERY,  # the default: outcomes are also written at least every FLUSH_S
])
def test_a_sender_killed_mid_delivery_repeats_at_most_what_was_in_flight(
        tmp_path: Path, flush_every: int) -> None:
    home = tmp_path / "home"
    with running_sink() as sink:
        trace_id = prepare(home, sink)
        sender = subprocess.Popen([sys.executable, "-c", SENDER, str(home), str(flush_every)],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            arrived = sink.wait_for(3 * CONCURRENCY, seconds=30)
            sender.kill()
        finally:
            output, _ = sender.communicate(timeout=30)
        assert arrived and sender.returncode < 0, output

        services = build_services(Settings(home=home))
        records = {r.endpoint_id: r for r in services.deliveries.list(trace_id)}
        assert len(records) == ENDPOINTS  # every send marked before the first went out
        before = sink.paths()
        recorded_sent = {e for e, r in records.items() if r.status is DeliveryStatus.SENT}
        in_flight = {e for e, r in records.items() if r.status is DeliveryStatus.IN_FLIGHT}
        assert recorded_sent | in_flight == set(records)
        assert recorded_sent and in_flight
        assert {f"/{e}" for e in recorded_sent} <= set(before)

        held = deliver(services, trace_id)  # the dead sender's lease has not lapsed
        assert (held.planned, held.skipped) == (0, len(in_flight))
        assert sink.paths() == before

        for path in list(sink.rules):
            sink.on(path)  # answer at once from now on
        later = build_services(Settings(home=home),
                               clock=ManualClock(datetime.now(UTC) + timedelta(minutes=5)))
        run = deliver(later, trace_id)
        assert (run.already_sent, run.sent, run.failed) == (len(recorded_sent),
                                                            len(in_flight), 0)

        received = sink.paths()
        assert set(received) == {f"/hook-{i:02d}" for i in range(ENDPOINTS)}
        assert all(received[f"/{e}"] == 1 for e in recorded_sent)
        twice = [path for path, count in received.items() if count > 1]
        # flushing every outcome: only the sends in flight are repeated; by default the
        # outcomes of the last FLUSH_S (0.25 s: one more round of slow sends) as well
        allowed = CONCURRENCY if flush_every == 1 else 2 * CONCURRENCY
        assert len(twice) <= allowed and all(received[p] == 2 for p in twice)
        for path in twice:
            first, again = sink.hits(path)
            assert first.headers["webhook-id"] == again.headers["webhook-id"]
            assert first.body == again.body
        final = later.deliveries.list(trace_id)
        assert all(r.status is DeliveryStatus.SENT for r in final)

"""Large deliveries split among forked senders: every send reported once, outcomes
back in this process, and a sender that dies leaves its unreported sends failed."""

from __future__ import annotations

import os
from dataclasses import dataclass

from metric_stream.delivery.base import Channel, Outgoing, SendContext, SendResult
from metric_stream.delivery.engine import SHARD_MIN, Engine, Job, Outcome, run_jobs
from metric_stream.models.config import RetryPolicy
from metric_stream.settings import Settings

NO_RETRY = RetryPolicy(retries=0, delays_s=[])


@dataclass(frozen=True)
class Local(Channel):
    """Answers without the network: ok, or (for `die`) ends its process mid-run."""

    die: bool = False
    kind = "local"

    @property
    def host(self) -> str:
        return "local"

    async def send(self, out: Outgoing, ctx: SendContext) -> SendResult:
        if self.die:
            os._exit(3)
        return SendResult(ok=True, status=200)


def jobs(count: int, dying: int | None = None) -> list[Job]:
    return [Job(Outgoing(trace_id="t", endpoint_id=f"e{i:05d}", messages={}),
                Local(die=i == dying)) for i in range(count)]


def test_sends_are_split_among_processes_and_reported_here() -> None:
    seen: list[Outcome] = []
    parent = os.getpid()
    sent = run_jobs(Engine(Settings(), NO_RETRY), jobs(SHARD_MIN + 500),
                    lambda outcome: seen.append(outcome) if os.getpid() == parent else None,
                    processes=3)
    assert sent == SHARD_MIN + 500
    assert sorted(o.endpoint_id for o in seen) == [f"e{i:05d}" for i in range(SHARD_MIN + 500)]
    assert all(o.result.ok and o.attempts == 1 for o in seen)


def test_a_sender_that_dies_leaves_its_unreported_sends_failed() -> None:
    seen: dict[str, Outcome] = {}

    def record(outcome: Outcome) -> None:
        assert outcome.endpoint_id not in seen
        seen[outcome.endpoint_id] = outcome

    sent = run_jobs(Engine(Settings(), NO_RETRY, concurrency=4), jobs(SHARD_MIN, dying=1),
                    record, processes=2)
    assert len(seen) == SHARD_MIN  # every send has an outcome, none twice
    lost = [o for o in seen.values() if not o.result.ok]
    assert lost and sent == SHARD_MIN - len(lost)
    assert all(o.result.retryable and "stopped before it reported" in (o.result.error or "")
               for o in lost)
    assert seen["e00000"].result.ok  # the other sender's shard is untouched


def test_small_deliveries_stay_in_this_process() -> None:
    pids: set[int] = set()
    run_jobs(Engine(Settings(), NO_RETRY), jobs(10), lambda _: pids.add(os.getpid()),
             processes=4)
    assert pids == {os.getpid()}

"""Sends many messages at once: one asyncio task per endpoint, bounded overall, per host
and (for services with known limits) by rate; each with its retries.

- Retries: `1 + policy.retries` tries, waiting `policy.delay(n)` ± `jitter` before try
  n+1, or what the service asked (`Retry-After`, Telegram's `retry_after`) when longer.
  A slot is only held while a request is in flight, never while waiting.
- A result that is not retryable (4xx, a refused address) or says the address is gone
  (410) stops at once.
- Connections: one aiohttp session with keep-alive, `limit` / `limit_per_host`, the
  `SafeResolver` (outbound checks on the address connected), redirects never followed.
"""

from __future__ import annotations

import asyncio
import gc
import os
import pickle
import random
import struct
import time
import warnings
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import aiohttp

from metric_stream.delivery.base import Channel, Outgoing, SendContext, SendResult, short
from metric_stream.delivery.safety import SafeResolver
from metric_stream.logs import current_trace_id, job_context
from metric_stream.models.config import RetryPolicy
from metric_stream.settings import Settings

RATE_LIMITS: dict[str, float] = {"telegram": 30.0, "discord": 40.0, "slack": 40.0}
"""Sends per second to one host of these services (Telegram allows ~30 messages/s per
bot; Discord ~50 requests/s; Slack incoming webhooks ~1/s each, many webhooks share
the host)."""


@dataclass(frozen=True)
class Job:
    """One endpoint's send: its channel, or the endpoint URL to build it from in the
    process that sends (parsing thousands of URLs is spread over the senders); `error`
    when the URL cannot be used."""

    out: Outgoing
    channel: Channel | None = None
    error: str | None = None
    url: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Outcome:
    endpoint_id: str
    result: SendResult
    attempts: int
    elapsed_s: float


class _Rate:
    """At most `per_second` starts per second (a simple spacing limiter)."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second
        self.next_at = 0.0
        self.lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self.lock:
            now = time.monotonic()
            start = max(now, self.next_at)
            self.next_at = start + self.interval
        if start > now:
            await asyncio.sleep(start - now)


class Engine:
    def __init__(self, settings: Settings, policy: RetryPolicy, *, concurrency: int = 256,
                 per_host: int = 128, timeout_s: float = 10.0, jitter: float = 0.2,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 rate_limits: dict[str, float] | None = None) -> None:
        self.settings = settings
        self.policy = policy
        self.concurrency = concurrency
        self.per_host = per_host
        self.timeout_s = timeout_s
        self.jitter = jitter
        self.sleep = sleep
        self.rate_limits = RATE_LIMITS if rate_limits is None else rate_limits
        self._rates: dict[tuple[str, str], _Rate] = {}
        self._hosts: dict[str, asyncio.Semaphore] = {}

    def session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=self.concurrency, limit_per_host=self.per_host,
                                         resolver=SafeResolver(self.settings),
                                         ttl_dns_cache=60)
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                                     trust_env=False, auto_decompress=True)

    async def run(self, jobs: Iterable[Job], on_done: Callable[[Outcome], None]) -> int:
        """Send every job; `on_done` is called (in the loop) as each one finishes.
        Answers how many were sent."""
        async with self.session() as session:
            ctx = SendContext(session=session, settings=self.settings, timeout_s=self.timeout_s)
            slots = asyncio.Semaphore(self.concurrency)
            sent = 0

            async def one(job: Job) -> None:
                nonlocal sent
                outcome = await self.deliver(job, ctx, slots)
                sent += outcome.result.ok
                on_done(outcome)

            await asyncio.gather(*(one(job) for job in jobs))
        return sent

    async def deliver(self, job: Job, ctx: SendContext, slots: asyncio.Semaphore) -> Outcome:
        started = time.monotonic()
        endpoint_id = job.out.endpoint_id
        channel = job.channel
        if channel is None and job.url is not None and job.error is None:
            from metric_stream.delivery.channels import parse_channel
            from metric_stream.errors import MetricStreamError

            try:
                channel = parse_channel(job.url)
            except MetricStreamError as exc:
                job = Job(job.out, None, f"the endpoint URL cannot be used: {exc.message}")
        if channel is None:
            return Outcome(endpoint_id, SendResult(ok=False, error=job.error), 0, 0.0)
        host = channel.host
        host_slots = self._hosts.get(host)
        if host_slots is None:
            host_slots = self._hosts[host] = asyncio.Semaphore(self.per_host)
        rate = self._rate(channel)
        result = SendResult(ok=False, error="not sent")
        attempts = 0
        for attempt in range(self.policy.retries + 1):
            if attempt:
                await self.sleep(self._wait(attempt, result))
            attempts = attempt + 1
            async with slots, host_slots:
                if rate is not None:
                    await rate.wait()
                try:
                    result = await channel.send(job.out, ctx)
                except Exception as exc:  # a channel bug must not sink the others
                    result = SendResult(ok=False, retryable=False,
                                        error=short(f"{channel.kind} failed: "
                                                    f"{type(exc).__name__}"))
            if result.ok or result.gone or not result.retryable:
                break
        return Outcome(endpoint_id, result, attempts, time.monotonic() - started)

    def _rate(self, channel: Channel) -> _Rate | None:
        per_second = self.rate_limits.get(channel.kind)
        if per_second is None:
            return None
        key = (channel.kind, channel.host)
        if key not in self._rates:
            self._rates[key] = _Rate(per_second)
        return self._rates[key]

    def _wait(self, retry: int, last: SendResult) -> float:
        base = self.policy.delay(retry)
        spread = base * self.jitter
        wait = base + random.uniform(-spread, spread) if spread else base
        if last.retry_after is not None:
            wait = max(wait, last.retry_after)
        return max(wait, 0.0)


SHARD_MIN = 1_000  # sends below this run in one process: forking costs more than it saves


def run_jobs(engine: Engine, jobs: Iterable[Job], on_done: Callable[[Outcome], None], *,
             processes: int = 1) -> int:
    """`engine.run` from synchronous code (a stage worker, the CLI, a Lambda).

    With `processes` > 1 and at least SHARD_MIN sends (and `os.fork`), the sends are
    split among that many processes: one Python process tops out near 6,000 HTTP
    requests a second on one core. Forked senders only run the event loop and the
    channels, and stream their outcomes back through a pipe; `on_done` still runs here,
    in this process, as outcomes arrive. A sender that dies leaves its unreported sends
    failed (retryable), never lost.

    Thousands of sends allocate many short-lived objects: with the default thresholds the
    collector scans the whole heap several times a run (~15 % of the time). Collections
    are made rarer for the run and the thresholds restored after."""
    jobs = list(jobs)
    thresholds = gc.get_threshold()
    gc.set_threshold(50_000, 50, 50)
    try:
        if processes <= 1 or len(jobs) < SHARD_MIN or not hasattr(os, "fork"):
            return asyncio.run(engine.run(jobs, on_done))
        return _run_sharded(engine, jobs, on_done, processes)
    finally:
        gc.set_threshold(*thresholds)


_FRAME = struct.Struct("!I")
_BATCH = 64


def _run_sharded(engine: Engine, jobs: list[Job], on_done: Callable[[Outcome], None],
                 processes: int) -> int:
    # Every shard goes to a child: this process keeps the bookkeeping (records as
    # outcomes arrive), which is enough work of its own.
    shards = [jobs[i::processes] for i in range(processes)]
    children: list[tuple[int, int, list[Job]]] = []
    trace_id = current_trace_id()  # the job's: set again in each sender, for its log lines
    gc.freeze()  # the children share these pages instead of copying them on the next GC
    try:
        for shard in shards:
            read_fd, write_fd = os.pipe()
            with warnings.catch_warnings():  # 3.12+ warns about forking with threads: the
                warnings.simplefilter("ignore", DeprecationWarning)  # child only sends
                pid = os.fork()
            if pid == 0:  # the child: send, report, exit (never return into the caller)
                os.close(read_fd)
                code = 1
                try:
                    with job_context(trace_id):
                        code = _child(engine, shard, write_fd)
                finally:
                    os._exit(code)
            os.close(write_fd)
            children.append((pid, read_fd, shard))
    finally:
        gc.unfreeze()
    reported: set[str] = set()
    sent = 0

    def done(outcome: Outcome) -> None:
        nonlocal sent
        reported.add(outcome.endpoint_id)
        sent += outcome.result.ok
        on_done(outcome)

    asyncio.run(_parent([fd for _, fd, _ in children], done))
    for pid, _, shard in children:
        os.waitpid(pid, 0)
        for job in shard:
            if job.out.endpoint_id not in reported:
                done(Outcome(job.out.endpoint_id, SendResult(
                    ok=False, retryable=True,
                    error="the sending process stopped before it reported this send"), 0, 0.0))
    return sent


def _child(engine: Engine, shard: list[Job], write_fd: int) -> int:
    batch: list[Outcome] = []
    out = os.fdopen(write_fd, "wb", buffering=0)

    def flush() -> None:
        if batch:
            data = pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)
            out.write(_FRAME.pack(len(data)) + data)
            batch.clear()

    def report(outcome: Outcome) -> None:
        batch.append(outcome)
        if len(batch) >= _BATCH:
            flush()

    async def run() -> None:
        async def tick() -> None:  # outcomes go back at least every 0.1 s
            while True:
                await asyncio.sleep(0.1)
                flush()

        ticker = asyncio.ensure_future(tick())
        try:
            await engine.run(shard, report)
        finally:
            ticker.cancel()

    asyncio.run(run())
    flush()
    out.close()
    return 0


async def _parent(fds: list[int], on_done: Callable[[Outcome], None]) -> None:
    loop = asyncio.get_running_loop()

    async def read(fd: int) -> None:
        reader = asyncio.StreamReader(limit=2**26)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0))
        try:
            while True:
                try:
                    head = await reader.readexactly(_FRAME.size)
                    data = await reader.readexactly(_FRAME.unpack(head)[0])
                except asyncio.IncompleteReadError:
                    return
                for outcome in pickle.loads(data):  # noqa: S301 (our own child's frames)
                    on_done(outcome)
        finally:
            transport.close()

    await asyncio.gather(*(read(fd) for fd in fds))

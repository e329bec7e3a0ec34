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
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import aiohttp

from metric_stream.delivery.base import Channel, Outgoing, SendContext, SendResult, short
from metric_stream.delivery.safety import SafeResolver
from metric_stream.models.config import RetryPolicy
from metric_stream.settings import Settings

RATE_LIMITS: dict[str, float] = {"telegram": 30.0, "discord": 40.0, "slack": 40.0}
"""Sends per second to one host of these services (Telegram allows ~30 messages/s per
bot; Discord ~50 requests/s; Slack incoming webhooks ~1/s each, many webhooks share
the host)."""


@dataclass(frozen=True)
class Job:
    """One endpoint's send: its channel (None when its URL cannot be used, with `error`)."""

    out: Outgoing
    channel: Channel | None
    error: str | None = None


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
        if job.channel is None:
            return Outcome(endpoint_id, SendResult(ok=False, error=job.error), 0, 0.0)
        channel = job.channel
        host_slots = self._hosts.setdefault(channel.host, asyncio.Semaphore(self.per_host))
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


def run_jobs(engine: Engine, jobs: Iterable[Job], on_done: Callable[[Outcome], None]) -> int:
    """`engine.run` from synchronous code (a stage worker, the CLI, a Lambda)."""
    return asyncio.run(engine.run(jobs, on_done))

"""Twenty daily cycles in a row through `metric-stream serve` (its tick, fan-out, fan-in
and a worker thread per stage queue, plus two HTTP worker processes) while everything
around it fails: in each cycle serve or one of its HTTP workers is SIGKILLed at a
random moment, a fifth of the n8n workflows time out, the LLM answers 500 half the
time, the SMTP server is down for the first cycles and the webhook receivers answer
503 at random. After each cycle:

- the job ends (complete, partial or failed) within a deadline;
- each KPI whose value serve accepted has exactly that one point at the job's
  timestamp, no other KPI has one, and no point appeared anywhere else;
- each endpoint got the report once. README "Delivery" promises at-least-once with
  one id: a crash repeats at most the sends in flight (and those of its last quarter
  second) with the same `webhook-id` / Message-ID. So: exactly once in a cycle whose
  delivery was not interrupted, and at most twice, same id and body, in one that was;
- every failure keeps its reason: failed KPIs an error object, failed deliveries a
  lastError, failed LLM chains a reason in the job's `analysis.llm`, and the chains
  that failed are exactly those whose last call got a 500.

The seed (FAULT_SEED, default below) decides every fault; it is printed, so a failure
replays with `FAULT_SEED=<seed> pytest tests/faults/test_chaos_cycles.py -s`.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from metric_stream.bootstrap import Services, build_services
from metric_stream.models import DataPoint, Job, JobStatus
from metric_stream.models.config import (
    AnalysisChain,
    AnalysisStep,
    DeliveryConfig,
    JobLifecycleConfig,
    LlmConfig,
    RetryConfig,
    RetryPolicy,
)
from metric_stream.models.delivery import DeliveryEndpoint, DeliveryStatus
from metric_stream.models.job import KpiStatus
from metric_stream.models.kpi import KpiDefinition, N8nSource
from metric_stream.services import admin, cycle
from metric_stream.settings import Settings
from tests.faults.fakes import (
    Drained,
    FakeN8n,
    FlakyLlm,
    FlakySmtp,
    Mode,
    WebhookSink,
    alive,
    flaky_llm,
    http_workers,
)
from tests.integration.test_serve_cycle import KEY, start_serve
from tests.llm_fakes import KEY as LLM_KEY

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("FAULT_SEED", "20261129"))
CYCLES = 20
KPIS = [f"chaos-kpi-{i:02d}" for i in range(10)]
WEBHOOKS = [f"hook-{i}" for i in range(4)]
MAIL = "mail"
HISTORY_DAYS = 30
FAN_IN_TIMEOUT_S = 10  # the config's minimum: a silent workflow costs this much
SILENT_CYCLES = 2  # cycles with a workflow that never calls back
JOB_DEADLINE_S = 60.0
CALLBACK_WAIT_S = 30.0
STAGES = (JobStatus.COLLECTING, JobStatus.ANALYSING, JobStatus.PACKAGING, JobStatus.DELIVERING)
VISIBILITY_S = 2  # a killed stage's message (and claim) comes back after this


@dataclass(frozen=True)
class CyclePlan:
    number: int
    modes: dict[str, Mode]
    """The KPIs that do not answer this cycle, and how."""
    values: dict[str, float]
    webhook_failures: dict[str, int]
    """503s before a 200, by endpoint (3: every attempt fails)."""
    victim: str  # "serve" (its stage workers die with it) or "http-worker"
    pick: int  # which HTTP worker
    kill_in: JobStatus
    kill_after_s: float


def plan_cycles(seed: int) -> tuple[list[CyclePlan], int]:
    """Every cycle's faults, and the cycle from which the SMTP server is up."""
    rng = random.Random(seed)
    silent = set(rng.sample(range(CYCLES), SILENT_CYCLES))
    plans = []
    for number in range(CYCLES):
        late = rng.sample(KPIS, len(KPIS) // 5)
        modes: dict[str, Mode] = {k: rng.choice(["upstream-timeout", "gateway-timeout"])
                                  for k in late}
        if number in silent:
            modes[late[0]] = "silent"
        plans.append(CyclePlan(
            number=number, modes=modes,
            values={k: round(rng.uniform(10, 1000), 4) for k in KPIS},
            webhook_failures={e: rng.choice([0, 0, 1, 2, 3]) for e in WEBHOOKS},
            victim=rng.choice(["serve", "serve", "serve", "http-worker"]), pick=rng.randrange(2),
            kill_in=rng.choice(STAGES), kill_after_s=round(rng.uniform(0, 0.5), 3)))
    return plans, rng.randint(1, 3)


def prepare(home: Path, n8n: FakeN8n, sink: WebhookSink, smtp: FlakySmtp) -> Services:
    services = build_services(Settings(home=home))
    services.init()
    config = services.config.get()
    quick = RetryPolicy(retries=1, delays_s=[0.1])
    steps = [AnalysisStep(kind="numerical", provider="anthropic", model="claude-sonnet-4-5",
                          prompt={"task": "Interpret the statistics."}),
             AnalysisStep(kind="synthesis", provider="anthropic", model="claude-sonnet-4-5",
                          prompt={"task": "Say what changed."})]
    services.config.put(config.model_copy(update={
        "retry": RetryConfig(collection=quick, chart=quick, llm=quick,
                             delivery=RetryPolicy(retries=2, delays_s=[0, 0.1])),
        "lifecycle": JobLifecycleConfig(fan_in_timeout_s=FAN_IN_TIMEOUT_S),
        "analysis_chains": {"default": AnalysisChain(steps=steps)},
        "llm": LlmConfig(timeout_s=5),
        "delivery": DeliveryConfig(timeout_s=3, jitter=0, processes=1),
    }), services.clock.now())
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    for kpi_id in KPIS:
        services.registry.kpis.create(KpiDefinition(
            id=kpi_id, name=f"Chaos {kpi_id[-2:]}", kpi_type="index",
            source=N8nSource(webhook_url=n8n.webhook_url(kpi_id), workflow_id=f"wf-{kpi_id}")))
        services.timeseries.append([
            DataPoint(kpi_id=kpi_id, timestamp=start - timedelta(days=d), value=100.0 + d)
            for d in range(1, HISTORY_DAYS + 1)])
    for endpoint_id in WEBHOOKS:
        admin.create_endpoint(services, DeliveryEndpoint(
            id=endpoint_id, name=endpoint_id, url=f"{sink.url}/{endpoint_id}"))
    admin.create_endpoint(services, DeliveryEndpoint(id=MAIL, name="Ops mail",
                                                     url=smtp.url("ops@example.com")))
    return services


@dataclass
class Serve:
    """The running `serve`, restarted after each SIGKILL; the n8n fake follows its URL."""

    home: Path
    n8n: FakeN8n
    current: Drained | None = None
    killed: list[Drained] = field(default_factory=list)
    orphans: list[int] = field(default_factory=list)

    def start(self) -> None:
        process, url = start_serve(self.home, "--tick-seconds", "0.5", "--workers", "2")
        self.current = Drained(process)
        self.n8n.api_url = url

    def kill(self, victim: str, pick: int) -> str:
        """SIGKILL serve (and start another) or one of its HTTP workers (which uvicorn
        replaces); what was killed."""
        assert self.current is not None
        if victim == "http-worker":
            workers = sorted(http_workers(self.current.pid))
            if workers:
                os.kill(workers[pick % len(workers)], signal.SIGKILL)
                return "http-worker"
        self.orphans += self.current.kill()
        self.killed.append(self.current)
        self.start()
        return "serve"

    def stop(self) -> None:
        for process in [*self.killed, *([self.current] if self.current else [])]:
            process.stop()
        deadline = time.monotonic() + 40
        while any(alive(p) for p in self.orphans) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in self.orphans:  # an HTTP worker of a killed serve that outstayed 40 s
            if alive(pid):
                os.kill(pid, signal.SIGKILL)

    def log(self) -> str:
        """The output of the last serve killed and of the one running."""
        return "".join(line for process in [*self.killed[-1:], *([self.current] if
                                                                 self.current else [])]
                       for line in process.lines[-200:])


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[
        Services, Serve, FakeN8n, WebhookSink, FlakySmtp, FlakyLlm]]:
    n8n, sink, smtp = FakeN8n(KEY), WebhookSink(), FlakySmtp()
    try:
        with flaky_llm(SEED) as (provider, llm):
            monkeypatch.setenv("ANTHROPIC_API_KEY", LLM_KEY)
            monkeypatch.setenv("METRIC_STREAM_ANTHROPIC_BASE_URL", provider.base_url("anthropic"))
            monkeypatch.setenv("METRIC_STREAM_QUEUE_VISIBILITY_TIMEOUT", str(VISIBILITY_S))
            monkeypatch.setenv("METRIC_STREAM_LOG_LEVEL", "warning")
            home = tmp_path / "home"
            services = prepare(home, n8n, sink, smtp)
            serve = Serve(home, n8n)
            serve.start()
            try:
                yield services, serve, n8n, sink, smtp, llm
            finally:
                serve.stop()
    finally:
        n8n.close()
        sink.close()
        smtp.close()


def kill_when(services: Services, serve: Serve, job: Job, plan: CyclePlan
              ) -> tuple[str, set[JobStatus]]:
    """SIGKILL the plan's victim once the job is in the plan's stage (or past it): what
    was killed, and the job's status around the kill."""
    deadline = time.monotonic() + JOB_DEADLINE_S
    status = job.status
    while time.monotonic() < deadline:
        status = services.jobs.require(job.trace_id).status
        if status is plan.kill_in or status.terminal or (
                STAGES.index(status) > STAGES.index(plan.kill_in) if status in STAGES else False):
            break
        time.sleep(0.01)
    time.sleep(plan.kill_after_s)
    before = services.jobs.require(job.trace_id).status
    killed = serve.kill(plan.victim, plan.pick)
    return killed, {before, services.jobs.require(job.trace_id).status}


def wait_for_end(services: Services, trace_id: str) -> Job:
    deadline = time.monotonic() + JOB_DEADLINE_S
    job = services.jobs.require(trace_id)
    while not job.status.terminal and time.monotonic() < deadline:
        time.sleep(0.1)
        job = services.jobs.require(trace_id)
    return job


def check_points(services: Services, job: Job, n8n: FakeN8n, plan: CyclePlan,
                 answered: dict[str, int]) -> None:
    accepted = n8n.accepted(job.trace_id)
    reported = {c.kpi_id for c in n8n.of(job.trace_id)
                if c.route == "/api/kpi-error" and c.accepted}
    for kpi_id in job.kpi_ids:
        points = services.timeseries.points(kpi_id)
        at = [p for p in points if p.timestamp == job.created_at]
        state = job.state_of(kpi_id)
        if kpi_id in accepted:
            answered[kpi_id] += 1
            assert [p.value for p in at] == [accepted[kpi_id]], (kpi_id, at)
            assert state.status in (KpiStatus.COLLECTED, KpiStatus.TIMED_OUT), (kpi_id, state)
        else:
            assert at == [], (kpi_id, "a point no workflow sent", at)
            assert state.status in (KpiStatus.FAILED, KpiStatus.TIMED_OUT), (kpi_id, state)
        if state.status is not KpiStatus.COLLECTED:
            assert state.error and state.error.get("message"), (kpi_id, state)
        message = str((state.error or {}).get("message"))
        if kpi_id in reported:  # the workflow's own error, kept whole
            assert state.status is KpiStatus.FAILED and state.error is not None
            assert state.error.get("code") == "ECONNABORTED", state.error
        elif plan.modes.get(kpi_id) == "gateway-timeout" and state.status is KpiStatus.FAILED:
            assert "HTTP 504" in message, message
        elif state.status is KpiStatus.TIMED_OUT:  # silent, or its trigger died with serve
            assert "fan-in timeout" in message, message
        assert len(points) == HISTORY_DAYS + answered[kpi_id], (kpi_id, "lost or doubled")


def check_deliveries(services: Services, job: Job, sink: WebhookSink, smtp: FlakySmtp,
                     interrupted: bool) -> tuple[dict[str, str], int]:
    """Each endpoint's outcome, and how many sends arrived twice."""
    twice = 0
    records = {r.endpoint_id: r for r in services.deliveries.list(job.trace_id)}
    assert set(records) == {*WEBHOOKS, MAIL}, records
    outcome = {}
    for endpoint_id, record in records.items():
        message_id = f"{job.trace_id}:{endpoint_id}"
        outcome[endpoint_id] = record.status.value
        assert record.status in (DeliveryStatus.SENT, DeliveryStatus.FAILED), record
        if endpoint_id == MAIL:
            mails = smtp.mails(message_id)
            taken, bodies = len(mails), {m.message["Message-ID"] for m in mails}
        else:
            hits = sink.received(message_id)
            taken = sum(1 for _, status in hits if status == 200)
            bodies = {r.body for r, _ in hits}
            assert all(r.headers["webhook-id"] == message_id for r, _ in hits)
        if record.status is DeliveryStatus.FAILED:
            assert record.last_error, record
            assert not taken or interrupted, (endpoint_id, "failed, yet received")
            continue
        allowed = 2 if interrupted else 1
        assert 1 <= taken <= allowed, (endpoint_id, taken, "receipts")
        twice += taken - 1
        assert len(bodies) == 1, "a repeated send must be the same message (same id)"
    return outcome, twice


def check_llm(services: Services, job: Job, llm: FlakyLlm) -> str:
    consolidated = services.packages.consolidated(job.trace_id)
    assert consolidated is not None and consolidated.analysis is not None
    summary = consolidated.analysis["llm"]
    failures = summary.get("failures") or []
    assert all(f.get("reason") for f in failures), failures
    assert {f["kpiId"] for f in failures} == llm.failed_chains(), (failures, llm.outcomes)
    assert summary["chainsFailed"] == len(failures)
    return f"{summary['status']} ({len(failures)} chain(s) failed)"


def test_twenty_cycles_under_faults_lose_nothing_and_send_once(
        world: tuple[Services, Serve, FakeN8n, WebhookSink, FlakySmtp, FlakyLlm]) -> None:
    services, serve, n8n, sink, smtp, llm = world
    plans, smtp_up_at = plan_cycles(SEED)
    print(f"\nfault seed {SEED} (FAULT_SEED={SEED} replays it); SMTP up from cycle {smtp_up_at}")
    answered = dict.fromkeys(KPIS, 0)
    for plan in plans:
        started = time.monotonic()
        n8n.modes, n8n.values = plan.modes, plan.values
        sink.failures = {f"/{e}": n for e, n in plan.webhook_failures.items()}
        llm.next_cycle(plan.number)
        if plan.number == smtp_up_at:
            smtp.up()
        job = cycle.schedule_job(services)  # what the tick does when a schedule is due
        killed, seen = kill_when(services, serve, job, plan)
        final = wait_for_end(services, job.trace_id)
        context = (f"seed {SEED} cycle {plan.number}: {plan}; killed {killed} with the job "
                   f"{sorted(s.value for s in seen)}\n{serve.log()}")
        assert final.status.terminal, context
        assert n8n.wait_idle(CALLBACK_WAIT_S), context
        try:
            check_points(services, services.jobs.require(job.trace_id), n8n, plan, answered)
            deliveries, twice = check_deliveries(
                services, final, sink, smtp,
                interrupted=killed == "serve" and JobStatus.DELIVERING in seen)
            if plan.number < smtp_up_at:
                assert deliveries[MAIL] == "failed"
            llm_status = check_llm(services, final, llm)
        except AssertionError as failure:
            raise AssertionError(f"{failure}\n{context}") from failure
        print(f"cycle {plan.number:2d}: {final.status.value} in "
              f"{time.monotonic() - started:4.1f} s; killed {killed} in "
              f"{'/'.join(sorted(s.value for s in seen))}; missing {final.missing}; "
              f"LLM {llm_status}; sent {sorted(e for e, o in deliveries.items() if o == 'sent')}"
              f"{f', {twice} sent twice (same id)' if twice else ''}")
    for stage in ("fanout", *cycle.STAGES):
        depth = services.queue.depth(stage)
        assert depth.dead_letters == 0, (stage, depth)


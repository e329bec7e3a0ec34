"""The admin console under test: a LocalClient on an embedded store in the test's own
folder (so the section bar reads `local store home`), seeded with the demo registry, a
year of its history and three jobs at fixed times; a ManualClock everywhere; the live
refresh off and the cursor still, so that what is on screen depends on nothing else.

And the steps the console's tests share: run the app on a section (`Console.run`), find
the screen on top, select a row of a list, fill a form, read a field's error."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from textual.app import App
from textual.dom import DOMNode
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Input

from metric_stream.bootstrap import Services, build_services
from metric_stream.clock import ManualClock
from metric_stream.models import Job, KpiStatus
from metric_stream.models.delivery import DeliveryEndpoint, DeliveryRecord, DeliveryStatus
from metric_stream.models.job import JobStatus, KpiState, StageTiming
from metric_stream.models.report import ConsolidatedPackage, DocumentRecord
from metric_stream.models.schedule import Schedule
from metric_stream.services.runner import prepare_demo
from metric_stream.settings import Settings
from metric_stream_tui.app import AdminApp
from metric_stream_tui.client import LocalClient, Reply
from metric_stream_tui.screens.base import ListScreen
from metric_stream_tui.widgets import FormField

SIZE = (120, 40)
"""The terminal the console's tests run in."""
NOW = datetime(2026, 11, 29, 9, 30, tzinfo=UTC)
COMPLETE = "trace_20261128_060000_a1b2c3"
PARTIAL = "trace_20261129_060000_d4e5f6"
FAILED = "trace_20261127_060000_0a0b0c"
FAILED_KPI = "demo-fear-greed-index"
KPI_ERROR = {"name": "NodeApiError", "message": "alternative.me answered 502 Bad Gateway",
             "code": 502, "component": "n8n", "node": "HTTP Request",
             "timestamp": "2026-11-29T06:00:41Z"}


def seed_jobs(services: Services) -> None:
    """Three settled jobs: complete (2 deliveries sent), partial (one KPI failed with
    an n8n error, one delivery failed 3 times, the LLM chains partly failed), failed."""
    kpi_ids = sorted(k for e in services.registry.kpis.all() for k in e.yields)
    services.registry.endpoints.create(DeliveryEndpoint(
        id="team-mail", name="Team mail", url="mailto://reports:pw@mail.example.com"))
    services.registry.endpoints.create(DeliveryEndpoint(
        id="ops-hook", name="Ops webhook", url="https://hooks.example.com/metric-stream/T0K3N"))
    services.registry.schedules.create(Schedule(id="daily", name="Daily report",
                                                cron="0 6 * * *", created_at=NOW))
    for trace, day, status, took in ((FAILED, 27, JobStatus.FAILED, 301.0),
                                     (COMPLETE, 28, JobStatus.COMPLETE, 41.5),
                                     (PARTIAL, 29, JobStatus.PARTIAL, 95.2)):
        start = datetime(2026, 11, day, 6, 0, tzinfo=UTC)
        states = {k: KpiState(status=KpiStatus.COLLECTED, updated_at=start + timedelta(seconds=12))
                  for k in kpi_ids}
        stages = {"collecting": StageTiming(started_at=start,
                                            finished_at=start + timedelta(seconds=14))}
        if status is JobStatus.FAILED:
            for k in kpi_ids:
                states[k] = KpiState(status=KpiStatus.TIMED_OUT, updated_at=start + timedelta(
                    seconds=300), error={"name": "FanInTimeout",
                                         "message": "no result within the fan-in timeout"})
            stages["collecting"] = StageTiming(started_at=start,
                                               finished_at=start + timedelta(seconds=300))
        else:
            if status is JobStatus.PARTIAL:
                states[FAILED_KPI] = KpiState(status=KpiStatus.FAILED, error=KPI_ERROR,
                                              updated_at=start + timedelta(seconds=41))
            for name, begin, length in (("analysing", 14, 9.5), ("packaging", 24, 12.3),
                                        ("delivering", 37, took - 37)):
                stages[name] = StageTiming(started_at=start + timedelta(seconds=begin),
                                           finished_at=start + timedelta(seconds=begin + length))
        services.jobs.create(Job(
            trace_id=trace, kpi_ids=kpi_ids, kpis=states, status=status, created_at=start,
            stages=stages, finished_at=start + timedelta(seconds=took),
            schedule_id="daily", demo=True))
        if status is JobStatus.FAILED:
            continue
        services.packages.put_consolidated(ConsolidatedPackage(
            trace_id=trace, kpi_ids=kpi_ids, created_at=start,
            missing_kpi_ids=[FAILED_KPI] if status is JobStatus.PARTIAL else [],
            analysis={"llm": {
                "status": "partial" if status is JobStatus.PARTIAL else "ok",
                "chainsOk": 11, "chainsFailed": 1 if status is JobStatus.PARTIAL else 0,
                "failures": [{"kpiId": "demo-cbbi-mvrv", "step": 2,
                              "reason": "the model answered no JSON"}]
                if status is JobStatus.PARTIAL else [],
                "calls": 26, "inputTokens": 41_200, "outputTokens": 6_930,
                "latencyMs": {"p50": 812.4, "p95": 1910.0, "max": 2402.0}}},
            messages={"webhook": {"traceId": trace}}))
        services.packages.put_document(DocumentRecord(
            trace_id=trace, blob_key=f"reports/2026/11/{trace}.pdf", size_bytes=151_552,
            pages=7, demo=True, created_at=start + timedelta(seconds=36),
            url=f"https://reports.example.com/api/documents/{trace}"))
        sent = start + timedelta(seconds=took - 1)
        services.deliveries.put(DeliveryRecord(
            trace_id=trace, endpoint_id="team-mail", status=DeliveryStatus.SENT,
            channel="email", attempts=1, first_attempt_at=sent, last_attempt_at=sent,
            sent_at=sent))
        failing = status is JobStatus.PARTIAL
        services.deliveries.put(DeliveryRecord(
            trace_id=trace, endpoint_id="ops-hook",
            status=DeliveryStatus.FAILED if failing else DeliveryStatus.SENT,
            channel="webhook", attempts=3 if failing else 1, first_attempt_at=sent,
            last_attempt_at=sent, sent_at=None if failing else sent,
            last_status_code=503 if failing else 200,
            last_error="HTTP 503: upstream maintenance until 07:00" if failing else None))


class FrozenStorageClient(LocalClient):
    """The local client, with the storage figures of `GET /api/metrics` fixed: SQLite's
    file sizes depend on when it checkpoints its log, not on what is stored."""

    async def metrics(self) -> Any:
        answer = await super().metrics()
        answer["storage"] = {"backend": "embedded", "databaseBytes": 2_359_296,
                             "blobBytes": 306_176, "blobFiles": 2, "totalBytes": 2_665_472}
        return answer


@dataclass
class Console:
    services: Services
    client: LocalClient
    clock: ManualClock

    def app(self, client: Any = None, **options: Any) -> AdminApp:
        settings: dict[str, Any] = {"refresh_s": None, "cursor_blink": False,
                                    "clock": self.clock, "backoff": (0.05, 0.2)}
        settings.update(options)
        return AdminApp(client or self.client, **settings)

    @asynccontextmanager
    async def run(self, client: Any = None,
                  **options: Any) -> AsyncIterator[tuple[AdminApp, Pilot[None]]]:
        """`app(client, **options)` running at SIZE, once its first data is shown."""
        app = self.app(client, **options)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            yield app, pilot


def local_console(*, demo: bool = True, jobs: bool = True,
                  client_type: type[LocalClient] = LocalClient) -> Console:
    clock = ManualClock(NOW)
    settings = Settings(backend="embedded", home=Path("home"))
    services = build_services(settings, clock=clock)
    services.init()
    if demo:
        prepare_demo(services)
    if demo and jobs:
        seed_jobs(services)
    return Console(services, client_type(settings, clock=clock, services=services), clock)


@pytest.fixture
def console() -> Console:
    """The seeded store and a LocalClient on it (the working folder is the test's own)."""
    return local_console()


@pytest.fixture
def frozen_console() -> Console:
    return local_console(client_type=FrozenStorageClient)


class FailingClient(LocalClient):
    """The local client, but a call whose `METHOD path` starts with a key of `failures`
    gets that answer (a `Reply`, e.g. a 500) or raises that error (a lost connection, a
    timeout) instead, while the key is there: a test heals it by removing the key."""

    def __init__(self, console: Console, failures: Mapping[str, Exception | Reply]) -> None:
        super().__init__(console.client.settings, clock=console.clock,
                         services=console.services)
        self.failures = dict(failures)
        self.calls: list[str] = []

    async def _exchange(self, method: str, path: str, query: Mapping[str, str], body: bytes,
                        content_type: str | None, timeout: float | None) -> Reply:
        call = f"{method} {path}"
        self.calls.append(call)
        for prefix, failure in self.failures.items():
            if call.startswith(prefix):
                if isinstance(failure, Reply):
                    return failure
                raise failure
        return await super()._exchange(method, path, query, body, content_type, timeout)


API_GROUPS = ("load", "action", "save", "import")


async def settle(pilot: Any) -> None:
    """Wait until the console's API calls are answered and shown, and the calls those
    started (a reload after a save); not for Textual's own long-lived workers, such as
    a directory tree's loader."""
    app = pilot.app
    for _ in range(10):
        busy = [w for w in app.workers if w.group in API_GROUPS and not w.is_finished]
        if not busy:
            break
        await asyncio.gather(*(w.wait() for w in busy), return_exceptions=True)
        await pilot.pause()
    await pilot.pause()


S = TypeVar("S", bound=Screen[Any])


def screen_of(app: App[Any], kind: type[S]) -> S:
    """The screen on top, which must be a `kind`."""
    screen = app.screen
    assert isinstance(screen, kind)
    return screen


def ids_shown(app: App[Any]) -> list[str]:
    """The keys of the rows the list on top shows, in order."""
    table = screen_of(app, ListScreen).table
    return [str(table.coordinate_to_cell_key((row, 0)).row_key.value)
            for row in range(table.row_count)]


async def select(pilot: Pilot[Any], key: str) -> None:
    """Put the cursor of the list on top on the row of `key`."""
    table = screen_of(pilot.app, ListScreen).table
    table.move_cursor(row=table.get_row_index(key))
    await pilot.pause()


def fill(node: DOMNode, **values: str) -> None:
    """Set the inputs of `node` (a form, a screen) by id."""
    for name, value in values.items():
        node.query_one(f"#{name}", Input).value = value


def error_of(node: DOMNode, name: str) -> str:
    """The reason shown under the field `name`, or "" when there is none."""
    field = node.query_one(f"#field-{name}", FormField)
    return str(field.error.render()) if field.has_class("-invalid") else ""


def notes(app: App[Any]) -> list[str]:
    """The messages of the notifications shown."""
    return [str(n.message) for n in app._notifications]

"""SVG snapshots of the Schedules and Endpoints screens, at the size and with the frozen
clock and cursor of `test_snapshots.py`: both lists (with inactive, failing and
disabled rows, so every tone shows) and the schedule form previewing a cron."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from metric_stream.models.delivery import DeliveryEndpoint, EndpointHealth
from metric_stream.models.schedule import Schedule
from tests.tui.conftest import NOW, SIZE, Console, settle

SnapCompare = Callable[..., bool]


@pytest.fixture
def seeded(frozen_console: Console) -> Console:
    registry = frozen_console.services.registry
    registry.schedules.create(Schedule(id="weekly", name="Weekly digest", cron="30 7 * * 1",
                                       created_at=NOW))
    registry.schedules.create(Schedule(id="btc-quarter-hour", name="BTC every 15 minutes",
                                       cron="*/15 * * * *", active=False,
                                       kpi_ids=["demo-btc-price-usd"], created_at=NOW))
    registry.endpoints.create(DeliveryEndpoint(
        id="chat-ops", name="Ops chat", url="tgram://123456:ABCDEF/987", operator=True,
        health=EndpointHealth(consecutive_failures=4, failing_since=NOW - timedelta(hours=3))))
    registry.endpoints.create(DeliveryEndpoint(
        id="old-hook", name="Old receiver", url="https://old.example.com/in?key=s3cret",
        active=False, kpis=["demo-btc-price-usd"],
        health=EndpointHealth(disabled_reason="the service says the address is gone (HTTP 410)",
                              disabled_at=NOW)))
    registry.endpoints.create(DeliveryEndpoint(
        id="board-mail", name="Board", url="mailtos://board:pw@mail.example.com",
        kpis="alerts", attach_pdf=True))
    return frozen_console


def then(*keys: str, row: str | None = None,
         fill: dict[str, str] | None = None) -> Callable[[Pilot[Any]], Awaitable[None]]:
    """Wait for the data; optionally put the cursor on `row`; press `keys`; fill inputs
    of the screen on top; wait again."""

    async def run(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        if row is not None:
            table = pilot.app.screen.query_one("#list", DataTable)
            table.move_cursor(row=table.get_row_index(row))
            await pilot.pause()
        for key in keys:
            await pilot.press(key)
            await settle(pilot)
        for name, value in (fill or {}).items():
            pilot.app.screen.query_one(f"#{name}", Input).value = value
        await pilot.pause()

    return run


def test_schedules(snap_compare: SnapCompare, seeded: Console) -> None:
    assert snap_compare(seeded.app(start="schedules"), terminal_size=SIZE,
                        run_before=then(row="weekly"))


def test_schedule_form_previewing(snap_compare: SnapCompare, seeded: Console) -> None:
    assert snap_compare(seeded.app(start="schedules"), terminal_size=SIZE,
                        run_before=then("e", row="daily", fill={"cron": "0 6,18 * * 1-5"}))


def test_endpoints(snap_compare: SnapCompare, seeded: Console) -> None:
    assert snap_compare(seeded.app(start="endpoints"), terminal_size=SIZE,
                        run_before=then())

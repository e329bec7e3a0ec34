"""The Schedules screen against the embedded store: the list and its filter, the cron
preview as you type, add with an invalid expression (the API's reason under the field),
edit, toggle, delete with a confirmation."""

from __future__ import annotations

import pytest
from textual.widgets import Input

from metric_stream.models.schedule import Schedule
from metric_stream_tui.modals import ConfirmModal
from metric_stream_tui.screens.schedule_form import ScheduleForm
from metric_stream_tui.screens.schedules import SchedulesScreen
from tests.tui.conftest import NOW, Console, error_of, fill, ids_shown, screen_of, select, settle

pytestmark = pytest.mark.anyio


@pytest.fixture
def schedules(console: Console) -> Console:
    """The seeded store with two more schedules (`daily` is there already)."""
    create = console.services.registry.schedules.create
    create(Schedule(id="weekly", name="Weekly digest", cron="30 7 * * 1", created_at=NOW))
    create(Schedule(id="btc-hourly", name="BTC every hour", cron="0 * * * *", active=False,
                    kpi_ids=["demo-btc-price-usd"], created_at=NOW))
    return console


def preview_of(form: ScheduleForm) -> str:
    return str(form.query_one("#preview").render())


async def test_list_and_filter(schedules: Console) -> None:
    async with schedules.run(start="schedules") as (app, pilot):
        assert ids_shown(app) == ["btc-hourly", "daily", "weekly"]
        daily = [str(c) for c in screen_of(app, SchedulesScreen).table.get_row("daily")]
        assert daily[1:4] == ["0 6 * * *", "every day at 06:00 UTC", "2026-11-30 06:00"]
        assert "every active KPI" in daily
        hourly = [str(c) for c in screen_of(app, SchedulesScreen).table.get_row("btc-hourly")]
        assert hourly[3] == "—" and "off" in hourly[-1]  # inactive: no next run
        await select(pilot, "weekly")
        runs = str(screen_of(app, SchedulesScreen).query_one("#runs").render())
        assert "weekly (Weekly digest): on Monday at 07:30 UTC, the next in 22 h" in runs
        assert "2026-11-30 07:30  ·  2026-12-07 07:30" in runs
        await pilot.press("slash", *"monday")
        assert ids_shown(app) == ["weekly"]
        await pilot.press("escape")
        assert len(ids_shown(app)) == 3


async def test_the_preview_follows_the_typing(schedules: Console) -> None:
    async with schedules.run(start="schedules") as (app, pilot):
        await pilot.press("a")
        form = app.screen
        assert isinstance(form, ScheduleForm)
        assert "every day at 06:00 UTC" in preview_of(form)  # the default
        fill(form, cron="")
        await pilot.click("#cron")
        await pilot.press(*"*/15 9")
        assert "must have 5 fields" in preview_of(form)
        assert form.query_one("#preview").has_class("-invalid")
        await pilot.press(*" * * 1-5")
        preview = preview_of(form)
        assert preview.splitlines()[0] == ("every 15 minutes from 09:00 to 09:59 UTC on "
                                           "Monday through Friday")
        runs = preview.splitlines()[1:]
        assert [r.split()[:2] for r in runs] == [
            ["2026-11-30", "09:00"], ["2026-11-30", "09:15"], ["2026-11-30", "09:30"],
            ["2026-11-30", "09:45"], ["2026-12-01", "09:00"]]
        await pilot.press("backspace", "9")
        assert "not a valid cron expression" in preview_of(form)


async def test_add_with_an_invalid_cron_then_fix_it(schedules: Console) -> None:
    async with schedules.run(start="schedules") as (app, pilot):
        await pilot.press("a")
        form = app.screen
        assert isinstance(form, ScheduleForm)
        fill(form, id="month-end", name="Month end", cron="0 18 32 * *")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is form  # still open, the API's reason under the field
        assert "'0 18 32 * *' is not a valid cron expression" in error_of(form, "cron")
        assert "422" in str(form.query_one("#problem").render())
        fill(form, cron="0 18 28 * *", kpiIds="demo-btc-price-usd, nope")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert error_of(form, "cron") == ""
        assert "['nope'], which are not in the registry" in error_of(form, "kpiIds")
        fill(form, kpiIds="demo-btc-price-usd")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, SchedulesScreen)
        assert screen_of(app, SchedulesScreen).selected_key == "month-end"
    saved = schedules.services.registry.schedules.require("month-end")
    assert (saved.cron, saved.kpi_ids, saved.active) == ("0 18 28 * *",
                                                         ["demo-btc-price-usd"], True)


async def test_edit_keeps_the_id_and_what_the_form_does_not_show(schedules: Console) -> None:
    async with schedules.run(start="schedules") as (app, pilot):
        await select(pilot, "daily")
        await pilot.press("enter")
        form = app.screen
        assert isinstance(form, ScheduleForm)
        assert form.query_one("#id", Input).disabled
        assert form.query_one("#cron", Input).value == "0 6 * * *"
        fill(form, cron="0 6,18 * * *")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, SchedulesScreen)
        row = [str(c) for c in screen_of(app, SchedulesScreen).table.get_row("daily")]
        assert row[2] == "every day at 06:00 and 18:00 UTC"
    saved = schedules.services.registry.schedules.require("daily")
    assert (saved.cron, saved.name, saved.created_at) == ("0 6,18 * * *", "Daily report", NOW)


async def test_toggle_and_delete_with_a_confirmation(schedules: Console) -> None:
    registry = schedules.services.registry.schedules
    async with schedules.run(start="schedules") as (app, pilot):
        await select(pilot, "weekly")
        await pilot.press("t")
        await settle(pilot)
        assert registry.require("weekly").active is False
        assert str(screen_of(app, SchedulesScreen).table.get_row("weekly")[3]) == "—"
        await pilot.press("x")
        assert isinstance(app.screen, ConfirmModal)
        assert "30 7 * * 1" in app.screen.question
        await pilot.press("n")
        assert registry.get("weekly") is not None
        await pilot.press("x", "y")
        await settle(pilot)
        assert registry.get("weekly") is None
        assert ids_shown(app) == ["btc-hourly", "daily"]

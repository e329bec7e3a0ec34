"""The shell: sections by number key, `:` commands, the palette, `?` help, and what
happens when a call fails (500, 401, a timeout, a lost connection)."""

from __future__ import annotations

import pytest
from textual.command import CommandPalette
from textual.widgets import DataTable, Input

from metric_stream_tui.client import ConnectionLost, Reply, RequestTimedOut
from metric_stream_tui.modals import CommandLine, ConfirmModal, HelpModal
from metric_stream_tui.screens.dashboard import DashboardScreen
from metric_stream_tui.screens.jobs import JobsScreen
from metric_stream_tui.screens.kpis import KpisScreen
from metric_stream_tui.screens.schedules import SchedulesScreen
from metric_stream_tui.widgets import ConnectionBanner
from tests.tui.conftest import SIZE, Console, FailingClient, notes, settle

pytestmark = pytest.mark.anyio


async def test_number_keys_switch_sections_and_keep_their_state(console: Console) -> None:
    app = console.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, DashboardScreen)
        await pilot.press("2")
        await settle(pilot)
        assert isinstance(app.screen, KpisScreen)
        await pilot.press("down", "down")
        kpis = app.screen
        await pilot.press("3")
        assert isinstance(app.screen, JobsScreen)
        await pilot.press("4")
        assert isinstance(app.screen, SchedulesScreen)
        await pilot.press("2")
        assert app.screen is kpis and kpis.table.cursor_row == 2


async def test_the_command_line(console: Console) -> None:
    app = console.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("colon")
        assert isinstance(app.screen, CommandLine)
        await pilot.press(*"jo", "tab", "enter")  # tab completes `jo` to `job`
        assert isinstance(app.screen, JobsScreen)
        for command, screen in (("kpi", KpisScreen), ("1", DashboardScreen)):
            await pilot.press("colon", *command, "enter")
            assert isinstance(app.screen, screen), command
        await pilot.press("colon", *"zz", "enter")
        assert any("unknown command :zz" in n for n in notes(app))
        app.run_command(":light")
        assert app.theme == "textual-light"
        await pilot.press("colon", "escape")
        assert isinstance(app.screen, DashboardScreen)
        await pilot.press("colon", "q", "enter")
    assert app.return_code == 0


async def test_the_palette_lists_sections_and_screen_actions(console: Console) -> None:
    app = console.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await pilot.press("ctrl+p")
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"to job")
        await pilot.pause(0.2)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, JobsScreen)
        await pilot.press("ctrl+p", *"run n")
        await pilot.pause(0.2)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmModal)  # the jobs screen's own action
        await pilot.press("n")


async def test_help_lists_the_keys_of_the_current_screen(console: Console) -> None:
    app = console.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2", "question_mark")
        assert isinstance(app.screen, HelpModal)
        text = str(app.screen.query_one("Static").render())
        assert "KPIs" in text and "Import" in text and "Delete" in text
        assert "Focus Next" not in text  # Textual's own keys are not ours to list
        assert ":q" not in text or "quit" in text
        await pilot.press("escape")
        assert isinstance(app.screen, KpisScreen)


async def test_a_server_error_is_told_and_the_screen_stays_usable(console: Console) -> None:
    body = b'{"error":{"code":"internal_error","message":"internal error; quote request id 5f3a"}}'
    client = FailingClient(console, {"GET /api/kpis": Reply(500, "application/json", body)})
    async with console.run(client, start="kpis") as (app, pilot):
        assert any("quote request id 5f3a" in n for n in notes(app))
        assert app.screen.table.row_count == 0
        del client.failures["GET /api/kpis"]
        await pilot.press("r")
        await settle(pilot)
        assert app.screen.table.row_count == len(console.services.registry.kpis.ids())


async def test_401_says_which_key_is_wrong(console: Console) -> None:
    body = b'{"error":{"code":"unauthorized","message":"authentication failed"}}'
    client = FailingClient(console, {"GET /api/jobs": Reply(401, "application/json", body)})
    async with console.run(client, start="jobs") as (app, pilot):
        (message,) = [n for n in notes(app) if "authentication failed" in n]
        assert "METRIC_STREAM_ADMIN_KEY" in message
        await pilot.press("2")
        await settle(pilot)
        assert app.screen.table.row_count > 0  # other calls still work


async def test_a_timeout_is_told_and_a_retry_works(console: Console) -> None:
    client = FailingClient(console, {"GET /api/jobs": RequestTimedOut(
        "http://api.example did not answer GET /api/jobs in time")})
    async with console.run(client, start="jobs") as (app, pilot):
        assert any("did not answer GET /api/jobs in time" in n for n in notes(app))
        assert not app.offline  # a slow answer is not a lost connection
        del client.failures["GET /api/jobs"]
        await pilot.press("r")
        await settle(pilot)
        assert app.screen.table.row_count == 3


async def test_a_lost_connection_shows_a_banner_and_comes_back(console: Console) -> None:
    lost = ConnectionLost("cannot reach http://127.0.0.1:9: Connection refused")
    client = FailingClient(console, {"GET /api/": lost})
    app = console.app(client, start="kpis")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        banner = app.screen.query_one(ConnectionBanner)
        assert banner.has_class("-shown")
        assert "Connection refused" in str(banner.render())
        assert "trying again" in str(banner.render())
        await pilot.press("3")  # still usable meanwhile
        assert app.screen.query_one(ConnectionBanner).has_class("-shown")
        await pilot.press("2")
        del client.failures["GET /api/"]
        await pilot.pause(0.6)
        assert not app.offline and not banner.has_class("-shown")
        assert "Connection restored" in notes(app)
        await settle(pilot)
        assert app.screen.query_one(DataTable).row_count > 0  # reloaded


async def test_nothing_is_typed_into_a_hidden_filter(console: Console) -> None:
    async with console.run(start="kpis") as (app, pilot):
        assert isinstance(app.focused, DataTable)
        await pilot.press("slash")
        assert isinstance(app.focused, Input)


async def test_the_mouse_switches_sections_and_sorts(console: Console) -> None:
    async with console.run(start="kpis") as (app, pilot):
        bar = str(app.screen.query_one("#sections").render())
        await pilot.click("#sections", offset=(bar.index("3 Jobs"), 0))
        await settle(pilot)
        assert isinstance(app.screen, JobsScreen)
        screen = app.screen
        assert (screen.sort_column, screen.sort_reverse) == (0, True)  # newest first
        await pilot.click("#list", offset=(3, 0))  # the first header: reversed
        assert (screen.sort_column, screen.sort_reverse) == (0, False)

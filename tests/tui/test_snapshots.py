"""SVG snapshots of the console's screens at 120x40, on the seeded store with its
fixed clock, the live refresh paused and the cursor still: run twice, they match.
`tox -e snapshots` rewrites them (then look at tests/tui/__snapshots__)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input

from metric_stream_tui.screens.kpis import KpisScreen
from tests.tui.conftest import SIZE, Console, settle

SnapCompare = Callable[..., bool]


def then(*keys: str, select: str | None = None,
         fill: dict[str, str] | None = None) -> Callable[[Pilot[Any]], Awaitable[None]]:
    """Wait for the data; optionally select a KPI row; press `keys`; fill inputs of the
    screen on top; wait again."""

    async def run(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        if select is not None:
            screen = pilot.app.screen
            assert isinstance(screen, KpisScreen)
            screen.table.move_cursor(row=screen.table.get_row_index(select))
        for key in keys:
            await pilot.press(key)
            await settle(pilot)
        for name, value in (fill or {}).items():
            pilot.app.screen.query_one(f"#{name}", Input).value = value

    return run


def test_dashboard(snap_compare: SnapCompare, frozen_console: Console) -> None:
    assert snap_compare(frozen_console.app(), terminal_size=SIZE, run_before=then())


def test_kpis(snap_compare: SnapCompare, frozen_console: Console) -> None:
    assert snap_compare(frozen_console.app(start="kpis"), terminal_size=SIZE,
                        run_before=then())


def test_kpi_detail(snap_compare: SnapCompare, frozen_console: Console) -> None:
    assert snap_compare(frozen_console.app(start="kpis"), terminal_size=SIZE,
                        run_before=then("enter", select="demo-btc-price-usd"))


def test_kpi_form_with_errors(snap_compare: SnapCompare, frozen_console: Console) -> None:
    async def run(pilot: Pilot[Any]) -> None:
        await then("e", select="demo-fear-greed-index",
                   fill={"name": "", "low": "90", "high": "10"})(pilot)
        await pilot.press("ctrl+s")
        await settle(pilot)

    assert snap_compare(frozen_console.app(start="kpis"), terminal_size=SIZE, run_before=run)


def test_jobs(snap_compare: SnapCompare, frozen_console: Console) -> None:
    assert snap_compare(frozen_console.app(start="jobs"), terminal_size=SIZE,
                        run_before=then())


def test_job_detail(snap_compare: SnapCompare, frozen_console: Console) -> None:
    assert snap_compare(frozen_console.app(start="jobs"), terminal_size=SIZE,
                        run_before=then("enter"))


def test_job_detail_light_theme(snap_compare: SnapCompare, frozen_console: Console) -> None:
    app = frozen_console.app(start="jobs")
    app.theme = "textual-light"
    assert snap_compare(app, terminal_size=SIZE, run_before=then("enter"))

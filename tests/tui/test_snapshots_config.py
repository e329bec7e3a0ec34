"""SVG snapshots of the Configuration and Workflows screens, at the size and with the
frozen clock and still cursor of test_snapshots.py. `tox -e snapshots` rewrites them."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input, TextArea

from metric_stream_tui.screens.workflows import WorkflowsScreen
from tests.tui.conftest import SIZE, Console, settle
from tests.tui.test_snapshots import SnapCompare
from tests.tui.test_workflows import n8n_console


def then(*keys: str, fill: dict[str, str] | None = None, chains: str | None = None,
         select: str | None = None) -> Callable[[Pilot[Any]], Awaitable[None]]:
    """Wait for the data; select a row; fill inputs (and the chains' JSON); press `keys`;
    wait again."""

    async def run(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        screen = pilot.app.screen
        if select is not None:
            assert isinstance(screen, WorkflowsScreen)
            screen.table.move_cursor(row=screen.table.get_row_index(select))
        for name, value in (fill or {}).items():
            screen.query_one(f"#{name}", Input).value = value
        if chains is not None:
            screen.query_one("#analysisChains", TextArea).load_text(chains)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)

    return run


def test_config(snap_compare: SnapCompare, frozen_console: Console) -> None:
    assert snap_compare(frozen_console.app(start="config"), terminal_size=SIZE,
                        run_before=then())


def test_config_with_errors(snap_compare: SnapCompare, frozen_console: Console) -> None:
    assert snap_compare(frozen_console.app(start="config"), terminal_size=SIZE,
                        run_before=then("ctrl+s", fill={
                            "retry-llm-retries": "3", "lifecycle-fanInTimeoutS": "5",
                            "llm-temperature": "3"}))


def test_config_chains_syntax_error(snap_compare: SnapCompare,
                                    frozen_console: Console) -> None:
    chains = json.dumps({"default": {"steps": [
        {"kind": "synthesis", "provider": "anthropic", "model": "claude-sonnet-4-5"}]}},
        indent=2).replace('"anthropic",', '"anthropic"')
    assert snap_compare(frozen_console.app(start="config"), terminal_size=SIZE,
                        run_before=then("ctrl+s", chains=chains))


def test_workflows(snap_compare: SnapCompare) -> None:
    assert snap_compare(n8n_console(None).app(start="workflows"), terminal_size=SIZE,
                        run_before=then(select="fear-greed-index"))


def test_workflows_pause_asks(snap_compare: SnapCompare) -> None:
    assert snap_compare(n8n_console(None).app(start="workflows"), terminal_size=SIZE,
                        run_before=then("p", select="fear-greed-index"))


def test_workflows_none_linked(snap_compare: SnapCompare, frozen_console: Console) -> None:
    assert snap_compare(frozen_console.app(start="workflows"), terminal_size=SIZE,
                        run_before=then())

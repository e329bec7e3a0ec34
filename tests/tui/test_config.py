"""The Configuration screen against the embedded store: a value the API refuses is
shown under its field and nothing is saved; a valid edit is saved whole; the chains'
JSON is checked before it is sent (line and column of a syntax error), then by the API
(its message under the chains)."""

from __future__ import annotations

import json

import pytest
from textual.widgets import Checkbox, Input, Static, TextArea

from metric_stream_tui.client import Reply
from metric_stream_tui.modals import ConfirmModal
from metric_stream_tui.screens.config import ConfigScreen, field_of, parse_chains, parse_text
from metric_stream_tui.screens.config import Setting as ConfigSetting
from tests.tui.conftest import (
    Console,
    FailingClient,
    error_of,
    fill,
    notes,
    screen_of,
    settle,
)

pytestmark = pytest.mark.anyio


def problem_of(screen: ConfigScreen) -> str:
    problem = screen.query_one("#problem", Static)
    return "" if problem.has_class("-empty") else str(problem.render())


async def test_shows_the_stored_config(console: Console) -> None:
    async with console.run(start="config") as (app, _):
        screen = screen_of(app, ConfigScreen)
        assert screen.query_one("#retry-llm-delaysS", Input).value == "2, 4"
        assert screen.query_one("#lifecycle-fanInTimeoutS", Input).value == "1800"
        assert screen.query_one("#llm-consolidated", Checkbox).value is True
        assert screen.query_one("#delivery-storageAlertBytes", Input).value == ""
        chains = json.loads(screen.query_one("#analysisChains", TextArea).text)
        assert [s["kind"] for s in chains["default"]["steps"]] == [
            "image", "numerical", "technical", "synthesis"]
        assert not screen.edited


async def test_an_invalid_value_shows_the_api_error_inline_and_saves_nothing(
        console: Console) -> None:
    before = console.services.config.get()
    async with console.run(start="config") as (app, pilot):
        screen = screen_of(app, ConfigScreen)
        # three retries for the LLM, but only two waits; a fan-in timeout below 10 s
        fill(screen, **{"retry-llm-retries": "3", "lifecycle-fanInTimeoutS": "5"})
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "one wait per retry (3), got 2" in error_of(screen, "retry-llm-delaysS")
        assert "greater than or equal to 10" in error_of(screen, "lifecycle-fanInTimeoutS")
        assert "422" in problem_of(screen) and "nothing was saved" in problem_of(screen)
        assert app.focused is screen.query_one("#retry-llm-delaysS", Input)
        # a value that is not a number is said without asking the API
        fill(screen, **{"retry-llm-retries": "three", "lifecycle-fanInTimeoutS": "1800"})
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert error_of(screen, "retry-llm-retries") == "must be a whole number"
        assert error_of(screen, "lifecycle-fanInTimeoutS") == ""
    assert console.services.config.get() == before


async def test_a_valid_edit_is_saved_whole(console: Console) -> None:
    async with console.run(start="config") as (app, pilot):
        screen = screen_of(app, ConfigScreen)
        fill(screen, **{"retry-llm-retries": "3", "retry-llm-delaysS": "2, 4, 8",
                        "llm-temperature": "0.5", "delivery-storageAlertBytes": "1000000"})
        screen.query_one("#lifecycle-deliverPartial", Checkbox).value = False
        assert screen.edited
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "Configuration saved" in notes(app)
        assert problem_of(screen) == ""
        assert not screen.edited
    saved = await console.client.config()
    assert saved["retry"]["llm"] == {"retries": 3, "delaysS": [2.0, 4.0, 8.0]}
    assert saved["llm"]["temperature"] == 0.5
    assert saved["delivery"]["storageAlertBytes"] == 1_000_000
    assert saved["lifecycle"]["deliverPartial"] is False
    assert saved["retry"]["collection"] == {"retries": 3, "delaysS": [1.0, 2.0, 4.0]}  # kept
    assert list(saved["analysisChains"]) == ["default"]


async def test_chains_with_a_syntax_error_are_not_sent(console: Console) -> None:
    client = FailingClient(console, {})
    async with console.run(client, start="config") as (app, pilot):
        screen = screen_of(app, ConfigScreen)
        area = screen.query_one("#analysisChains", TextArea)
        area.load_text('{\n  "default": {\n    "steps": []\n  }\n  "fast": {}\n}')
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert error_of(screen, "analysisChains") == (
            "line 5, column 3: Expecting ',' delimiter")
        assert app.focused is area and area.cursor_location == (4, 2)
        assert "cannot be sent as typed" in problem_of(screen)
        assert "PUT /api/config" not in client.calls


async def test_chains_the_api_refuses_show_its_message(console: Console) -> None:
    async with console.run(start="config") as (app, pilot):
        screen = screen_of(app, ConfigScreen)
        area = screen.query_one("#analysisChains", TextArea)
        chains = json.loads(area.text)
        chains["default"]["steps"][1]["provider"] = "openai"
        area.load_text(json.dumps(chains, indent=2))
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert error_of(screen, "analysisChains") == (
            "analysisChains.default.steps.1.provider: must be 'openrouter', "
            "'gemini' or 'anthropic'")
        # a rule across fields: the default chain must be one of the chains
        area.load_text(json.dumps({"fast": {"steps": chains["default"]["steps"][:1]}}))
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert error_of(screen, "analysisChains") == ""
        assert "'default' is not in analysisChains" in error_of(screen, "defaultChain")
        fill(screen, defaultChain="fast")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert problem_of(screen) == ""
    assert list(console.services.config.get().analysis_chains) == ["fast"]


async def test_a_server_error_is_a_notification(console: Console) -> None:
    client = FailingClient(console, {"PUT /api/config": Reply(
        500, body=b'{"error": {"code": "internal", "message": "the store is read-only"}}')})
    async with console.run(client, start="config") as (app, pilot):
        screen = screen_of(app, ConfigScreen)
        fill(screen, **{"llm-maxTokens": "2048"})
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "the store is read-only" in notes(app)
        assert screen.query_one("#llm-maxTokens", Input).value == "2048"  # still there


async def test_reload_asks_before_discarding_edits(console: Console) -> None:
    async with console.run(start="config") as (app, pilot):
        screen = screen_of(app, ConfigScreen)
        screen.query_one("#llm-consolidated", Checkbox).focus()
        fill(screen, **{"llm-maxTokens": "2048"})
        await pilot.press("r")
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("n")
        assert screen.query_one("#llm-maxTokens", Input).value == "2048"
        await pilot.press("r", "y")
        await settle(pilot)
        assert screen.query_one("#llm-maxTokens", Input).value == "1024"


def test_field_texts_and_error_paths() -> None:
    waits = ConfigSetting("retry.llm.delaysS", "waits", "waits")
    assert parse_text(waits, "1, 2;4 8") == [1.0, 2.0, 4.0, 8.0]
    assert parse_text(ConfigSetting("llm.jobTokenBudget", "", "optional_int"), " ") is None
    with pytest.raises(ValueError, match="line 1, column 2"):
        parse_chains("{]")
    with pytest.raises(ValueError, match="must be a JSON object"):
        parse_chains("[]")
    assert field_of("retry.llm") == "retry-llm-delaysS"
    assert field_of("retry.llm.delaysS.0") == "retry-llm-delaysS"
    assert field_of("analysisChains.x.steps") == "analysisChains"
    assert field_of("updatedAt") is None


async def test_number_keys_leave_and_come_back_to_the_edits(console: Console) -> None:
    async with console.run(start="config") as (app, pilot):
        screen = screen_of(app, ConfigScreen)
        await pilot.press("tab")  # into the first field: keys type there
        assert app.focused is screen.query_one("#retry-collection-retries", Input)
        await pilot.press("backspace", "5")
        assert screen.query_one("#retry-collection-retries", Input).value == "5"
        await pilot.press("escape", "3")  # out of the field: 3 is Jobs
        assert not isinstance(app.screen, ConfigScreen)
        await pilot.press("6")
        assert app.screen is screen and screen.edited

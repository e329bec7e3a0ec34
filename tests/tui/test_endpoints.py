"""The Endpoints screen against the embedded store: health said plainly, URLs masked,
the filter, add with invalid URLs (the API's reasons under the field) and the signing
secret shown once, edit keeping the stored URL, delete with a confirmation, test sends
to a local HTTP sink, and a list of 5,000 endpoints that answers a key at once."""

from __future__ import annotations

import statistics
import time
from datetime import timedelta

import pytest
from textual.widgets import Input, Select

from metric_stream.models.delivery import DeliveryEndpoint, EndpointHealth
from metric_stream_tui.app import AdminApp
from metric_stream_tui.client import Reply
from metric_stream_tui.modals import ConfirmModal
from metric_stream_tui.screens.endpoint_form import EndpointForm, SecretModal
from metric_stream_tui.screens.endpoints import EndpointsScreen
from tests.delivery_sink import running_sink
from tests.tui.conftest import (
    NOW,
    Console,
    FailingClient,
    error_of,
    fill,
    ids_shown,
    screen_of,
    select,
    settle,
)

pytestmark = pytest.mark.anyio
MANY = 5_000


@pytest.fixture
def endpoints(console: Console) -> Console:
    """The seeded store (`team-mail`, `ops-hook`) with one endpoint failing and one
    disabled."""
    registry = console.services.registry.endpoints
    registry.create(DeliveryEndpoint(
        id="chat-ops", name="Ops chat", url="tgram://123456:ABCDEF/987", operator=True,
        health=EndpointHealth(consecutive_failures=4, failing_since=NOW - timedelta(hours=3),
                              last_error="HTTP 502")))
    registry.create(DeliveryEndpoint(
        id="old-hook", name="Old receiver", url="https://old.example.com/in?key=s3cret",
        active=False, kpis=["demo-btc-price-usd"],
        health=EndpointHealth(disabled_reason="the service says the address is gone (HTTP 410)",
                              disabled_at=NOW)))
    return console


def row_of(app: AdminApp, endpoint_id: str) -> list[str]:
    return [str(c) for c in screen_of(app, EndpointsScreen).table.get_row(endpoint_id)]


async def test_health_masked_urls_and_filter(endpoints: Console) -> None:
    async with endpoints.run(start="endpoints") as (app, pilot):
        assert ids_shown(app) == ["chat-ops", "old-hook", "ops-hook", "team-mail"]
        assert row_of(app, "ops-hook")[1:5] == [
            "webhook", "https://hooks.example.com/***", "every report", "● ok"]
        assert row_of(app, "chat-ops")[1:] == [
            "telegram", "tgram://***", "every report", "▲ failing since 2026-11-29 06:30",
            "operator"]
        old = row_of(app, "old-hook")
        assert old[2:5] == ["https://old.example.com/***?***", "1 KPI",
                            "✗ disabled: the service says the address is gone (HTTP 410)"]
        await select(pilot, "chat-ops")
        details = str(screen_of(app, EndpointsScreen).query_one("#details").render())
        assert "4 failures in a row" in details and "last error: HTTP 502" in details
        assert not any("s3cret" in cell or "ABCDEF" in cell
                       for row in screen_of(app, EndpointsScreen).rows
                       for cell in map(str, row.values()))
        await pilot.press("slash", *"failing")
        assert ids_shown(app) == ["chat-ops"]
        await pilot.press("escape", "slash", *"email")
        assert ids_shown(app) == ["team-mail"]
        await pilot.press("escape")
        await pilot.press(*"ssss")  # by health: the worst first
        assert ids_shown(app)[:2] == ["old-hook", "chat-ops"]


@pytest.mark.filterwarnings("ignore:'imghdr' is deprecated:DeprecationWarning")
async def test_add_with_invalid_urls_then_the_secret_once_then_a_test_send(
        endpoints: Console) -> None:
    registry = endpoints.services.registry.endpoints
    with running_sink() as sink:
        async with endpoints.run(start="endpoints") as (app, pilot):
            await pilot.press("a")
            form = app.screen
            assert isinstance(form, EndpointForm)
            fill(form, id="new-hook", name="New receiver", url="not a url")
            await pilot.press("ctrl+s")
            await settle(pilot)
            assert app.screen is form
            assert "must be a URL with a scheme" in error_of(form, "url")
            assert "422" in str(form.query_one("#problem").render())
            fill(form, url="https://10.1.2.3/hook")  # an address it may not call
            await pilot.press("ctrl+s")
            await settle(pilot)
            assert "private or link-local address" in error_of(form, "url")
            assert "403" in str(form.query_one("#problem").render())
            fill(form, url=sink.on("/hooks/new"))
            await pilot.press("ctrl+s")
            await settle(pilot)
            modal = app.screen
            assert isinstance(modal, SecretModal)
            stored = registry.require("new-hook").signing_secret
            assert stored is not None and modal.secret == stored
            assert stored in str(modal.query_one("#secret").render())
            await pilot.press("escape")
            await settle(pilot)
            screen = screen_of(app, EndpointsScreen)
            assert screen.selected_key == "new-hook"
            assert not any("whsec_" in str(v) for row in screen.rows for v in row.values())
            assert " signed" in str(screen.query_one("#details").render())

            await pilot.press("t")  # a test message, signed with that secret
            await settle(pilot)
            [hit] = sink.hits("/hooks/new")
            assert "webhook-signature" in hit.headers
            result = str(screen.query_one("#test-result").render())
            assert "✓ delivered" in result and "HTTP 200" in result and "1 attempt" in result
            assert "http://127.0.0.1" in result and "/***" in result
            assert isinstance(app.screen, EndpointsScreen)

            # reopened: the secret is not there to be read
            await pilot.press("e")
            edit = app.screen
            assert isinstance(edit, EndpointForm)
            assert not any("whsec_" in i.value for i in edit.query(Input))


async def test_a_failed_test_send_says_why(endpoints: Console) -> None:
    with running_sink() as sink:
        endpoints.services.registry.endpoints.create(DeliveryEndpoint(
            id="gone-hook", name="Gone", url=sink.on("/gone", status=410)))
        async with endpoints.run(start="endpoints") as (app, pilot):
            await select(pilot, "gone-hook")
            await pilot.press("t")
            await settle(pilot)
            result = str(screen_of(app, EndpointsScreen).query_one("#test-result").render())
            assert "✗ not delivered" in result and "HTTP 410" in result
            assert "the address is gone" in result
            assert any("not delivered" in str(n.message) and n.severity == "error"
                       for n in app._notifications)
        assert len(sink.hits("/gone")) == 1  # gone: no retry


async def test_a_server_error_is_said_and_the_screen_stays_usable(endpoints: Console) -> None:
    failing = FailingClient(endpoints, {"POST /api/endpoints/ops-hook/test": Reply(
        500, body=b'{"error": {"code": "internal", "message": "the queue is on fire"}}')})
    async with endpoints.run(failing, start="endpoints") as (app, pilot):
        await select(pilot, "ops-hook")
        await pilot.press("t")
        await settle(pilot)
        assert any("the queue is on fire" in str(n.message) for n in app._notifications)
        assert "could not be sent" in str(
            screen_of(app, EndpointsScreen).query_one("#test-result").render())
        await pilot.press("down")
        assert screen_of(app, EndpointsScreen).selected_key == "team-mail"


async def test_edit_keeps_the_stored_url_and_shows_kpi_errors(endpoints: Console) -> None:
    registry = endpoints.services.registry.endpoints
    async with endpoints.run(start="endpoints") as (app, pilot):
        await select(pilot, "ops-hook")
        await pilot.press("enter")
        form = app.screen
        assert isinstance(form, EndpointForm)
        assert form.query_one("#id", Input).disabled
        assert form.query_one("#url", Input).value == "https://hooks.example.com/***"
        fill(form, name="Ops webhook (prod)")
        form.query_one("#kpis", Select).value = "list"
        await pilot.pause()
        assert form.query_one("#kpiList").display
        fill(form, kpiList="demo-btc-price-usd, nope")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is form
        assert "['nope'], which are not in the registry" in error_of(form, "kpis")
        fill(form, kpiList="demo-btc-price-usd demo-eth-price-usd")
        await pilot.click("#operator")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, EndpointsScreen)
        assert row_of(app, "ops-hook")[3] == "2 KPIs"
        details = str(screen_of(app, EndpointsScreen).query_one("#details").render())
        assert "receives demo-btc-price-usd, demo-eth-price-usd" in details
    saved = registry.require("ops-hook")
    assert saved.url == "https://hooks.example.com/metric-stream/T0K3N"  # kept
    assert (saved.name, saved.kpis, saved.operator) == (
        "Ops webhook (prod)", ["demo-btc-price-usd", "demo-eth-price-usd"], True)


async def test_delete_asks_first(endpoints: Console) -> None:
    registry = endpoints.services.registry.endpoints
    async with endpoints.run(start="endpoints") as (app, pilot):
        await select(pilot, "team-mail")
        await pilot.press("x")
        assert isinstance(app.screen, ConfirmModal)
        assert "mailto://***" in app.screen.question
        await pilot.press("escape")
        assert registry.get("team-mail") is not None
        await pilot.press("x", "y")
        await settle(pilot)
        assert registry.get("team-mail") is None
        assert "team-mail" not in ids_shown(app)


async def test_five_thousand_endpoints_answer_a_key_at_once(console: Console) -> None:
    services = console.services
    puts = [services.registry.endpoints.put_op(DeliveryEndpoint(
        id=f"hook-{n:05d}", name=f"Receiver {n}",
        url=f"https://receiver-{n % 50}.example.com/hooks/{n}")) for n in range(MANY)]
    for start in range(0, len(puts), 500):
        services.records.put_many(puts[start:start + 500])
    async with console.run(start="endpoints") as (app, pilot):
        screen = screen_of(app, EndpointsScreen)
        assert screen.table.row_count == MANY + 2
        took = []
        for _ in range(7):
            began = time.perf_counter()
            await pilot.press("down")  # pressed, handled and the screen updated
            took.append(time.perf_counter() - began)
        assert screen.table.cursor_row == 7
        # end to end through Pilot, whose own waits for idle are most of it (65-90 ms on a
        # list of 4 rows too; the table's own work is ~2 ms): this only guards against a
        # list that re-renders its rows on a key
        assert statistics.median(took) < 0.15, f"keypresses took {took} s"
        await pilot.press("slash", *"receiver-7.")
        await pilot.pause(0.2)  # a long list re-filters once typing pauses
        await pilot.pause()
        assert screen.table.row_count == MANY // 50

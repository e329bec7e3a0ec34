"""The KPIs screen against the embedded store: filter, sort, add, edit with an invalid
value (the API's error shown under the field), toggle, delete with a confirmation,
drill into the chart and back, import a CSV."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input

from metric_stream_tui.modals import ConfirmModal
from metric_stream_tui.screens.kpi_detail import KpiDetailScreen
from metric_stream_tui.screens.kpi_form import KpiForm
from metric_stream_tui.screens.kpi_import import KpiImport, complete_path
from metric_stream_tui.screens.kpis import KpisScreen
from tests.tui.conftest import Console, error_of, fill, ids_shown, screen_of, select, settle

pytestmark = pytest.mark.anyio


async def test_filter_and_sort(console: Console) -> None:
    async with console.run(start="kpis") as (app, pilot):
        everything = ids_shown(app)
        assert everything == sorted(everything) and len(everything) == 7
        await pilot.press("slash", *"price")
        assert ids_shown(app) == ["demo-btc-price-usd", "demo-eth-price-usd"]
        await pilot.press("enter")  # back to the list, the filter kept
        assert app.focused is screen_of(app, KpisScreen).table
        assert len(ids_shown(app)) == 2
        await pilot.press("escape")
        assert ids_shown(app) == everything
        await pilot.press("s")  # by name
        names = [str(screen_of(app, KpisScreen).table.get_row_at(r)[1])
                 for r in range(screen_of(app, KpisScreen).table.row_count)]
        assert names == sorted(names, key=str.lower)


async def test_add_a_kpi(console: Console) -> None:
    async with console.run(start="kpis") as (app, pilot):
        await pilot.press("a")
        form = app.screen
        assert isinstance(form, KpiForm)
        fill(form, id="sol-price", name="SOL price", kpiType="price", unit="USD",
             collector="demo", params='{"kind": "alt-price"}', low="20", high="400")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, KpisScreen)
        saved = console.services.registry.kpis.require("sol-price")
        assert (saved.name, saved.unit, saved.analysis_config.low,
                saved.analysis_config.high) == ("SOL price", "USD", 20.0, 400.0)
        assert screen_of(app, KpisScreen).selected_key == "sol-price"


async def test_edit_with_invalid_values_shows_the_api_errors_inline(console: Console) -> None:
    async with console.run(start="kpis") as (app, pilot):
        await select(pilot, "demo-btc-price-usd")
        await pilot.press("e")
        form = app.screen
        assert isinstance(form, KpiForm)
        assert form.query_one("#id", Input).disabled
        fill(form, name="   ", kpiType="not a type!")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is form  # still open
        assert "at least 1 character" in error_of(form, "name")
        assert "letters, digits" in error_of(form, "kpiType")
        assert "422" in str(form.query_one("#problem").render())
        # a value the form cannot send at all is said without asking the API
        fill(form, name="BTC", kpiType="btc-price", low="cheap")
        await pilot.press("ctrl+s")
        assert "must be a number" in error_of(form, "low")
        assert error_of(form, "name") == ""
        fill(form, low="90000", high="50000")  # the API refuses low above high
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "low must be below high" in error_of(form, "low")
        fill(form, low="50000", high="90000")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, KpisScreen)
        saved = console.services.registry.kpis.require("demo-btc-price-usd")
        assert (saved.name, saved.analysis_config.low) == ("BTC", 50000.0)
        assert saved.description.startswith("Simulated")  # fields not in the form kept


async def test_toggle_active(console: Console) -> None:
    async with console.run(start="kpis") as (app, pilot):
        await select(pilot, "demo-eth-price-usd")
        await pilot.press("t")
        await settle(pilot)
        assert console.services.registry.kpis.require("demo-eth-price-usd").active is False
        assert "off" in str(screen_of(app, KpisScreen).table.get_row("demo-eth-price-usd")[-1])
        await pilot.press("t")
        await settle(pilot)
        assert console.services.registry.kpis.require("demo-eth-price-usd").active is True


async def test_delete_asks_first(console: Console) -> None:
    async with console.run(start="kpis") as (app, pilot):
        await select(pilot, "demo-cbbi-multi")
        await pilot.press("x")
        assert isinstance(app.screen, ConfirmModal)
        assert "the 3 KPIs it yields" in app.screen.question
        await pilot.press("n")
        assert console.services.registry.kpis.get("demo-cbbi-multi") is not None
        await pilot.press("x", "y")
        await settle(pilot)
        assert console.services.registry.kpis.get("demo-cbbi-multi") is None
        assert "demo-cbbi-multi" not in ids_shown(app)


async def test_chart_ranges_series_and_back(console: Console) -> None:
    async with console.run(start="kpis") as (app, pilot):
        await select(pilot, "demo-cbbi-multi")
        await pilot.press("enter")
        await settle(pilot)
        detail = app.screen
        assert isinstance(detail, KpiDetailScreen)
        assert detail.kpi_id == "demo-cbbi-confidence" and len(detail.points) == 90
        figures = str(detail.query_one("#analytics").render())
        assert "latest" in figures and "over 90d (90 points)" in figures
        assert "below 0.1 · above 0.9" in figures  # this series' own bounds
        await pilot.press("w")
        await settle(pilot)
        assert detail.range_name == "7d" and len(detail.points) == 7
        await pilot.press("a")
        await settle(pilot)
        assert len(detail.points) == 365
        await pilot.press("n")
        await settle(pilot)
        assert detail.kpi_id == "demo-cbbi-mvrv"
        await pilot.press("escape")
        assert isinstance(app.screen, KpisScreen)
        assert screen_of(app, KpisScreen).selected_key == "demo-cbbi-multi"


async def test_import_a_csv_and_read_its_report(console: Console, tmp_path: Path) -> None:
    history = tmp_path / "eth-history.csv"
    history.write_text("timestamp,value,metadata\n"
                       "2024-01-01T00:00:00Z,2281.5,\n"
                       "2024-01-02T00:00:00Z,2352.0,\n"
                       "yesterday,2400,\n"
                       "2024-01-03T00:00:00Z,not-a-number,\n")
    async with console.run(start="kpis") as (app, pilot):
        await select(pilot, "demo-eth-price-usd")
        await pilot.press("i")
        dialog = app.screen
        assert isinstance(dialog, KpiImport)
        await pilot.press(*"eth-h", "tab")  # completes the file name
        assert dialog.query_one("#path", Input).value == "eth-history.csv"
        await pilot.press("enter")
        await settle(pilot)
        report = str(dialog.query_one("#report").render())
        assert "2 of 4 rows imported" in report and "2 refused" in report
        refused = str(dialog.query_one("#refused-rows").render())
        assert "row 4 yesterday" in refused and "row 5" in refused  # file lines
        await pilot.press("escape")
        assert isinstance(app.screen, KpisScreen)
    points = console.services.timeseries.points("demo-eth-price-usd")
    assert [p.value for p in points[:2]] == [2281.5, 2352.0]


def test_path_completion(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "btc.csv").write_text("")
    (tmp_path / "data" / "notes.txt").write_text("")
    (tmp_path / "data" / ".hidden.csv").write_text("")
    base = str(tmp_path)
    assert complete_path(f"{base}/da") == f"{base}/data/"
    assert complete_path(f"{base}/data/") == f"{base}/data/btc.csv"
    assert complete_path(f"{base}/data/n") is None  # not a CSV
    assert complete_path(f"{base}/data/.h") == f"{base}/data/.hidden.csv"
    assert complete_path(f"{base}/nowhere/x") is None

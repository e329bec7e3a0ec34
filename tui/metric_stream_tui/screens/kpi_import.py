"""Import a KPI's history from a CSV file (`timestamp,value,metadata`): type a path
(`tab` or `→` completes it) or pick the file in the tree; the API's validation report
follows — rows imported, duplicates, and each refused row with its reason."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.markup import escape
from textual.suggester import Suggester
from textual.widgets import Button, DirectoryTree, Input, Select, Static

from metric_stream_tui.format import toned
from metric_stream_tui.modals import CompletingInput
from metric_stream_tui.screens.base import AdminModal
from metric_stream_tui.widgets import FormField


def complete_path(value: str) -> str | None:
    """`value` completed to the first folder or `.csv` file it starts (hidden names only
    when asked for with a leading dot)."""
    if not value:
        return None
    path = Path(value).expanduser()
    folder, stem = (path, "") if value.endswith("/") else (path.parent, path.name)
    try:
        names = sorted((p for p in folder.iterdir()
                        if p.name.startswith(stem) and p.name != stem
                        and (not p.name.startswith(".") or stem.startswith("."))
                        and (p.is_dir() or p.suffix.lower() == ".csv")),
                       key=lambda p: (not p.is_dir(), p.name))
    except OSError:
        return None
    if not names:
        return None
    first = names[0]
    return value + first.name[len(stem):] + ("/" if first.is_dir() else "")


class PathSuggester(Suggester):
    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        return await asyncio.to_thread(complete_path, value)


class CsvTree(DirectoryTree):
    """Folders and CSV files only."""

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [p for p in paths if not p.name.startswith(".")
                and (p.is_dir() or p.suffix.lower() == ".csv")]


class KpiImport(AdminModal[dict[str, Any]]):
    """Dismissed with the import's report (None when nothing was imported)."""

    DEFAULT_CSS = """
    KpiImport #pick { height: auto; }
    KpiImport #pick FormField { margin-bottom: 1; }
    KpiImport #pick Input, KpiImport #pick Select { background: $boost; padding: 0 1; }
    KpiImport CsvTree { height: 12; background: $boost; margin-bottom: 1; }
    KpiImport #report { height: auto; margin-bottom: 1; }
    KpiImport #refused { height: auto; max-height: 14; background: $boost; padding: 0 1; }
    KpiImport.-done CsvTree, KpiImport.-done #pick, KpiImport.-done #close { display: none; }
    KpiImport #refused, KpiImport #report { display: none; }
    KpiImport.-done #refused, KpiImport.-done #report { display: block; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("ctrl+s", "import", "Import")]

    def __init__(self, entry: Mapping[str, Any], *, kpi_id: str | None = None,
                 root: Path | None = None) -> None:
        super().__init__(classes="dialog")
        self.entry = dict(entry)
        self.yields = [str(k) for k in entry.get("yields") or [entry.get("id")]]
        self.kpi_id = kpi_id or self.yields[0]
        self.root = root or Path.cwd()
        self.report: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box wide") as box:
            box.border_title = f"Import history into {self.entry.get('id')}"
            with Vertical(id="pick"):
                if len(self.yields) > 1:
                    yield FormField("KPI", Select([(k, k) for k in self.yields],
                                                  value=self.kpi_id, allow_blank=False,
                                                  compact=True, id="kpi"), field="kpi")
                yield FormField("CSV file", CompletingInput(
                    placeholder="path/to/history.csv (tab completes)", id="path",
                    suggester=PathSuggester(), compact=True), field="path",
                    hint="columns: timestamp,value,metadata")
                yield CsvTree(self.root, id="tree")
            yield Static("", id="report")
            with VerticalScroll(id="refused"):
                yield Static("", id="refused-rows")
            with Horizontal(classes="buttons"):
                yield Button("Close", id="close", compact=True)
                yield Button("Import", id="import", variant="primary", compact=True)

    def on_mount(self) -> None:
        self.query_one("#path", Input).focus()

    @on(DirectoryTree.FileSelected)
    def _picked(self, event: DirectoryTree.FileSelected) -> None:
        path = self.query_one("#path", Input)
        path.value = str(event.path)
        path.focus()

    @on(Select.Changed, "#kpi")
    def _kpi_changed(self, event: Select.Changed) -> None:
        self.kpi_id = str(event.value)

    @on(Input.Submitted, "#path")
    @on(Button.Pressed, "#import")
    def _go(self) -> None:
        self.action_import()

    @on(Button.Pressed, "#close")
    def _close(self) -> None:
        self.dismiss(self.report)

    def action_cancel(self) -> None:
        self.dismiss(self.report)

    def action_import(self) -> None:
        if self.report is not None:
            self.dismiss(self.report)
            return
        field = self.query_one("#field-path", FormField)
        text = self.query_one("#path", Input).value.strip()
        path = Path(text).expanduser()
        if not text:
            field.show_error("name a CSV file")
        elif not path.is_file():
            field.show_error(f"{path} is not a file")
        else:
            field.show_error(None)
            self.upload(path)

    @work(exclusive=True, group="import", exit_on_error=False)
    async def upload(self, path: Path) -> None:
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except OSError as exc:
            self.query_one("#field-path", FormField).show_error(
                f"cannot read it: {exc.strerror or exc}")
            return
        self.show_report(await self.client.import_csv(self.kpi_id, data, path.name))

    def show_report(self, report: dict[str, Any]) -> None:
        self.report = report
        imported = int(report.get("rowsImported", 0))
        refused = int(report.get("rowsRefused", 0))
        duplicate = int(report.get("rowsDuplicate", 0))
        state = str(report.get("state", ""))
        head = toned("complete" if not refused else "partial" if imported else "failed",
                     f"{imported} of {report.get('rowsTotal', 0)} rows imported")
        lines = [f"{head} into [b]{escape(self.kpi_id)}[/b]",
                 f"{duplicate} already stored (same value) · {refused} refused"
                 + (f" · {escape(state)}" if state else "")]
        if report.get("message"):
            lines.append(f"[$foreground-muted]{escape(str(report['message']))}[/]")
        errors = report.get("errors") or []
        if refused > len(errors):
            lines.append(f"[$foreground-muted]the first {len(errors)} refused rows:[/]")
        self.query_one("#report", Static).update("\n".join(lines))
        self.query_one("#refused-rows", Static).update("\n".join(
            f"[$foreground-muted]row {escape(str(e.get('row', '?')))}[/] "
            f"{escape(str(e.get('timestamp') or '—'))}  [$error]{escape(str(e.get('reason')))}[/]"
            for e in errors))
        self.query_one("#refused").display = bool(errors)
        self.add_class("-done")
        self.query_one("#import", Button).label = "Done"
        self.query_one("#import", Button).focus()

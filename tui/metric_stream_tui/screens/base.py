"""What every screen of the console shares.

`AdminScreen` is a section's page: the section bar on top, the connection banner, the
body (`compose_body`), the footer. Its data comes from `fetch()`, run in a worker by
`reload()` (on mount, on `r`, after a reconnection). A worker that fails — any
`ClientError`, or anything unexpected — is reported by the app (a notification, or the
banner when the connection is lost) and the screen stays usable, so workers need no
`try` of their own: write them as `@work(..., exit_on_error=False)`.

`ListScreen` adds a `DataTable` with the `/` filter and sorting (`s`, or click a
header), and the steps its screens share: reload keeping the cursor on a row, delete
after a confirmation. `AdminModal` is the base of dialogs (forms, confirmations).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.markup import escape
from textual.screen import ModalScreen, Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Input, Static
from textual.worker import Worker, WorkerState

from metric_stream_tui.format import toned_text
from metric_stream_tui.modals import ConfirmModal
from metric_stream_tui.widgets import ConnectionBanner, FilterBar, NavBar

if TYPE_CHECKING:
    from metric_stream_tui.app import AdminApp
    from metric_stream_tui.client import AdminClient

T = TypeVar("T")
FILTER_AT_ONCE = 1000  # rows a list re-filters on every key; above, when typing pauses


class ConsoleNode:
    """Access to the app and its client, and the failure report of workers."""

    @property
    def admin(self) -> AdminApp:
        return self.app  # type: ignore[attr-defined,no-any-return]

    @property
    def client(self) -> AdminClient:
        return self.admin.client

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            self.admin.report(event.worker.error)


class AdminScreen(ConsoleNode, Screen[None]):
    """A section's page (see the module docstring)."""

    section: str = ""
    """The section this screen belongs to (the section bar marks it); a drill-down
    leaves it empty and belongs to the section it was opened from."""
    help_rows: ClassVar[list[tuple[str, str]]] = []
    """Keys the bindings do not show (a widget's own, the mouse), for `?`."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("r", "reload", "Refresh", show=False)]

    def compose(self) -> ComposeResult:
        yield NavBar(self.section or self.app.current_mode)
        yield ConnectionBanner()
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.rerender())
        self.reload()

    async def fetch(self) -> None:
        """Load the screen's data and show it (runs in a worker)."""

    def rerender(self) -> None:
        """Show the data held again (after a theme change, a filter, a sort)."""

    def reload(self) -> None:
        self.load(self.fetch)

    @work(group="load", exclusive=True, exit_on_error=False)
    async def load(self, fetch: Callable[[], Awaitable[None]]) -> None:
        """Run `fetch` as the screen's load (one at a time: a new one cancels the last)."""
        await fetch()

    def answer(self, action: Callable[[], object]) -> Callable[[bool | None], None]:
        """A confirmation's callback: `action()` on yes."""
        def on_answer(yes: bool | None) -> None:
            if yes:
                action()
        return on_answer

    @property
    def loading_now(self) -> bool:
        return any(w.group == "load" and w.is_running for w in self.workers)

    def action_reload(self) -> None:
        self.reload()


class AdminModal(ConsoleNode, ModalScreen[T]):
    """A dialog over a screen; `escape` closes it without an answer."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def action_cancel(self) -> None:
        self.dismiss(None)


@dataclass(frozen=True)
class Column:
    """A list column: its key, header, how a row reads in it (a cell: str or Rich Text,
    never markup), and how it sorts."""

    key: str
    label: str
    cell: Callable[[dict[str, Any]], Any]
    sort: Callable[[dict[str, Any]], Any] | None = None
    width: int | None = None


class ListScreen(AdminScreen):
    """A filterable, sortable list of API items (`rows`), one table row each, keyed by
    `row_key`. Subclasses say their `make_columns()`, fill `rows` in `fetch` and call
    `rerender()`; `enter` on a row posts `DataTable.RowSelected` (drill down there)."""

    DEFAULT_CSS = """
    ListScreen #list { height: 1fr; }
    ListScreen #empty { display: none; padding: 1 2; color: $foreground-muted; }
    ListScreen #empty.-shown { display: block; }
    """
    AUTO_FOCUS = "#list"
    empty_text: ClassVar[str] = "nothing to show"
    help_rows: ClassVar[list[tuple[str, str]]] = [
        ("enter", "open the selected row"), ("↑ ↓ pgup pgdn", "move"),
        ("click a header", "sort by it (again: reverse)")]

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("s", "sort", "Sort"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, Any]] = []
        self.columns: Sequence[Column] = ()
        self._filter_timer: Timer | None = None
        self.sort_column = 0
        self.sort_reverse = False

    def make_columns(self) -> Sequence[Column]:
        raise NotImplementedError

    def tone(self, status: str, text: str | None = None, *, bold: bool = False) -> Text:
        """`text` in the tone of `status` (the current theme's colour), for a cell."""
        return toned_text(status, self.app.theme_variables, text, bold=bold)

    def compose_body(self) -> ComposeResult:
        yield FilterBar(id="filter")
        yield from self.compose_above()
        table: DataTable[Any] = DataTable(id="list", cursor_type="row", zebra_stripes=True)
        yield table
        yield Static("", id="empty")
        yield from self.compose_below()

    def compose_above(self) -> ComposeResult:
        yield from ()

    def compose_below(self) -> ComposeResult:
        yield from ()

    @property
    def table(self) -> DataTable[Any]:
        return self.query_one("#list", DataTable)

    @property
    def filter_text(self) -> str:
        return self.query_one(FilterBar).value.strip().lower()

    def on_mount(self) -> None:
        self.columns = self.make_columns()
        self._add_columns()
        super().on_mount()

    def _add_columns(self) -> None:
        table = self.table
        table.clear(columns=True)
        for index, column in enumerate(self.columns):
            label = column.label
            if index == self.sort_column:
                label += " ▼" if self.sort_reverse else " ▲"
            table.add_column(Text(label), key=column.key, width=column.width)

    def row_key(self, row: dict[str, Any]) -> str:
        return str(row.get("id"))

    def matches(self, row: dict[str, Any], text: str) -> bool:
        """Whether a row passes the filter (default: any column's text contains it)."""
        for column in self.columns:
            cell = column.cell(row)
            if text in (cell.plain if isinstance(cell, Text) else str(cell)).lower():
                return True
        return False

    def visible_rows(self) -> list[dict[str, Any]]:
        text = self.filter_text
        rows = [r for r in self.rows if self.matches(r, text)] if text else list(self.rows)
        if self.columns:
            column = self.columns[self.sort_column]
            key = column.sort or (lambda r: _sortable(column.cell(r)))
            rows.sort(key=key, reverse=self.sort_reverse)
        return rows

    def rerender(self) -> None:
        table = self.table
        current = self.selected_key
        table.clear()
        shown = self.visible_rows()
        for row in shown:
            table.add_row(*(c.cell(row) for c in self.columns), key=self.row_key(row))
        if current is not None and any(self.row_key(r) == current for r in shown):
            table.move_cursor(row=table.get_row_index(current), animate=False)
        empty = self.query_one("#empty", Static)
        empty.update(escape(self.empty_text) if not self.rows else
                     f"nothing matches “{escape(self.filter_text)}” — esc clears the filter"
                     if not shown else "")
        empty.set_class(not shown, "-shown")

    @property
    def selected_key(self) -> str | None:
        table = self.table
        if not table.row_count:
            return None
        try:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        except Exception:  # the cursor is outside the rows (an empty table)
            return None
        return key.value

    @property
    def selected(self) -> dict[str, Any] | None:
        key = self.selected_key
        return next((r for r in self.rows if self.row_key(r) == key), None)

    def reload_then_select(self, key: str) -> None:
        """Reload, then put the cursor on the row of `key` if it is still shown."""
        async def fetch_and_select() -> None:
            await self.fetch()
            if any(self.row_key(r) == key for r in self.visible_rows()):
                self.table.move_cursor(row=self.table.get_row_index(key), animate=False)

        self.load(fetch_and_select)

    def confirm_delete(self, question: Callable[[dict[str, Any]], str], title: str,
                       delete: Callable[[str], object]) -> None:
        """Ask `question` about the selected row; on yes, `delete` its key (a worker that
        ends with `forget`)."""
        row = self.selected
        if row is None:
            return
        key = self.row_key(row)
        self.app.push_screen(ConfirmModal(question(row), title=title),
                             self.answer(lambda: delete(key)))

    def forget(self, key: str) -> None:
        """Drop the row the API deleted, and say so."""
        self.rows = [r for r in self.rows if self.row_key(r) != key]
        self.rerender()
        self.notify(f"{key} deleted", timeout=3)

    def action_filter(self) -> None:
        self.query_one(FilterBar).open()

    def action_clear_filter(self) -> None:
        bar = self.query_one(FilterBar)
        if bar.value or bar.has_class("-shown"):
            bar.action_clear()

    def action_sort(self) -> None:
        self._sort_by((self.sort_column + 1) % max(1, len(self.columns)), reverse=False)

    def _sort_by(self, index: int, *, reverse: bool) -> None:
        self.sort_column, self.sort_reverse = index, reverse
        self._add_columns()
        self.rerender()

    @on(DataTable.HeaderSelected)
    def _header_clicked(self, event: DataTable.HeaderSelected) -> None:
        index = event.column_index
        self._sort_by(index, reverse=not self.sort_reverse if index == self.sort_column
                      else False)

    @on(Input.Changed, "#filter")
    def _filter_changed(self) -> None:
        if len(self.rows) <= FILTER_AT_ONCE:
            self.rerender()
            return
        if self._filter_timer is not None:  # a long list: once typing pauses
            self._filter_timer.stop()
        self._filter_timer = self.set_timer(0.12, self.rerender)

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        self.table.focus()


def _sortable(cell: Any) -> tuple[int, Any]:
    """Numbers before text, text case-insensitively; empty cells last."""
    text = cell.plain if isinstance(cell, Text) else str(cell)
    if text in ("", "—"):
        return (2, "")
    try:
        return (0, float(text.replace(",", "").rstrip("%")))
    except ValueError:
        return (1, text.lower())

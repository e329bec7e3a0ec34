"""Small widgets every screen shares: the section bar, the connection banner, the `/`
filter, a titled card, and a form field with its inline error."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.widget import Widget
from textual.widgets import Input, Label, Static

if TYPE_CHECKING:
    from metric_stream_tui.app import AdminApp


class NavBar(Horizontal):
    """The top line: every section with its number key (the current one marked; each
    clickable), and what the console is connected to."""

    DEFAULT_CSS = """
    NavBar { height: 1; background: $panel; }
    NavBar > #sections { width: 1fr; }
    NavBar > #target { width: auto; max-width: 40; color: $foreground-muted; padding: 0 1;
        text-overflow: ellipsis; text-wrap: nowrap; }
    """

    def __init__(self, current: str) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        app: AdminApp = self.app  # type: ignore[assignment]
        parts = [" [b]metric-stream[/b]  "]
        for section in app.sections:
            label = f"{section.key} {escape(section.title)}"
            if section.name == self.current:
                parts.append(f"[b $accent underline] {label} [/]")
            else:
                parts.append(f"[@click=app.section('{section.name}')] {label} [/]")
        yield Static("".join(parts), id="sections", markup=True)
        yield Static(escape(app.client.target), id="target", shrink=True)


class ConnectionBanner(Static):
    """Shown while the API cannot be reached: what failed and when the next try is."""

    DEFAULT_CSS = """
    ConnectionBanner {
        display: none; height: auto; padding: 0 1;
        background: $error-muted; color: $text; text-style: bold;
    }
    ConnectionBanner.-shown { display: block; }
    """

    def on_mount(self) -> None:
        self.watch(self.app, "offline", self._show, init=True)

    def _show(self, message: str) -> None:
        self.update(escape(message))
        self.set_class(bool(message), "-shown")


class FilterBar(Input):
    """The `/` filter of a list: hidden until asked for; typing filters, `enter` goes
    back to the list keeping the filter, `escape` clears it."""

    DEFAULT_CSS = """
    FilterBar { display: none; border: none; height: 1; padding: 0 1; background: $boost; }
    FilterBar.-shown { display: block; }
    FilterBar:focus { border: none; }
    """
    BINDINGS = [Binding("escape", "clear", "Clear filter", show=False)]

    def __init__(self, placeholder: str = "filter…", **kwargs: Any) -> None:
        super().__init__(placeholder=placeholder, **kwargs)

    def open(self) -> None:
        self.add_class("-shown")
        self.focus()

    def action_clear(self) -> None:
        self.value = ""
        self.remove_class("-shown")
        self.post_message(self.Submitted(self, ""))


class Card(Vertical):
    """A titled box of a few lines (the dashboard's figures)."""

    DEFAULT_CSS = """
    Card {
        height: auto; border: round $foreground 20%; border-title-color: $foreground-muted;
        padding: 0 1; width: 1fr;
    }
    Card > Static { width: 1fr; }
    """

    def __init__(self, title: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = title
        self.body = Static("…")

    def compose(self) -> ComposeResult:
        yield self.body

    def show(self, markup: str) -> None:
        self.body.update(markup)


class FormField(Vertical):
    """A labelled input with its inline error underneath (hidden when there is none)."""

    DEFAULT_CSS = """
    FormField { height: auto; }
    FormField > Label { color: $foreground-muted; }
    FormField > .error { display: none; color: $error; }
    FormField.-invalid > .error { display: block; }
    FormField.-invalid > Input { background: $error 20%; }
    """

    def __init__(self, label: str, control: Widget, *, field: str, hint: str = "") -> None:
        super().__init__(id=f"field-{field.replace('.', '-')}")
        self.label = label
        self.control = control
        self.field = field
        self.hint = hint
        self.error = Static("", classes="error")

    def compose(self) -> ComposeResult:
        yield Label(self.label + (f"  [dim]{escape(self.hint)}[/]" if self.hint else ""))
        yield self.control
        yield self.error

    def show_error(self, message: str | None) -> None:
        self.error.update(escape(message or ""))
        self.set_class(bool(message), "-invalid")

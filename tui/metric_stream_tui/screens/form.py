"""What the console's forms share.

`FieldErrors` shows a reason under its field (a `FormField`) and the whole message in a
`#problem` line on top: the configuration screen and every dialog form use it.

`ApiForm` is a dialog form saved through the API (KPIs, schedules, endpoints): fields
with inline errors, `ctrl+s` saving in a worker, a 4xx naming a field shown under it
(anything else is the app's notification), dismissed with the entry as the API
answered it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.markup import escape
from textual.widgets import Button, Checkbox, Input, Static

from metric_stream_tui.client import ClientError
from metric_stream_tui.screens.base import AdminModal
from metric_stream_tui.widgets import FormField

if TYPE_CHECKING:
    from textual.dom import DOMNode as _Node
else:
    _Node = object  # a mixin: the node it is mixed into supplies the queries


class FieldErrors(_Node):
    """Inline errors: each under its `FormField` (`#field-<name>`), the gist in
    `#problem`."""

    def show_error(self, name: str, message: str) -> None:
        self.query_one(f"#field-{name}", FormField).show_error(message)

    def show_errors(self, problems: Mapping[str, str]) -> None:
        for name, message in problems.items():
            self.show_error(name, message)

    def clear_errors(self) -> None:
        for field in self.query(FormField):
            field.show_error(None)
        self.query_one("#problem", Static).add_class("-empty")

    def show_problem(self, markup: str) -> None:
        problem = self.query_one("#problem", Static)
        problem.update(markup)
        problem.remove_class("-empty")

    def focus_first_error(self) -> FormField | None:
        first = next(iter(self.query(".-invalid")), None)
        if not isinstance(first, FormField):
            return None
        first.control.focus()
        return first


class ApiForm(FieldErrors, AdminModal[dict[str, Any]]):
    """A form saved through the API (see the module docstring). Subclasses compose their
    fields with `field()`, build the request in `body()` and send it in `send()`."""

    DEFAULT_CSS = """
    ApiForm .row { height: auto; margin-bottom: 1; }
    ApiForm .row > FormField { width: 1fr; margin-right: 2; }
    ApiForm Input, ApiForm Select { width: 1fr; }
    ApiForm Input { background: $boost; padding: 0 1; }
    ApiForm Input:focus { background: $accent 20%; }
    ApiForm #problem { color: $error; height: auto; margin-bottom: 1; }
    ApiForm #problem.-empty { display: none; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("ctrl+s", "save", "Save")]

    field_of: ClassVar[Mapping[str, str]] = {}
    """The API's field paths -> the form's fields."""

    def __init__(self, entry: Mapping[str, Any] | None = None) -> None:
        super().__init__(classes="dialog")
        self.entry = dict(entry) if entry else None

    def field(self, label: str, name: str, value: Any, hint: str = "", *,
              disabled: bool = False, placeholder: str = "") -> FormField:
        control = Input("" if value is None else str(value), id=name, compact=True,
                        disabled=disabled, placeholder=placeholder)
        return FormField(label, control, field=name, hint=hint)

    def compose_top(self, name_hint: str = "") -> ComposeResult:
        """The problem line, then the entry's ID (fixed once made) and name."""
        entry = self.entry or {}
        yield Static("", id="problem", classes="-empty")
        with Horizontal(classes="row"):
            yield self.field("ID", "id", entry.get("id"), "letters, digits . _ -",
                             disabled=self.entry is not None)
            yield self.field("Name", "name", entry.get("name"), name_hint)

    def compose_buttons(self) -> ComposeResult:
        yield Static("[$foreground-muted]ctrl+s saves · esc cancels · tab moves[/]")
        with Horizontal(classes="buttons"):
            yield Button("Cancel", id="cancel", compact=True)
            yield Button("Save", id="save", variant="primary", compact=True)

    def value(self, name: str) -> str:
        return self.query_one(f"#{name}", Input).value.strip()

    def checked(self, name: str) -> bool:
        return self.query_one(f"#{name}", Checkbox).value

    def body(self) -> dict[str, Any] | None:
        """The entry to send, or None when a field cannot even be sent (shown inline)."""
        raise NotImplementedError

    async def send(self, body: dict[str, Any]) -> Any:
        raise NotImplementedError

    def field_for(self, path: str) -> str | None:
        """The form's field for a path the API names: the path's, else its first part's."""
        return self.field_of.get(path) or self.field_of.get(path.split(".", 1)[0])

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#save")
    def _save_pressed(self) -> None:
        self.action_save()

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_save()

    def action_save(self) -> None:
        self.clear_errors()
        body = self.body()
        if body is not None:
            self.save(body)

    @work(exclusive=True, group="save", exit_on_error=False)
    async def save(self, body: dict[str, Any]) -> None:
        try:
            saved = await self.send(body)
        except ClientError as error:
            if error.status is None or not self.show_problems(error):
                raise  # not about a field: the app's notification says it
            return
        for warning in saved.get("warnings") or []:
            self.notify(str(warning), title="Saved, with a warning", severity="warning")
        self.dismiss(saved)

    def show_problems(self, error: ClientError) -> bool:
        """Put each reason under its field, the whole message on top; False when no
        field of the form is named."""
        shown = False
        for path, reason in error.problems():
            name = self.field_for(path)
            if name is None:
                continue
            self.show_error(name, reason)
            shown = True
        if shown:
            self.focus_first_error()
            self.show_problem(f"{escape(error.title)}: {escape(error.message)}")
        return shown

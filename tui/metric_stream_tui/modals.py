"""Dialogs every screen may open: a confirmation before a destructive action, the `?`
key reference, and the `:` command line."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.markup import escape
from textual.screen import ModalScreen, Screen
from textual.suggester import SuggestFromList
from textual.widgets import Button, Input, Label, Static

from metric_stream_tui.commands import TEXTUAL_ACTIONS

if TYPE_CHECKING:
    from metric_stream_tui.app import AdminApp


class ConfirmModal(ModalScreen[bool]):
    """Ask before doing something that cannot be undone: `y` (or the button) confirms,
    `n` or `escape` cancels. The cancel button has the focus, so a stray `enter` is
    harmless."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str, confirm: str = "Delete", *, title: str = "Confirm",
                 danger: bool = True) -> None:
        super().__init__(classes="dialog")
        self.question = question
        self.confirm = confirm
        self.title_text = title
        self.danger = danger

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box") as box:
            box.border_title = self.title_text
            yield Static(escape(self.question), classes="question")
            yield Static("[$foreground-muted]y to confirm · n or esc to cancel[/]")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="no")
                yield Button(self.confirm, id="yes",
                             variant="error" if self.danger else "primary")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class HelpModal(ModalScreen[None]):
    """The keys of the screen it was opened from, then the keys that work everywhere,
    then the `:` commands."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "dismiss", "Close"),
    ]

    def __init__(self, screen: Screen[object], commands: Iterable[tuple[str, str]]) -> None:
        super().__init__(classes="dialog")
        self.of = screen
        self.commands = list(commands)

    def compose(self) -> ComposeResult:
        app: AdminApp = self.app  # type: ignore[assignment]
        sections = {s.key for s in app.sections}
        local: dict[str, list[str]] = {}
        shared: dict[str, list[str]] = {}
        for key, active in self.of.active_bindings.items():
            binding = active.binding
            if (not binding.description or binding.action in TEXTUAL_ACTIONS or key in sections
                    or active.node not in (self.of, app)):
                continue  # a widget's own keys (cursor moves): the footer says enough
            shown = binding.key_display or app.get_key_display(binding) or key
            target = shared if active.node is app else local
            target.setdefault(binding.description, []).append(shown)
        rows = [(" ".join(keys), what) for what, keys in local.items()]
        rows += list(getattr(self.of, "help_rows", []))
        everywhere = [(" ".join(keys), what) for what, keys in shared.items()]
        everywhere.insert(0, (f"{app.sections[0].key}-{app.sections[-1].key}",
                              " · ".join(s.title for s in app.sections)))
        width = max((len(k) for k, _ in (*rows, *everywhere, *self.commands)), default=8)

        def lines(pairs: Iterable[tuple[str, str]]) -> list[str]:
            return [f"  [$accent]{escape(k):>{width}}[/]  {escape(d)}" for k, d in pairs]

        title = next((s.title for s in app.sections
                      if s.name == getattr(self.of, "section", None)), "This screen")
        text = [f"[b]{escape(title)}[/b]", *lines(rows), "", "[b]Everywhere[/b]",
                *lines(everywhere), "",
                "[b]Commands[/b] [$foreground-muted](type : then one; tab completes)[/]",
                *lines(self.commands), "",
                "[$foreground-muted]The mouse works too: click a section, a row, a column "
                "header (sorts).  esc closes this.[/]"]
        with VerticalScroll(classes="dialog-box help") as box:
            box.border_title = "Keys"
            yield Static("\n".join(text))

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)


class CompletingInput(Input):
    """An input whose `tab` takes the suggestion shown (commands, paths)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("tab", "cursor_right", "Complete",
                                                     show=False)]


class CommandLine(ModalScreen[str | None]):
    """k9s's `:` prompt at the bottom: `:jobs`, `:kpis`, `:q`…; `tab` or `→` completes."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, words: Iterable[str]) -> None:
        super().__init__(classes="command-line")
        self.words = sorted(set(words))

    def compose(self) -> ComposeResult:
        with Horizontal(id="prompt"):
            yield Label(":")
            yield CompletingInput(id="command", placeholder="jobs, kpis, dashboard, help, q…",
                        suggester=SuggestFromList(self.words, case_sensitive=False))

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)

"""The admin console's app: its sections (one Textual mode each, see `sections.py`),
the keys that work everywhere, the `:` command line, the command palette, and how a
failed call is told to the operator.

Every API call runs in a worker. A failure never takes the app down: a `ClientError`
becomes a notification with the server's message; a lost connection shows a banner
on every screen and the app tries again with a growing delay until the API answers,
then reloads the current screen.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import ClassVar

from textual import events, work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.widgets import Input, TextArea

from metric_stream.clock import SystemClock
from metric_stream.ports import Clock
from metric_stream_tui.client import AdminClient, ClientError, ConnectionLost
from metric_stream_tui.commands import ConsoleCommands, command_words, line_commands
from metric_stream_tui.modals import CommandLine, HelpModal
from metric_stream_tui.screens.base import AdminScreen
from metric_stream_tui.sections import SECTIONS, Section

log = logging.getLogger("metric_stream_tui")

UNAUTHORIZED_HINT = ("the admin key is missing or is not this server's: set "
                     "METRIC_STREAM_ADMIN_KEY to the key the server was started with")


class AdminApp(App[None]):
    """`metric-stream tui`. `refresh_s` is the dashboard's live refresh (None: start
    paused); `clock` says what "now" is on screen; `backoff` is the first and the
    longest wait between reconnection tries; `demo` marks jobs run from here as demo."""

    CSS_PATH = "console.tcss"
    TITLE = "metric-stream"
    SUB_TITLE = "admin console"
    COMMANDS = App.COMMANDS | {ConsoleCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        *(Binding(s.key, f"section('{s.name}')", s.title, show=False) for s in SECTIONS),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("colon", "command_line", "Command", key_display=":"),
        Binding("q", "quit", "Quit"),
    ]

    offline: reactive[str] = reactive("")
    """Why the API cannot be reached (empty while it can): the banner shows it."""

    def __init__(self, client: AdminClient, *, refresh_s: float | None = 5.0,
                 clock: Clock | None = None, cursor_blink: bool = True,
                 backoff: tuple[float, float] = (1.0, 30.0), demo: bool = False,
                 sections: Sequence[Section] = SECTIONS, start: str | None = None) -> None:
        super().__init__()
        self.client = client
        self.refresh_s = refresh_s
        self.clock = clock or SystemClock()
        self.cursor_blink = cursor_blink
        self.backoff = backoff
        self.demo = demo
        self.sections = list(sections)
        self.start = start or self.sections[0].name
        for section in self.sections:
            self.add_mode(section.name, section.screen)

    def on_mount(self) -> None:
        self.switch_mode(self.start)

    async def on_unmount(self) -> None:
        await self.client.aclose()

    # ---------------------------------------------------------------- navigation
    def action_section(self, name: str) -> None:
        if name != self.current_mode:
            self.switch_mode(name)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpModal):
            self.push_screen(HelpModal(self.screen, line_commands(self)))

    def action_command_line(self) -> None:
        self.push_screen(CommandLine(command_words(self)), self.run_command)

    def run_command(self, text: str | None) -> None:
        """Do what a `:` command says (`jobs`, `2`, `q`, `help`, `dark`, ...)."""
        word = (text or "").strip().lstrip(":").strip().lower()
        if not word:
            return
        section = next((s for s in self.sections if word in (*s.names, s.key)), None)
        if section is not None:
            self.action_section(section.name)
        elif word in ("q", "quit", "exit", "q!"):
            self.exit()
        elif word in ("help", "?", "h"):
            self.action_help()
        elif word in ("light", "dark"):
            self.set_theme_kind(dark=word == "dark")
        elif word in ("palette", "p"):
            self.action_command_palette()
        elif word in ("reload", "r", "refresh"):
            if isinstance(self.screen, AdminScreen):
                self.screen.reload()
        else:
            self.notify(f"unknown command :{word} — :help lists them", severity="warning")

    def set_theme_kind(self, *, dark: bool) -> None:
        self.theme = "textual-dark" if dark else "textual-light"

    # ---------------------------------------------------------------- failures
    def report(self, error: BaseException) -> None:
        """Tell the operator a call failed; the screen stays as it was."""
        if isinstance(error, ConnectionLost):
            self.connection_lost(error)
        elif isinstance(error, ClientError):
            message = error.message
            if error.status == 401:
                message = f"{message}: {UNAUTHORIZED_HINT}"
            self.notify(message, title=error.title, severity="error", timeout=8)
        else:
            log.error("unexpected %s in a worker", type(error).__name__, exc_info=error)
            self.notify(f"{type(error).__name__}: {error}", title="Unexpected error",
                        severity="error", timeout=8)

    def connection_lost(self, error: ConnectionLost) -> None:
        if not self.offline:
            self.offline = f"Connection lost: {error.message}"
            self._reconnect(error.message)

    @work(exclusive=True, group="reconnect", exit_on_error=False)
    async def _reconnect(self, reason: str) -> None:
        delay, longest = self.backoff
        while True:
            self.offline = (f"Connection lost: {reason} — trying again in "
                            f"{delay:g} s (the screens keep what they showed)")
            await asyncio.sleep(delay)
            try:
                await self.client.health()
            except ConnectionLost as again:
                reason = again.message
                delay = min(delay * 2, longest)
                continue
            except ClientError:
                pass  # it answered, if only with an error: the connection is back
            break
        self.offline = ""
        self.notify("Connection restored", timeout=3)
        if isinstance(self.screen, AdminScreen):
            self.screen.reload()

    # ---------------------------------------------------------------- frozen for snapshots
    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        if not self.cursor_blink and isinstance(event.widget, Input | TextArea):
            event.widget.cursor_blink = False

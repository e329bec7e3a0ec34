"""The page of a section that is not built yet."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Center, Middle
from textual.markup import escape
from textual.widgets import Static

from metric_stream_tui.screens.base import AdminScreen


class ComingScreen(AdminScreen):
    def __init__(self, section: str, title: str, what: str) -> None:
        super().__init__()
        self.section = section
        self.title_text = title
        self.what = what

    def compose_body(self) -> ComposeResult:
        with Middle(), Center():
            yield Static(f"[b]{escape(self.title_text)}[/b]\n\n{escape(self.what)}: coming.\n\n"
                         "[$foreground-muted]Until then the HTTP API has its routes "
                         "(see /api/openapi.json).[/]", classes="coming")

"""The console's commands: what `ctrl+p` (Textual's command palette) and the `:` command
line offer — every section, the current screen's actions, and a few app commands."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from metric_stream_tui.app import AdminApp


# Textual's own bindings of every screen (focus moves, copy): not this console's keys
TEXTUAL_ACTIONS = frozenset({"app.focus_next", "app.focus_previous", "focus_next",
                             "focus_previous", "screen.copy_text", "copy_text",
                             "app.copy_text", "screen.maximize", "screen.minimize"})


@dataclass(frozen=True)
class Command:
    text: str
    run: Callable[[], Any]
    help: str = ""


def palette_commands(app: AdminApp, screen: Any) -> list[Command]:
    commands = [Command(f"Go to {s.title}", partial(app.action_section, s.name),
                        f"key {s.key} · :{s.name} · {s.description}") for s in app.sections]
    title = next((s.title for s in app.sections if s.name == getattr(screen, "section", "")),
                 "This screen")
    seen: set[str] = set()
    for active in screen.active_bindings.values():
        binding = active.binding
        if (active.node is not screen or not binding.description
                or binding.description in seen or binding.action in TEXTUAL_ACTIONS):
            continue
        seen.add(binding.description)
        key = binding.key_display or binding.key
        commands.append(Command(f"{title}: {binding.description}",
                                partial(screen.run_action, binding.action), f"key {key}"))
    commands += [
        Command("Keys of this screen", app.action_help, "key ?"),
        Command("Light theme", partial(app.set_theme_kind, dark=False), ":light"),
        Command("Dark theme", partial(app.set_theme_kind, dark=True), ":dark"),
        Command("Quit", app.exit, "key q · :q"),
    ]
    return commands


class ConsoleCommands(Provider):
    """Sections and the current screen's actions in the command palette."""

    def _commands(self) -> list[Command]:
        return palette_commands(self.app, self.screen)  # type: ignore[arg-type]

    async def discover(self) -> Hits:
        for command in self._commands():
            yield DiscoveryHit(command.text, command.run, help=command.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in self._commands():
            score = matcher.match(command.text)
            if score > 0:
                yield Hit(score, matcher.highlight(command.text), command.run,
                          help=command.help)


def line_commands(app: AdminApp) -> list[tuple[str, str]]:
    """What the `:` command line understands, for `?` and its completion."""
    rows = [(s.name, f"{s.title} (also :{s.key}" + "".join(f", :{a}" for a in s.aliases) + ")")
            for s in app.sections]
    rows += [("reload", "fetch this screen's data again (also :r)"),
             ("light / dark", "switch the theme"),
             ("palette", "the command palette (also ctrl+p)"),
             ("help", "this key reference (also ?)"),
             ("q", "quit (also :quit)")]
    return rows


def command_words(app: AdminApp) -> list[str]:
    words = [n for s in app.sections for n in (*s.names, s.key)]
    return [*words, "reload", "light", "dark", "palette", "help", "quit", "q"]

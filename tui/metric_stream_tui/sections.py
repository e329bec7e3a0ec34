"""The console's sections: one line each. A section is a Textual mode (its own stack
of screens), reached by its number key, by `:name` (or an alias) and from the command
palette; the section bar lists them in this order.

To add a section: write `screens/<name>.py` with an `AdminScreen` (or `ListScreen`)
subclass whose `section` is its name, and add a line here, e.g.
`Section("8", "archive", "Archive", lazy("archive", "ArchiveScreen"), ("old",), "...")`.

A section's screen module is imported when the section is first opened, not when the
console starts: the first screen comes up without paying for the other six.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from textual.screen import Screen


def lazy(module: str, name: str) -> Callable[[], Screen[None]]:
    """A factory for the screen class `name` of `metric_stream_tui.screens.<module>`,
    imported on the first call."""

    def make() -> Screen[None]:
        found = getattr(importlib.import_module(f"metric_stream_tui.screens.{module}"), name)
        return cast("Screen[None]", found())

    make.__qualname__ = f"lazy({module}.{name})"
    return make


@dataclass(frozen=True)
class Section:
    key: str
    """The number key that opens it."""
    name: str
    """The mode's name, and its `:` command."""
    title: str
    screen: Callable[[], Screen[None]]
    """Makes the section's first screen (a class, or a factory)."""
    aliases: tuple[str, ...] = ()
    """More `:` commands for it."""
    description: str = ""
    """One line for the command palette."""
    names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", (self.name, *self.aliases))


SECTIONS: list[Section] = [
    Section("1", "dashboard", "Dashboard", lazy("dashboard", "DashboardScreen"),
            ("dash", "home", "metrics"),
            "Live figures: recent jobs, failure rates, queues, deliveries, storage"),
    Section("2", "kpis", "KPIs", lazy("kpis", "KpisScreen"),
            ("kpi", "registry"),
            "The KPI registry: add, edit, toggle, delete, chart, import CSV"),
    Section("3", "jobs", "Jobs", lazy("jobs", "JobsScreen"),
            ("job", "runs"),
            "Jobs: status, per-KPI errors, stages, deliveries; run now, re-deliver"),
    Section("4", "schedules", "Schedules", lazy("schedules", "SchedulesScreen"),
            ("schedule", "cron"),
            "Cron schedules: next runs as you type; add, edit, delete"),
    Section("5", "endpoints", "Endpoints", lazy("endpoints", "EndpointsScreen"),
            ("endpoint", "delivery"),
            "Delivery endpoints: health, add, edit, test sends"),
    Section("6", "config", "Config", lazy("config", "ConfigScreen"),
            ("configuration", "settings"),
            "Retries, fallbacks, job lifecycle and analysis chains"),
    Section("7", "workflows", "Workflows", lazy("workflows", "WorkflowsScreen"),
            ("workflow", "n8n"),
            "The n8n workflows behind the KPIs: start, stop, pause"),
]

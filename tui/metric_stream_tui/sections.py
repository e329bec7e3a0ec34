"""The console's sections: one line each. A section is a Textual mode (its own stack
of screens), reached by its number key, by `:name` (or an alias) and from the command
palette; the section bar lists them in this order.

To add a screen: write `screens/<name>.py` with an `AdminScreen` (or `ListScreen`)
subclass whose `section` is the name below, and replace its `coming(...)` line with
`Section("4", "schedules", "Schedules", SchedulesScreen, ("cron",), "...")`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from textual.screen import Screen

from metric_stream_tui.screens.coming import ComingScreen
from metric_stream_tui.screens.dashboard import DashboardScreen
from metric_stream_tui.screens.jobs import JobsScreen
from metric_stream_tui.screens.kpis import KpisScreen


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


def coming(key: str, name: str, title: str, aliases: tuple[str, ...], what: str) -> Section:
    """A placeholder for a section not built yet."""
    return Section(key, name, title, partial(ComingScreen, name, title, what), aliases,
                   f"{what} (coming)")


SECTIONS: list[Section] = [
    Section("1", "dashboard", "Dashboard", DashboardScreen, ("dash", "home", "metrics"),
            "Live figures: recent jobs, failure rates, queues, deliveries, storage"),
    Section("2", "kpis", "KPIs", KpisScreen, ("kpi", "registry"),
            "The KPI registry: add, edit, toggle, delete, chart, import CSV"),
    Section("3", "jobs", "Jobs", JobsScreen, ("job", "runs"),
            "Jobs: status, per-KPI errors, stages, deliveries; run now, re-deliver"),
    coming("4", "schedules", "Schedules", ("schedule", "cron"),
           "Cron schedules with their next runs"),
    coming("5", "endpoints", "Endpoints", ("endpoint", "delivery"),
           "Delivery endpoints with their health, and test sends"),
    coming("6", "config", "Config", ("configuration", "settings"),
           "Retries, fallbacks, job lifecycle and analysis chains"),
    coming("7", "workflows", "Workflows", ("workflow", "n8n"),
           "The n8n workflows behind the KPIs: start, stop, pause"),
]

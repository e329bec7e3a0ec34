"""The console's sections: one line each. A section is a Textual mode (its own stack
of screens), reached by its number key, by `:name` (or an alias) and from the command
palette; the section bar lists them in this order.

To add a section: write `screens/<name>.py` with an `AdminScreen` (or `ListScreen`)
subclass whose `section` is its name, and add a line here, e.g.
`Section("8", "archive", "Archive", ArchiveScreen, ("old",), "...")`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from textual.screen import Screen

from metric_stream_tui.screens.config import ConfigScreen
from metric_stream_tui.screens.dashboard import DashboardScreen
from metric_stream_tui.screens.endpoints import EndpointsScreen
from metric_stream_tui.screens.jobs import JobsScreen
from metric_stream_tui.screens.kpis import KpisScreen
from metric_stream_tui.screens.schedules import SchedulesScreen
from metric_stream_tui.screens.workflows import WorkflowsScreen


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
    Section("1", "dashboard", "Dashboard", DashboardScreen, ("dash", "home", "metrics"),
            "Live figures: recent jobs, failure rates, queues, deliveries, storage"),
    Section("2", "kpis", "KPIs", KpisScreen, ("kpi", "registry"),
            "The KPI registry: add, edit, toggle, delete, chart, import CSV"),
    Section("3", "jobs", "Jobs", JobsScreen, ("job", "runs"),
            "Jobs: status, per-KPI errors, stages, deliveries; run now, re-deliver"),
    Section("4", "schedules", "Schedules", SchedulesScreen, ("schedule", "cron"),
            "Cron schedules: next runs as you type; add, edit, delete"),
    Section("5", "endpoints", "Endpoints", EndpointsScreen, ("endpoint", "delivery"),
            "Delivery endpoints: health, add, edit, test sends"),
    Section("6", "config", "Config", ConfigScreen, ("configuration", "settings"),
            "Retries, fallbacks, job lifecycle and analysis chains"),
    Section("7", "workflows", "Workflows", WorkflowsScreen, ("workflow", "n8n"),
            "The n8n workflows behind the KPIs: start, stop, pause"),
]

"""Schedules fire on ticks: each tick fires every schedule whose cron time came due
since it last fired, once — a tick that was missed or late still fires it once,
and two tickers racing fire it once (a conditional write on `lastFiredAt`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from croniter import croniter

from metric_stream.bootstrap import Services
from metric_stream.errors import ConditionFailed
from metric_stream.models.schedule import Schedule
from metric_stream.ports import FieldIn, Update
from metric_stream.storage.collection import to_item

# A schedule created long ago that never fired fires for its latest due time only.
FIRST_LOOKBACK = timedelta(days=1)


def due_time(schedule: Schedule, now: datetime) -> datetime | None:
    """The latest cron time in (last fired, now], or None if none came due."""
    if schedule.last_fired_at is not None:
        since = schedule.last_fired_at
    else:
        since = max(schedule.created_at or now, now - FIRST_LOOKBACK)
    latest = croniter(schedule.cron, now + timedelta(microseconds=1)).get_prev(datetime)
    return latest if latest > since else None


@dataclass
class Fired:
    schedule_id: str
    due: datetime
    trace_id: str | None = None
    error: str | None = None


Fire = Callable[[Schedule, datetime], str]


def tick(services: Services, fire: Fire, *, now: datetime | None = None) -> list[Fired]:
    """Fire the schedules that came due; `fire(schedule, due)` starts a job and returns
    its trace id. Returns what fired."""
    now = now or services.clock.now()
    fired: list[Fired] = []
    for schedule in services.registry.schedules.all():
        if not schedule.active:
            continue
        due = due_time(schedule, now)
        if due is None or not _claim(services, schedule, due):
            continue
        try:
            fired.append(Fired(schedule.id, due, trace_id=fire(schedule, due)))
        except Exception as exc:  # the fire is recorded; the reason is the operator's to see
            fired.append(Fired(schedule.id, due, error=getattr(exc, "message", str(exc))))
    return fired


def _claim(services: Services, schedule: Schedule, due: datetime) -> bool:
    key = services.registry.schedules.key(schedule.id)
    stored = services.records.get(key)
    if stored is None:
        return False
    claimed = to_item(schedule.model_copy(update={"last_fired_at": due}))["lastFiredAt"]
    try:
        services.records.write([Update(key, set={"lastFiredAt": claimed},
                                       condition=FieldIn("lastFiredAt",
                                                         (stored.get("lastFiredAt"),)))])
    except ConditionFailed:
        return False  # another ticker fired it
    return True


def next_runs(schedule: Schedule, now: datetime, count: int = 5) -> list[datetime]:
    return schedule.next_runs(now, count)


__all__ = ["Fired", "due_time", "next_runs", "tick"]

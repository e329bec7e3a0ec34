"""Admin API: schedules CRUD with the next-run preview and the cron in words."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from metric_stream.bootstrap import Services
from metric_stream.clock import ManualClock
from metric_stream.models.schedule import Schedule
from metric_stream.ports import Item, Key
from metric_stream.services.admin import describe_cron, replace_schedule
from metric_stream.services.schedules import tick
from tests.api.conftest import Client
from tests.api.test_admin_registry import admin


def test_create_list_get_replace_delete(client: Client, services: Services,
                                        clock: ManualClock) -> None:
    status, created = admin(client, "POST", "/api/schedules",
                            {"id": "weekdays", "name": "Weekdays", "cron": "0  6 * * 1-5",
                             "kpiIds": ["btc-price", "cbbi-mvrv"],
                             "lastFiredAt": "2001-01-01T00:00:00Z"})
    assert status == 201, created
    assert created["cron"] == "0 6 * * 1-5"
    assert created["description"] == "on Monday through Friday at 06:00 UTC"
    # the clock is Sunday 2026-11-29 06:00 UTC
    assert created["nextRuns"] == ["2026-11-30T06:00:00Z", "2026-12-01T06:00:00Z",
                                   "2026-12-02T06:00:00Z", "2026-12-03T06:00:00Z",
                                   "2026-12-04T06:00:00Z"]
    assert "lastFiredAt" not in created  # the scheduler's to set
    assert services.registry.schedules.require("weekdays").kpi_ids == ["btc-price", "cbbi-mvrv"]

    status, listed = admin(client, "GET", "/api/schedules")
    assert status == 200 and [s["id"] for s in listed["schedules"]] == ["weekdays"]
    assert listed["schedules"][0]["nextRuns"] == created["nextRuns"]
    assert admin(client, "GET", "/api/schedules/weekdays") == (200, created)

    clock.advance(30)
    status, replaced = admin(client, "PUT", "/api/schedules/weekdays",
                             {"cron": "*/15 * * * *", "active": True})
    assert status == 200
    assert replaced["description"] == "every 15 minutes"
    assert replaced["nextRuns"][:2] == ["2026-11-29T06:15:00Z", "2026-11-29T06:30:00Z"]
    assert replaced["createdAt"] == "2026-11-29T06:00:00Z"
    assert replaced["updatedAt"] == "2026-11-29T06:00:30Z"

    status, paused = admin(client, "PUT", "/api/schedules/weekdays", {**replaced, "active": False})
    assert status == 200 and paused["nextRuns"] == [] and paused["cron"] == "*/15 * * * *"
    status, reset = admin(client, "PUT", "/api/schedules/weekdays", {"name": "defaults"})
    assert status == 200 and reset["cron"] == "0 6 * * *" and "kpiIds" not in reset

    assert admin(client, "DELETE", "/api/schedules/weekdays") == (200, {"deleted": "weekdays"})
    assert services.registry.schedules.get("weekdays") is None
    assert admin(client, "DELETE", "/api/schedules/weekdays")[0] == 404
    assert admin(client, "GET", "/api/schedules/weekdays")[0] == 404


@pytest.mark.parametrize(("body", "field"), [
    ({"id": "s", "cron": "0 6 * *"}, "cron"),
    ({"id": "s", "cron": "61 6 * * *"}, "cron"),
    ({"id": "s", "kpiIds": ["ghost"]}, "kpiIds"),
    ({"id": "s", "kpiIds": ["btc-price", "btc-price"]}, "kpiIds"),
    ({"id": "s", "every": "day"}, "every"),
    ({"cron": "0 6 * * *"}, "id"),
])
def test_invalid_schedules_name_the_field(client: Client, body: dict[str, object],
                                          field: str) -> None:
    status, error = admin(client, "POST", "/api/schedules", body)
    assert status == 422 and error["error"]["field"] == field


def test_conflicts_and_unknown_ids(client: Client) -> None:
    assert admin(client, "POST", "/api/schedules", {"id": "daily"})[0] == 201
    status, error = admin(client, "POST", "/api/schedules", {"id": "daily"})
    assert status == 409 and error["error"]["code"] == "already_exists"
    status, error = admin(client, "PUT", "/api/schedules/daily", {"id": "other"})
    assert status == 422 and error["error"]["field"] == "id"
    assert admin(client, "PUT", "/api/schedules/ghost", {"id": "ghost"})[0] == 404


def test_replace_keeps_the_time_the_scheduler_last_fired(client: Client, services: Services,
                                                        clock: ManualClock) -> None:
    admin(client, "POST", "/api/schedules", {"id": "daily", "cron": "0 6 * * *"})
    clock.set(datetime(2026, 11, 30, 6, 0, 5, tzinfo=UTC))
    fired = tick(services, lambda schedule, due: "trace_x")
    assert [f.schedule_id for f in fired] == ["daily"]
    status, replaced = admin(client, "PUT", "/api/schedules/daily",
                             {"name": "renamed", "cron": "0 6 * * *"})
    assert status == 200 and replaced["lastFiredAt"] == "2026-11-30T06:00:00Z"
    assert tick(services, lambda schedule, due: "trace_y") == []  # not fired twice


def test_a_fire_between_read_and_write_is_not_undone(services: Services,
                                                     clock: ManualClock) -> None:
    services.registry.schedules.create(Schedule(id="daily", created_at=clock.now()))
    clock.set(datetime(2026, 11, 30, 6, 0, 5, tzinfo=UTC))
    real_get = services.records.get
    calls = {"n": 0}

    def get_then_fire(key: Key) -> Item | None:
        found = real_get(key)
        calls["n"] += 1
        if calls["n"] == 1:  # the scheduler fires right after the admin's first read
            tick(services, lambda schedule, due: "trace_x")
        return found

    services.records.get = get_then_fire  # type: ignore[method-assign]
    saved = replace_schedule(services, "daily", Schedule(id="daily", name="renamed"))
    services.records.get = real_get  # type: ignore[method-assign]
    assert calls["n"] >= 2  # read again after the conditional write failed
    assert saved.last_fired_at == datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
    assert services.registry.schedules.require("daily").name == "renamed"


@pytest.mark.parametrize(("cron", "text"), [
    ("0 6 * * *", "every day at 06:00 UTC"),
    ("* * * * *", "every minute"),
    ("0 * * * *", "every hour, on the hour"),
    ("30 */2 * * *", "every 2 hours at minute 30"),
    ("0 6,18 * * *", "every day at 06:00 and 18:00 UTC"),
    ("0 9 * * mon", "on Monday at 09:00 UTC"),
    ("0 0 * * 0,6", "on Sunday and Saturday at 00:00 UTC"),
    ("0 6 1,15 * *", "on days 1 and 15 of the month at 06:00 UTC"),
    ("0 6 1 * 1", "on day 1 of the month or on Monday at 06:00 UTC"),
    ("15 6 * 1-3 *", "every day in January through March at 06:15 UTC"),
    ("*/5 9 * * *", "every 5 minutes from 09:00 to 09:59 UTC"),
    ("*/15 * * * 1-5", "every 15 minutes on Monday through Friday (UTC)"),
    ("0 6 L * *", "at the times matching cron '0 6 L * *' (UTC)"),
    ("1-5 * * * *", "at the times matching cron '1-5 * * * *' (UTC)"),
])
def test_describe_cron(cron: str, text: str) -> None:
    assert describe_cron(cron) == text

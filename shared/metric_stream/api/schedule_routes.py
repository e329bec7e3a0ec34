"""Schedule routes: `GET|POST /api/schedules`, `GET|PUT|DELETE /api/schedules/{id}`.
Every answer previews the next five fire times (UTC) and reads the cron in words."""

from __future__ import annotations

from typing import Any

from metric_stream.api.bodies import parse_body, with_path_id
from metric_stream.api.http import Api, Request, Route
from metric_stream.models.schedule import Schedule
from metric_stream.services import admin

READ_ONLY = ("nextRuns", "description")


def _view(api: Api, schedule: Schedule) -> dict[str, Any]:
    return admin.schedule_view(schedule, api.services.clock.now())


def list_schedules(api: Api, request: Request) -> dict[str, Any]:
    schedules = api.services.registry.schedules.all()
    return {"schedules": [_view(api, s) for s in schedules], "count": len(schedules)}


def create_schedule(api: Api, request: Request) -> tuple[int, dict[str, Any]]:
    body = parse_body(Schedule, request.json(), read_only=READ_ONLY)
    schedule = admin.create_schedule(api.services, body)
    return 201, _view(api, schedule)


def get_schedule(api: Api, request: Request) -> dict[str, Any]:
    return _view(api, api.services.registry.schedules.require(request.path_params["id"]))


def replace_schedule(api: Api, request: Request) -> dict[str, Any]:
    schedule = admin.replace_schedule(api.services, request.path_params["id"],
                                      parse_body(Schedule, with_path_id(request),
                                                 read_only=READ_ONLY))
    return _view(api, schedule)


def delete_schedule(api: Api, request: Request) -> dict[str, Any]:
    api.services.registry.schedules.delete(request.path_params["id"])
    return {"deleted": request.path_params["id"]}


def tick(api: Api, request: Request) -> dict[str, object]:
    """What the Lambda schedule and `serve`'s loop do each minute, on demand: the
    Cloudflare Worker's cron trigger calls it (signed by the proxy)."""
    from metric_stream.server.loops import cycle_tick

    return cycle_tick(api.services).to_wire()


_VIEW = "the schedule, with `nextRuns` (next 5, UTC; none while inactive) and `description`"
ROUTES = [
    Route("GET", "/api/schedules", list_schedules, "admin", "List the schedules",
          responses={200: "every schedule, each with its next runs and description"},
          answer="ScheduleList", tag="schedules"),
    Route("POST", "/api/schedules", create_schedule, "admin",
          "Add a schedule (5-field cron, UTC)", Schedule,
          responses={201: _VIEW, 409: "the id is taken"}, answer="ScheduleView",
          tag="schedules"),
    Route("GET", "/api/schedules/{id}", get_schedule, "admin", "Read one schedule",
          responses={200: _VIEW, 404: "no such schedule"}, answer="ScheduleView",
          tag="schedules"),
    Route("PUT", "/api/schedules/{id}", replace_schedule, "admin",
          "Replace a schedule (createdAt and lastFiredAt are kept)", Schedule,
          responses={200: _VIEW, 404: "no such schedule",
                     422: "a field is invalid, or the body's id differs from the path's"},
          answer="ScheduleView", tag="schedules"),
    Route("DELETE", "/api/schedules/{id}", delete_schedule, "admin", "Delete a schedule",
          responses={200: "deleted", 404: "no such schedule"}, answer="Deleted",
          tag="schedules"),
    Route("POST", "/api/tick", tick, "scheduler",
          "One scheduler tick: fire the schedules that came due, settle due jobs, hand on "
          "lost stage messages (idempotent; the admin key or the proxy's signed cron)",
          responses={200: "`fired` (scheduleId, due, traceId, error), `recovered` trace ids, "
                          "`alerts` sent"}, answer="Ticked", tag="schedules"),
]

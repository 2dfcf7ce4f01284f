"""Homes for the care team: the homes a token covers, today's routine against the learned normal, and the
last 24 hours of activity per room and hour (the timeline a care team reads).

The routine comes from the anomaly room (``service.routine.routine_today(home_id)``); the activity timeline is
read from InfluxDB through ``placesense.storage.readings``, as counts of motion, door and occupancy events and
appliance use per room and hour.
Every read is written to the audit log. A home outside the token's scope answers 404, the same as a home that
does not exist, so a token cannot learn which homes there are. This module must not learn or judge routines.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from api.auth import Principal
from api.deps import ApiContext, Ctx, Homes, refuse_out_of_scope, require
from api.ports import HomesPort
from api.problems import AUTH_ERRORS, Problem
from api.timefmt import rfc3339
from placesense.basics.timeunits import HOUR_MS
from placesense.storage.errors import DatabaseNotFound
from placesense.storage.readings import HourActivity, activity_by_hour

router = APIRouter(tags=["homes"])
CareSide = Annotated[Principal, Depends(require("admin", "care"))]
HomeId = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$", description="pseudonymous home id")]
# Counted per room and hour (booleans are stored as 1.0/0.0, so a sum counts the moments something happened), beside
# the highest appliance power.
ACTIVITY_FIELDS = ("motion", "door_open", "occupied", "help_pressed")
PEAK_FIELD = "power_w"


class HomeOut(BaseModel):
    id: str
    name: str | None = Field(default=None, description="the resident's name, from the registry")
    care_team: str | None
    timezone: str
    devices: int


class HomesOut(BaseModel):
    homes: list[HomeOut]


class RoutineOut(BaseModel):
    home: str
    routine: dict[str, Any] = Field(
        description="today against the learned baseline, as the routine detector reports it: warm_up (days "
        "learned, days needed, ready), state, features with today's value and the usual range, wake_history (the "
        "last 28 learned days' getting-up time: at, RFC 3339; wake_min, local minutes after midnight; weekend) "
        "and usual_wake (the usual range, low/median/high in minutes, for weekdays and weekends; null until known)"
    )


class ActivityHour(BaseModel):
    hour: str = Field(description="start of the hour, RFC 3339")
    room: str
    events: dict[str, float] = Field(description="motion, door_open, occupied, help_pressed events; power_w max")


class ActivityOut(BaseModel):
    home: str
    start: str | None
    end: str | None
    hours: list[ActivityHour]


def _home_for(ctx: ApiContext, service: HomesPort, caller: Principal, home: str, request: Request) -> None:
    if home not in service.registry.homes or not caller.may_see_home(home):
        if home in service.registry.homes:
            refuse_out_of_scope(ctx, caller, request, home)
        raise Problem(404, f"no home {home!r} that this token may see", kind="unknown-home")


@router.get("/api/v1/homes", response_model=HomesOut, responses=AUTH_ERRORS)
def list_homes(ctx: Ctx, caller: CareSide, service: Homes) -> HomesOut:
    """The homes this token covers."""
    registry = service.registry
    counts: dict[str, int] = {}
    for device in registry.devices.values():
        if device.domain == "home":
            counts[device.subject] = counts.get(device.subject, 0) + 1
    homes = [
        HomeOut(id=h.id, name=h.name, care_team=h.care_team, timezone=h.timezone, devices=counts.get(h.id, 0))
        for h in sorted(registry.homes.values(), key=lambda h: h.id)
        if caller.may_see_home(h.id)
    ]
    ctx.audit.record(caller, "homes", [h.id for h in homes])
    return HomesOut(homes=homes)


@router.get("/api/v1/homes/{home}/routine", response_model=RoutineOut, responses=AUTH_ERRORS)
def routine(request: Request, ctx: Ctx, caller: CareSide, service: Homes, home: HomeId) -> RoutineOut:
    """Today in this home against the resident's learned normal."""
    _home_for(ctx, service, caller, home, request)
    ctx.audit.record(caller, "routine", [home])
    today = service.routine.routine_today(home)
    for day in today.get("wake_history", []):
        day["at"] = rfc3339(day.pop("wake_ms"))
    return RoutineOut(home=home, routine=today)


@router.get("/api/v1/homes/{home}/activity", response_model=ActivityOut, responses=AUTH_ERRORS)
def activity(
    request: Request,
    ctx: Ctx,
    caller: CareSide,
    service: Homes,
    home: HomeId,
    hours: Annotated[int, Query(ge=1, le=168, description="how many hours back from now")] = 24,
) -> ActivityOut:
    """Events per room and hour: the 24-hour timeline of a day at home."""
    _home_for(ctx, service, caller, home, request)
    ctx.audit.record(caller, "activity", [home])
    end_ms = service.clock.now_ms()
    end_ms = (end_ms // HOUR_MS + 1) * HOUR_MS  # include the current hour
    start_ms = end_ms - hours * HOUR_MS
    found: list[HourActivity]
    try:
        found = activity_by_hour(service.influx, home, ACTIVITY_FIELDS, PEAK_FIELD, start_ms, end_ms)
    except DatabaseNotFound:
        found = []  # nothing has been written yet
    out = [ActivityHour(hour=rfc3339(a.hour_ms) or "", room=a.room, events=a.events) for a in found]
    out.sort(key=lambda a: (a.hour, a.room))
    return ActivityOut(home=home, start=rfc3339(start_ms), end=rfc3339(end_ms), hours=out)

"""What a street operative tells placesense about a flowerbed: "watered" and "sensor checked", and what was told.

- ``POST /api/v1/flowerbeds/{bed}/watered``: the evaluation process takes the bed off today's list (the rules
  room decides how: ``WateringRules.mark_watered``, kept in its saved state), the finding that clears its
  ``needs_water`` alert is applied, and the probe's next rise is taken as this watering.
- ``POST /api/v1/flowerbeds/{bed}/sensor-checked``: someone looked at a bed's broken or silent sensor. Its open
  sensor alerts are acknowledged with the note (reminders stop; the alert resolves when the sensor recovers).
- ``GET /api/v1/flowerbeds/actions``: the latest of each action per bed over the last day, for the street page.

Both actions are street work: admin and street tokens (street tokens cover every bed; display tokens are
read-only). Each is a row in the append-only audit log (``bed.watered``, ``bed.sensor_checked``, with the bed id
where a home's rows carry the home id), like an alert acknowledgement. This module must not decide which bed
needs water.
"""

from __future__ import annotations

import time
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Path
from pydantic import BaseModel, Field

from api.auth import Principal
from api.deps import ApiContext, Ctx, Street, require
from api.ports import StreetPort
from api.problems import AUTH_ERRORS, Problem
from api.timefmt import rfc3339
from placesense.alerts.lifecycle import AlertStateError

router = APIRouter(tags=["flowerbeds"])

BedAction = Literal["watered", "sensor_checked"]
AUDIT_ACTIONS: dict[str, BedAction] = {"bed.watered": "watered", "bed.sensor_checked": "sensor_checked"}
CROP_RULES = frozenset({"needs_water", "over_watered"})  # street alerts about the plants, not the sensor
RECENT_MS = 24 * 3_600_000

StreetWorker = Annotated[Principal, Depends(require("admin", "street"))]
BedId = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]


class BedActionIn(BaseModel):
    note: str | None = Field(default=None, max_length=500, description="what was done or found, for the record")


class BedActionOut(BaseModel):
    bed_id: str
    action: BedAction
    at: str
    by: str = Field(description="the token's (or person's) name, as in the audit log")
    note: str | None = None
    cleared_alerts: int = Field(
        default=0, description="needs-water alerts cleared (watered) or sensor alerts acknowledged"
    )


class BedActionsOut(BaseModel):
    actions: list[BedActionOut] = Field(description="the latest of each action per bed in the last day, newest first")


def _known_bed(service: StreetPort, bed_id: str) -> None:
    if bed_id not in service.registry.flowerbeds:
        raise Problem(404, f"no flowerbed {bed_id}", kind="unknown-bed")


def _note(body: BedActionIn | None) -> str | None:
    return body.note.strip() or None if body is not None and body.note else None


ActionBody = Annotated[BedActionIn | None, Body(description="optional note")]


@router.post("/api/v1/flowerbeds/{bed_id}/watered", response_model=BedActionOut, responses=AUTH_ERRORS)
def watered(
    ctx: Ctx, caller: StreetWorker, service: Street, bed_id: BedId, body: ActionBody = None
) -> BedActionOut:
    """Mark a bed watered: it leaves today's list until it dries again, and its needs-water alert clears."""
    _known_bed(service, bed_id)
    now = service.clock.now_ms()
    note = _note(body)
    findings = service.rules.mark_watered(bed_id, now)
    ctx.audit.record(caller, "bed.watered", [bed_id], note or "")
    return BedActionOut(bed_id=bed_id, action="watered", at=rfc3339(now) or "", by=caller.name, note=note,
                        cleared_alerts=len(findings))


@router.post("/api/v1/flowerbeds/{bed_id}/sensor-checked", response_model=BedActionOut, responses=AUTH_ERRORS)
def sensor_checked(
    ctx: Ctx, caller: StreetWorker, service: Street, bed_id: BedId, body: ActionBody = None
) -> BedActionOut:
    """Record that someone looked at a bed's sensor; its open sensor alerts are acknowledged with the note."""
    _known_bed(service, bed_id)
    now = service.clock.now_ms()
    note = _note(body)
    ctx.audit.record(caller, "bed.sensor_checked", [bed_id], note or "")
    acknowledged = 0
    for alert in service.alerts.list_alerts(audience="street", state="open", subject=bed_id, limit=50):
        if alert.rule in CROP_RULES:
            continue
        try:
            service.alerts.ack(alert.id, caller.name, f"Sensor checked: {note}" if note else "Sensor checked")
        except AlertStateError:  # acknowledged or resolved meanwhile: nothing to do
            continue
        acknowledged += 1
    return BedActionOut(bed_id=bed_id, action="sensor_checked", at=rfc3339(now) or "", by=caller.name, note=note,
                        cleared_alerts=acknowledged)


@router.get("/api/v1/flowerbeds/actions", response_model=BedActionsOut, responses=AUTH_ERRORS)
def recent_actions(ctx: Ctx, _caller: StreetWorker, service: Street) -> BedActionsOut:
    """The latest "watered" and "sensor checked" of each bed in the last day, newest first."""
    return BedActionsOut(actions=latest_actions(ctx, service))


def latest_actions(ctx: ApiContext, service: StreetPort) -> list[BedActionOut]:
    # The audit log keeps wall-clock time, whatever clock the rules run on.
    rows = ctx.audit.latest(tuple(AUDIT_ACTIONS), since_ms=time.time_ns() // 1_000_000 - RECENT_MS)
    beds = service.registry.flowerbeds
    return [
        BedActionOut(bed_id=row.home_id, action=AUDIT_ACTIONS[row.action], at=rfc3339(row.at_ms) or "",
                     by=row.token_name, note=row.detail or None)
        for row in rows
        if row.home_id in beds
    ]

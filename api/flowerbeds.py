"""``GET /api/v1/flowerbeds/watering``: the beds that need water now or within a day, and a walking order.

The list and its urgency order come from the rules room (``service.rules.watering_list(now_ms)``). This module
adds the one thing an operative on foot needs on top: a walking order — nearest neighbour from the most urgent
bed, by great-circle distance — which is short enough for the tens of beds a council has and never sends anyone
back and forth across a park. It must not decide which bed needs water.
"""

from __future__ import annotations

import math

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import Street, StreetSide
from api.problems import AUTH_ERRORS
from api.timefmt import rfc3339
from rules.watering import WaterLevel

router = APIRouter(tags=["flowerbeds"])
EARTH_RADIUS_M = 6_371_000.0


class BedToWater(BaseModel):
    bed_id: str
    name: str
    status: WaterLevel = Field(description="now: below its threshold; soon: predicted within a day")
    moisture_pct: float
    dry_below_pct: float
    hours_to_threshold: float
    predicted_dry: str | None
    drying_pct_per_hour: float | None
    last_reading: str | None
    lat: float
    lon: float
    walk_position: int = Field(description="1-based position in the suggested walking order")


class WateringOut(BaseModel):
    generated_at: str | None
    beds: list[BedToWater] = Field(description="most urgent first")
    walking_order: list[str] = Field(description="bed ids, nearest neighbour from the most urgent bed")
    walking_distance_m: float


class BedOut(BaseModel):
    bed_id: str
    name: str
    lat: float
    lon: float
    dry_below_pct: float
    wet_above_pct: float
    suggested_dry_below_pct: float | None = Field(
        None,
        description="the bed's own dry threshold, learned from its record once it has calibration_days of it "
        "(probes read in ranges of their own); null until then, or when it is within 0.5 points of dry_below_pct. "
        "Only a suggestion: dry_below_pct in the registry stands until someone changes it",
    )
    suggestion_reason: str | None = Field(None, description="why, in words: when it was watered, or its daily lows")


class BedsOut(BaseModel):
    beds: list[BedOut]


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance (haversine) between two (lat, lon) points in metres."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(h))


def walking_order(places: list[tuple[str, float, float]]) -> tuple[list[str], float]:
    """Nearest-neighbour tour starting at the first place (the most urgent bed)."""
    if not places:
        return [], 0.0
    remaining = list(places[1:])
    order = [places[0]]
    total = 0.0
    while remaining:
        here = (order[-1][1], order[-1][2])
        nearest = min(remaining, key=lambda p: distance_m(here, (p[1], p[2])))
        total += distance_m(here, (nearest[1], nearest[2]))
        remaining.remove(nearest)
        order.append(nearest)
    return [p[0] for p in order], round(total, 1)


@router.get("/api/v1/flowerbeds/watering", response_model=WateringOut, responses=AUTH_ERRORS)
def watering(service: Street, _caller: StreetSide) -> WateringOut:
    """Beds that need water now or within a day, most urgent first, with a walking order."""
    now = service.clock.now_ms()
    needs = service.rules.watering_list(now)
    order, distance = walking_order([(n.bed_id, n.lat, n.lon) for n in needs])
    position = {bed: i + 1 for i, bed in enumerate(order)}
    beds = [
        BedToWater(
            bed_id=n.bed_id,
            name=n.name,
            status=n.status,
            moisture_pct=n.moisture_pct,
            dry_below_pct=n.dry_below_pct,
            hours_to_threshold=n.hours_to_threshold,
            predicted_dry=rfc3339(n.predicted_dry_ms),
            drying_pct_per_hour=n.drying_pct_per_hour,
            last_reading=rfc3339(n.last_reading_ms),
            lat=n.lat,
            lon=n.lon,
            walk_position=position[n.bed_id],
        )
        for n in needs
    ]
    return WateringOut(generated_at=rfc3339(now), beds=beds, walking_order=order, walking_distance_m=distance)


@router.get("/api/v1/flowerbeds", response_model=BedsOut, responses=AUTH_ERRORS)
def flowerbeds(service: Street, _caller: StreetSide) -> BedsOut:
    """Every flowerbed in the registry: its name, where it is, its thresholds (for maps and sensor cards) and,
    once its record is long enough, the dry threshold its own record suggests, with why."""
    suggested = {s.bed_id: s for s in service.rules.threshold_suggestions(service.clock.now_ms())}
    beds = []
    for b in service.registry.flowerbeds.values():
        own = suggested.get(b.id)
        beds.append(BedOut(
            bed_id=b.id, name=b.name, lat=b.lat, lon=b.lon, dry_below_pct=b.dry_below_pct,
            wet_above_pct=b.wet_above_pct, suggested_dry_below_pct=None if own is None else own.suggested_pct,
            suggestion_reason=None if own is None else own.reason,
        ))
    return BedsOut(beds=beds)

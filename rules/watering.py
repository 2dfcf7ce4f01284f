"""Watering: which flowerbeds need water now, which will within a day, and which are over-watered.

Each bed has its own thresholds in the registry (``dry_below_pct``, ``wet_above_pct``; 25 % and 70 % by default,
as in Wrexham's pilot). "Within a day" comes from the drying rate: a robust (Theil–Sen) slope of soil moisture
over the recent dry spell — the readings since the last rise, because a rise is rain or watering and would
otherwise make the bed look as if it were getting wetter. Hysteresis on both thresholds and on the prediction
keeps a bed hovering at a threshold from flapping.

``WateringRules.watering_list`` is what the API serves. This module must not touch alerts or storage.
"""

from __future__ import annotations

import math
import statistics
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from devices.readings import Domain, Reading
from devices.registry import DeviceSpec, Flowerbed, Registry
from rules.config import OverWateredRule, SectionLookup, WateringRule
from rules.findings import Finding
from rules.localtime import HOUR_MS, duration, hm, zone

METRIC = "soil_moisture_pct"
HISTORY_STEP_MS = 5 * 60_000
HISTORY_MS = 48 * HOUR_MS
MAX_SLOPE_POINTS = 48  # Theil–Sen is quadratic; a subsample keeps it cheap and barely changes the median
DEVICE_STALE_MS = 6 * HOUR_MS  # a bed's moisture ignores a co-located sensor silent for this long

WaterLevel = Literal["now", "soon"]


@dataclass(frozen=True, slots=True)
class WateringNeed:
    """One row of the watering list."""

    bed_id: str
    name: str
    status: WaterLevel
    moisture_pct: float
    dry_below_pct: float
    hours_to_threshold: float
    predicted_dry_ms: int | None
    drying_pct_per_hour: float | None
    last_reading_ms: int
    lat: float
    lon: float


class _History:
    """A bed's moisture over the last ``HISTORY_MS``, one point per ``HISTORY_STEP_MS``, in two flat arrays
    (16 bytes a point; a deque of tuples took about 120, most of a bed's memory)."""

    __slots__ = ("ts", "values")

    def __init__(self) -> None:
        self.ts: array[int] = array("q")
        self.values: array[float] = array("d")

    def __len__(self) -> int:
        return len(self.ts)

    def last(self) -> tuple[int, float]:
        return self.ts[-1], self.values[-1]

    def add(self, ts_ms: int, value: float) -> None:
        """Add a point, or move the newest one if the one before it is less than a step old. A late reading
        (older than the newest point) goes in its place in time."""
        if self.ts and ts_ms < self.ts[-1]:
            at = bisect_right(self.ts, ts_ms)
            self.ts.insert(at, ts_ms)
            self.values.insert(at, value)
        elif len(self.ts) >= 2 and ts_ms - self.ts[-2] < HISTORY_STEP_MS:
            self.ts[-1], self.values[-1] = ts_ms, value
        else:
            self.ts.append(ts_ms)
            self.values.append(value)
        old = bisect_left(self.ts, ts_ms - HISTORY_MS)
        if old:
            del self.ts[:old], self.values[:old]

    def first_since(self, ts_ms: int) -> tuple[int, int] | None:
        """(index, time) of the first point at or after ``ts_ms``, or ``None``."""
        start = bisect_left(self.ts, ts_ms)
        return (start, self.ts[start]) if start < len(self.ts) else None

    def since(self, ts_ms: int) -> list[tuple[int, float]]:
        start = bisect_left(self.ts, ts_ms)
        return list(zip(self.ts[start:], self.values[start:], strict=True))

    def lowest_since(self, ts_ms: int) -> float | None:
        start = bisect_left(self.ts, ts_ms)
        return min(self.values[start:]) if start < len(self.ts) else None


@dataclass
class _Bed:
    latest_by_device: dict[str, tuple[int, float]] = field(default_factory=dict)
    history: _History = field(default_factory=_History)
    last_rise_ms: int | None = None
    level: WaterLevel | None = None
    over: bool = False


def drying_rate(points: list[tuple[int, float]]) -> float | None:
    """Moisture change in % per hour by the median of pairwise slopes (robust to single odd readings)."""
    if len(points) > MAX_SLOPE_POINTS:
        step = len(points) / MAX_SLOPE_POINTS
        points = [points[int(i * step)] for i in range(MAX_SLOPE_POINTS)] + [points[-1]]
    slopes = [
        (v2 - v1) / ((t2 - t1) / HOUR_MS)
        for i, (t1, v1) in enumerate(points)
        for (t2, v2) in points[i + 1 :]
        if t2 > t1
    ]
    return statistics.median(slopes) if slopes else None


class WateringRules:
    """Soil-moisture rules for every flowerbed in the registry."""

    domains: frozenset[Domain] = frozenset({"soil"})

    def __init__(self, registry: Registry, lookup: SectionLookup) -> None:
        self._registry = registry
        self._lookup = lookup
        self._beds: dict[str, _Bed] = {}

    def start(self, now_ms: int) -> None:
        return None

    def state(self) -> dict[str, Any]:
        """Every bed's recent moisture and what was last announced (``placesense.evaluation_state``)."""
        return {"beds": self._beds}

    def restore(self, state: Mapping[str, Any]) -> None:
        self._beds.update({bed: kept for bed, kept in state["beds"].items() if bed in self._registry.flowerbeds})

    def forget(self, subject: str) -> None:
        self._beds.pop(subject, None)

    def on_time(self, now_ms: int) -> list[Finding]:
        return []

    def on_reading(self, reading: Reading, device: DeviceSpec) -> list[Finding]:
        value = reading.metrics.get(METRIC)
        bed_spec = self._registry.flowerbeds.get(reading.subject)
        if value is None or bed_spec is None:
            return []
        bed = self._beds.get(reading.subject)
        if bed is None:
            bed = self._beds[reading.subject] = _Bed()
        cfg = self._lookup.get(WateringRule, reading.subject)
        bed.latest_by_device[device.id] = (reading.ts_ms, value)
        # statistics.fmean's own arithmetic (fsum, then divide), without its overhead: this runs per soil reading.
        fresh = [v for t, v in bed.latest_by_device.values() if reading.ts_ms - t <= DEVICE_STALE_MS]
        moisture = math.fsum(fresh) / len(fresh)
        recent_low = bed.history.lowest_since(reading.ts_ms - 3 * HOUR_MS)
        if moisture > (moisture if recent_low is None else recent_low) + cfg.rise_pct:
            bed.last_rise_ms = reading.ts_ms
        # Soil moisture moves over hours: one point per few minutes is all the slope needs, and it keeps the
        # per-reading work bounded even for a sensor that reports every second.
        bed.history.add(reading.ts_ms, moisture)

        findings: list[Finding] = []
        if cfg.enabled:
            findings += self._needs_water(bed_spec, bed, cfg, reading)
        over_cfg = self._lookup.get(OverWateredRule, reading.subject)
        if over_cfg.enabled:
            findings += self._over_watered(bed_spec, bed, over_cfg, moisture, reading)
        return findings

    # -- needs water ---------------------------------------------------------------------------------

    def _estimate(self, bed: _Bed, cfg: WateringRule) -> float | None:
        """Drying rate in % per hour (positive = drying), or ``None`` without a long enough dry spell."""
        if not bed.history:
            return None
        last_ts, _ = bed.history.last()
        settled = (bed.last_rise_ms + int(cfg.settle_hours * HOUR_MS)) if bed.last_rise_ms is not None else 0
        since = max(last_ts - int(cfg.slope_window_hours * HOUR_MS), settled)
        # Check the span before building the points: most readings come before a long enough dry spell.
        first = bed.history.first_since(since)
        if first is None or len(bed.history) - first[0] < 3 or last_ts - first[1] < cfg.min_slope_hours * HOUR_MS:
            return None
        slope = drying_rate(bed.history.since(since))
        if slope is None or -slope < cfg.min_drying_pct_per_hour:
            return None
        return -slope

    def _assess(
        self, bed_spec: Flowerbed, bed: _Bed, cfg: WateringRule, now_ms: int
    ) -> tuple[WaterLevel | None, float, float | None]:
        """(level, hours to threshold from ``now_ms``, drying rate), honouring hysteresis of the last level."""
        last_ts, moisture = bed.history.last()
        dry = bed_spec.dry_below_pct
        rate = self._estimate(bed, cfg)
        hours_left = 0.0
        if rate is not None:
            hours_left = max(0.0, (moisture - dry) / rate - (now_ms - last_ts) / HOUR_MS)
        if moisture < dry or (bed.level == "now" and moisture < dry + cfg.hysteresis_pct):
            return "now", 0.0, rate
        if rate is not None:
            limit = cfg.predict_clear_hours if bed.level is not None else cfg.predict_hours
            if hours_left <= limit:
                return "soon", hours_left, rate
        return None, hours_left, rate

    def _needs_water(self, bed_spec: Flowerbed, bed: _Bed, cfg: WateringRule, reading: Reading) -> list[Finding]:
        level, hours_left, rate = self._assess(bed_spec, bed, cfg, reading.ts_ms)
        if level == bed.level:
            return []
        before, bed.level = bed.level, level
        _, moisture = bed.history.last()
        tz = zone()
        rate_words = f"; drying about {rate:.2f} % an hour" if rate is not None else ""
        evidence: dict[str, float | int | str | None] = {
            "moisture_pct": round(moisture, 1),
            "dry_below_pct": bed_spec.dry_below_pct,
            "drying_pct_per_hour": None if rate is None else round(rate, 3),
            "hours_to_threshold": round(hours_left, 1),
        }
        if level == "now":
            message = (
                f"{bed_spec.name} needs water now: soil moisture {moisture:.0f} %, below its "
                f"{bed_spec.dry_below_pct:.0f} % threshold{rate_words}."
            )
            return [self._finding("needs_water", reading, cfg.severity, message, evidence)]
        if level == "soon":
            when = reading.ts_ms + int(hours_left * HOUR_MS)
            message = (
                f"{bed_spec.name} will need water within {duration(int(hours_left * HOUR_MS))} "
                f"(around {hm(when, tz)}): soil moisture {moisture:.0f} %{rate_words}, "
                f"threshold {bed_spec.dry_below_pct:.0f} %."
            )
            return [self._finding("needs_water", reading, "info", message, evidence)]
        cause = ""
        if bed.last_rise_ms is not None and reading.ts_ms - bed.last_rise_ms <= 6 * HOUR_MS:
            cause = f" after rain or watering at {hm(bed.last_rise_ms, tz)}"
        message = f"{bed_spec.name} no longer needs water: soil moisture {moisture:.0f} %{cause}."
        severity = cfg.severity if before == "now" else "info"
        return [self._finding("needs_water", reading, severity, message, evidence, active=False)]

    # -- over-watered --------------------------------------------------------------------------------

    def _over_watered(
        self, bed_spec: Flowerbed, bed: _Bed, cfg: OverWateredRule, moisture: float, reading: Reading
    ) -> list[Finding]:
        wet = bed_spec.wet_above_pct
        over = moisture > wet or (bed.over and moisture > wet - cfg.hysteresis_pct)
        if over == bed.over:
            return []
        bed.over = over
        evidence: dict[str, float | int | str | None] = {"moisture_pct": round(moisture, 1), "wet_above_pct": wet}
        if over:
            message = (
                f"{bed_spec.name} is over-watered: soil moisture {moisture:.0f} %, above {wet:.0f} %. "
                "Skip watering; check the drainage if it stays this wet."
            )
        else:
            message = f"{bed_spec.name} is no longer over-watered: soil moisture {moisture:.0f} %."
        return [self._finding("over_watered", reading, cfg.severity, message, evidence, active=over)]

    def _finding(
        self,
        rule: str,
        reading: Reading,
        severity: Literal["info", "warning", "critical"],
        message: str,
        evidence: dict[str, float | int | str | None],
        active: bool = True,
    ) -> Finding:
        return Finding(
            rule=rule,
            audience="street",
            subject=reading.subject,
            severity=severity,
            message=message,
            at_ms=reading.ts_ms,
            active=active,
            evidence=evidence,
            device_id=reading.device_id,
        )

    # -- the list ------------------------------------------------------------------------------------

    def watering_list(self, now_ms: int) -> list[WateringNeed]:
        """Beds that need water now or are predicted to within the watering horizon, most urgent first.

        Beds that need water now come first, driest (furthest below their threshold) first; then beds
        predicted to cross their threshold, soonest first.
        """
        rows: list[WateringNeed] = []
        for bed_id, bed in self._beds.items():
            bed_spec = self._registry.flowerbeds.get(bed_id)
            cfg = self._lookup.get(WateringRule, bed_id)
            if bed_spec is None or not bed.history or not cfg.enabled:
                continue
            level, hours_left, rate = self._assess(bed_spec, bed, cfg, now_ms)
            if level is None:
                continue
            last_ts, moisture = bed.history.last()
            rows.append(
                WateringNeed(
                    bed_id=bed_id,
                    name=bed_spec.name,
                    status=level,
                    moisture_pct=round(moisture, 1),
                    dry_below_pct=bed_spec.dry_below_pct,
                    hours_to_threshold=round(hours_left, 1),
                    predicted_dry_ms=None if rate is None else now_ms + int(hours_left * HOUR_MS),
                    drying_pct_per_hour=None if rate is None else round(rate, 3),
                    last_reading_ms=last_ts,
                    lat=bed_spec.lat,
                    lon=bed_spec.lon,
                )
            )
        rows.sort(
            key=lambda r: (0, r.moisture_pct - r.dry_below_pct) if r.status == "now" else (1, r.hours_to_threshold)
        )
        return rows

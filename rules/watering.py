"""Watering: which flowerbeds need water now, which will within a day, and which are over-watered.

Each bed has its own thresholds in the registry (``dry_below_pct``, ``wet_above_pct``; 25 % and 70 % by default,
as in Wrexham's pilot). Probes read in ranges of their own (11–30 % is common), so after ``calibration_days`` of
readings the bed offers a threshold of its own (``threshold_suggestions``, worked out in
``rules.watering_thresholds``): the moisture it was at when it was watered, or the low end of its record, with the
reason in words.

A bed is at one of three levels, and only moisture moves it (``rules.watering_forecast`` does the arithmetic):

- **now**: its moisture (the median of the last hour, not one noisy reading) is below ``dry_below_pct``. It
  stays until the moisture rises clear of the threshold (rain or watering), or someone marks it watered (then it
  stays off the list for ``WATERED_QUIET_MS`` while the water reaches the probe, and comes back if it never does).
- **soon**: the drying forecast says it crosses within ``predict_hours`` even at the slow end of its drying rate,
  and the bed is drying clearly faster than the probe's noise; or, with two days of this dry spell, its daily low
  will be below its threshold less a noise step tomorrow even if the low's fall halves (it needs water by about the
  time of tomorrow's low: beds cross at their daily low, and this warns of slow beds before they cross). The
  announcement ("needs water by about 14:00 tomorrow", with the confidence) *stands* until it comes true (the bed
  goes to now), the moisture rises (rain or watering, or a slow climb of ``hysteresis_pct`` above where it was
  announced: the forecast was wrong, and it says so), or the bed is marked watered. A changing forecast, or a
  crossing that comes later than it said, never withdraws it: the bed is still drier than when it was announced.
- **none**: everything else, including a settled bed whose moisture barely moves.

A rise of ``rise_pct`` or six times the probe's noise (whichever is more) within three hours is rain or
watering: the drying rate starts again after ``settle_hours`` of drainage, and for two days the slower of the
last 12 and 24 hours' rates is used, as drainage slows down. A bed whose newest reading is older than
``stale_hours`` is not listed: the list must not send anyone on old news (the offline rule tells about the probe).

``WateringRules.watering_list`` is what the API serves; ``mark_watered`` is for the API to call when an operative
says they watered a bed. This module must not touch alerts or storage.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from zoneinfo import ZoneInfo

from devices.readings import Domain, Reading
from devices.registry import DeviceSpec, Flowerbed, Registry
from placesense.basics.findings import Finding, Severity
from placesense.basics.localtime import hm, local, zone
from placesense.basics.memory import keep_last
from placesense.basics.texts import Text, text
from placesense.basics.timeunits import DAY_MS, HOUR_MS
from rules.config import OverWateredRule, SectionLookup, WateringRule
from rules.watering_forecast import (
    DailyLow,
    Forecast,
    Rate,
    daily_low,
    drying_rate,
    estimate_rate,
    forecast,
    low_forecast,
    median_since,
    noise_pct,
    slowing_per_day,
)
from rules.watering_thresholds import ThresholdSuggestion, suggest_threshold

__all__ = ["ThresholdSuggestion", "WateringNeed", "WateringRules", "drying_rate"]

METRIC = "soil_moisture_pct"
HISTORY_STEP_MS = 5 * 60_000
HISTORY_MS = 72 * HOUR_MS  # two days of drying rates, and the hours before them
DEVICE_STALE_MS = 6 * HOUR_MS  # a bed's moisture ignores a co-located sensor silent for this long
RISE_WITHIN_MS = 3 * HOUR_MS
DRAINAGE_MS = 48 * HOUR_MS
CLEAR_HOLD_MS = 3 * HOUR_MS  # a dry bed clears once its moisture has stayed above its threshold this long
LEVEL_WINDOW_MS = HOUR_MS  # moisture is the median of this much of the newest record
LOWS_KEPT = 12  # moisture just before each of the latest rises: what the bed is usually watered at
DAYS_KEPT = 60  # daily lows kept for the threshold suggestion
RATE_EVERY_MS = 30 * 60_000
SLOWING_EVERY_MS = 3 * HOUR_MS
WATERED_QUIET_MS = 6 * HOUR_MS  # after being marked watered, no new announcement for this long
# After an operative marks a bed watered, a rise of a few times the probe's noise within this long is that
# watering (a can of water moves a probe less than rain does), so its drainage is not taken for drying.
WATERED_RISE_MS = 6 * HOUR_MS
WATERED_RISE_NOISES = 3.0
# A bed is announced when even the slow end of its drying rate reaches the threshold within this share of the
# horizon: replayed on real probes, crossings came 1.3 times later than the slow end said (median), so a bed
# announced at 0.6 × 24 h usually crosses within the 24 h its message promises.
ANNOUNCE_SHARE = 0.6

WaterLevel = Literal["now", "soon"]
Confidence = Literal["high", "medium"]


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
    confidence: Confidence | None = None
    latest_dry_ms: int | None = None  # at the slow end of the drying rate


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

    def since(self, ts_ms: int) -> list[tuple[int, float]]:
        start = bisect_left(self.ts, ts_ms)
        return list(zip(self.ts[start:], self.values[start:], strict=True))

    def lowest_since(self, ts_ms: int) -> float | None:
        start = bisect_left(self.ts, ts_ms)
        return min(self.values[start:]) if start < len(self.ts) else None


@dataclass(slots=True)
class _Bed:
    latest_by_device: dict[str, tuple[int, float]] = field(default_factory=dict)
    history: _History = field(default_factory=_History)
    last_rise_ms: int | None = None
    level: WaterLevel | None = None
    level_since_ms: int = 0
    announced_by_ms: int | None = None  # the time a standing "soon" gave
    announced_pct: float | None = None  # the moisture it was announced at
    watered_ms: int | None = None  # marked watered by a person
    over: bool = False
    first_ms: int | None = None
    # The drying rate (Theil-Sen over a day is the costly part of a reading): recomputed once per RATE_EVERY_MS
    # of the bed's record or after a rise, not on every reading; a day's rate hardly moves in half an hour.
    rate: Rate | None = None
    slowing: float = 1.0
    rate_ms: int = -HISTORY_MS
    rate_rise_ms: int | None = None
    slowing_ms: int = -HISTORY_MS
    noise: float = 0.1
    low: DailyLow | None = None  # the daily low of the last two days of this dry spell, refitted with the rate
    lows_before_rises: array[float] = field(default_factory=lambda: array("d"))
    daily_lows: array[float] = field(default_factory=lambda: array("d"))
    day: int | None = None  # epoch day of the last entry of ``daily_lows``


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
        self._note_rise(bed, cfg, reading.ts_ms, moisture)
        # Soil moisture moves over hours: one point per few minutes is all the slope needs, and it keeps the
        # per-reading work bounded even for a sensor that reports every second.
        bed.history.add(reading.ts_ms, moisture)
        self._note_day(bed, reading.ts_ms, moisture)

        findings: list[Finding] = []
        if cfg.enabled:
            findings += self._needs_water(bed_spec, bed, cfg, reading)
        over_cfg = self._lookup.get(OverWateredRule, reading.subject)
        if over_cfg.enabled:
            findings += self._over_watered(bed_spec, bed, over_cfg, moisture, reading)
        return findings

    # -- what the record says -------------------------------------------------------------------------

    @staticmethod
    def _noise(bed: _Bed) -> float:
        return bed.noise

    def _rise_needed(self, bed: _Bed, cfg: WateringRule, ts_ms: int) -> float:
        needed = max(cfg.rise_pct, 6.0 * self._noise(bed))
        if bed.watered_ms is not None and 0 <= ts_ms - bed.watered_ms <= WATERED_RISE_MS:
            return min(needed, WATERED_RISE_NOISES * self._noise(bed))
        return needed

    def _note_rise(self, bed: _Bed, cfg: WateringRule, ts_ms: int, moisture: float) -> None:
        recent_low = bed.history.lowest_since(ts_ms - RISE_WITHIN_MS)
        if recent_low is None or moisture <= recent_low + self._rise_needed(bed, cfg, ts_ms):
            return
        if bed.last_rise_ms is None or ts_ms - bed.last_rise_ms > RISE_WITHIN_MS:
            keep_last(bed.lows_before_rises, recent_low, LOWS_KEPT)  # a new rise, not the same one going on
        bed.last_rise_ms = ts_ms

    @staticmethod
    def _note_day(bed: _Bed, ts_ms: int, moisture: float) -> None:
        if bed.first_ms is None:
            bed.first_ms = ts_ms
        day = ts_ms // (24 * HOUR_MS)
        if bed.day != day:
            bed.day = day
            keep_last(bed.daily_lows, moisture, DAYS_KEPT)
        elif moisture < bed.daily_lows[-1]:
            bed.daily_lows[-1] = moisture

    def _moisture(self, bed: _Bed) -> float:
        last_ts, last = bed.history.last()
        level = median_since(bed.history.since(last_ts - LEVEL_WINDOW_MS), last_ts - LEVEL_WINDOW_MS)
        return last if level is None else level

    def _forecast(self, bed: _Bed, bed_spec: Flowerbed, cfg: WateringRule, moisture: float) -> Forecast | None:
        """When the bed crosses its threshold, or None while it is not clearly drying (settled, or draining).

        Confident when the slow end of the drying rate gets there within ``ANNOUNCE_SHARE`` of the horizon, or
        when the bed's daily low will be below its threshold tomorrow even if its fall halves (then the time is
        that of tomorrow's low, by which the bed will need water)."""
        last_ts, _ = bed.history.last()
        if last_ts - bed.rate_ms >= RATE_EVERY_MS or bed.rate_rise_ms != bed.last_rise_ms or last_ts < bed.rate_ms:
            self._update_rate(bed, cfg, last_ts)
        rate = bed.rate
        outlook = None
        # Settled: slower than the probe can show in a day, or not clearly drying at all.
        if rate is not None and rate.central >= max(cfg.min_drying_pct_per_hour, bed.noise / 24.0) and rate.slow > 0:
            horizon = ANNOUNCE_SHARE * cfg.predict_hours
            outlook = forecast(moisture, bed_spec.dry_below_pct, rate, horizon, bed.slowing)
            if outlook.confident:
                return outlook
        low = bed.low
        hours = None if low is None else low_forecast(low, bed_spec.dry_below_pct, bed.noise, last_ts)
        if low is None or hours is None or hours > cfg.predict_hours:
            return outlook
        if outlook is None:  # slower than the rate the forecast calls drying: the low's fall says how fast
            per_hour = low.fall / 24.0
            rate = Rate(central=per_hour, slow=per_hour / 2.0, fast=per_hour)
        else:
            rate = outlook.rate
        return Forecast(rate, hours, hours, True, by_daily_low=True)

    def _update_rate(self, bed: _Bed, cfg: WateringRule, last_ts: int) -> None:
        bed.rate_ms, bed.rate_rise_ms = last_ts, bed.last_rise_ms
        bed.noise = noise_pct(bed.history.values[-48:])
        settled = (bed.last_rise_ms + int(cfg.settle_hours * HOUR_MS)) if bed.last_rise_ms is not None else 0
        bed.low = daily_low(bed.history.since(max(last_ts - 2 * DAY_MS, settled)), last_ts)
        window_ms = int(cfg.slope_window_hours * HOUR_MS)
        rate = estimate_rate(bed.history.since(max(last_ts - window_ms, settled)), cfg.min_slope_hours)
        bed.rate = rate
        if rate is None:
            bed.slowing = 1.0
            return
        if bed.last_rise_ms is not None and last_ts - bed.last_rise_ms < DRAINAGE_MS:
            # Drainage slows as it goes: the latest half day is the better guide when it is slower.
            late = estimate_rate(bed.history.since(max(last_ts - window_ms // 2, settled)), cfg.min_slope_hours / 2)
            if late is not None and late.central < rate.central:
                bed.rate = late
        # Soil dries more slowly as it dries: with two whole days of this dry spell, the day-on-day slowing
        # carries on into the forecast.
        if last_ts - 2 * window_ms < settled:
            bed.slowing = 1.0
        elif last_ts - bed.slowing_ms >= SLOWING_EVERY_MS or last_ts < bed.slowing_ms:
            bed.slowing_ms = last_ts
            two_days = bed.history.since(last_ts - 2 * window_ms)
            day_before = estimate_rate(two_days[: len(two_days) // 2], cfg.min_slope_hours)
            last_day = estimate_rate(bed.history.since(last_ts - window_ms), cfg.min_slope_hours)
            bed.slowing = slowing_per_day(last_day, day_before)

    # -- needs water ---------------------------------------------------------------------------------

    def _assess(
        self, bed_spec: Flowerbed, bed: _Bed, cfg: WateringRule
    ) -> tuple[WaterLevel | None, Forecast | None, str | None]:
        """(level, forecast, why a standing level ends) honouring what the bed already announced."""
        last_ts, _ = bed.history.last()
        moisture = self._moisture(bed)
        dry = bed_spec.dry_below_pct
        outlook = self._forecast(bed, bed_spec, cfg, moisture)
        rose = bed.last_rise_ms is not None and bed.last_rise_ms > bed.level_since_ms
        watered = bed.watered_ms is not None and bed.watered_ms >= bed.level_since_ms
        if bed.level == "now":
            # Clear of the threshold for the last few hours, not for one reading: a little water drains back
            # below it within hours, and the bed still needs watering.
            clear_of = dry + max(cfg.hysteresis_pct, 2.0 * self._noise(bed))
            held = bed.history.lowest_since(last_ts - CLEAR_HOLD_MS)
            clear = moisture >= clear_of and held is not None and held >= dry and (
                bed.history.ts[0] <= last_ts - CLEAR_HOLD_MS
            )
            if clear or watered:
                return None, outlook, "watered" if watered and not clear else "rose"
            return "now", outlook, None
        # Marked watered: water takes a while to reach the probe, so the bed stays off the list for a few hours
        # even while the probe still reads dry; if it still does after that, it comes back.
        quiet = bed.watered_ms is not None and 0 <= last_ts - bed.watered_ms < WATERED_QUIET_MS
        if bed.level is None and quiet:
            return None, outlook, None
        if moisture < dry:
            return "now", outlook, None
        if bed.level == "soon":
            if rose or watered:
                return None, outlook, "watered" if watered and not rose else "rose"
            # A forecast that came late is not withdrawn: the bed is still drier than when it was announced and
            # still needs water soon. Only moisture that climbed clear of where it was announced (slowly, without a
            # rise the rule sees as rain or watering) takes it off, as it would a dry bed.
            wetter = bed.announced_pct is not None and moisture >= bed.announced_pct + max(
                cfg.hysteresis_pct, 2.0 * self._noise(bed)
            )
            if wetter:
                return None, outlook, "slowed"
            return "soon", outlook, None
        if outlook is not None and outlook.confident:
            return "soon", outlook, None
        return None, outlook, None

    def _needs_water(self, bed_spec: Flowerbed, bed: _Bed, cfg: WateringRule, reading: Reading) -> list[Finding]:
        level, outlook, why = self._assess(bed_spec, bed, cfg)
        if level == bed.level:
            return []
        before, bed.level = bed.level, level
        bed.level_since_ms = reading.ts_ms
        bed.announced_by_ms = None
        moisture = self._moisture(bed)
        bed.announced_pct = moisture if level == "soon" else None
        return [self._level_finding(bed_spec, bed, cfg, reading.ts_ms, before, outlook, why, moisture, reading)]

    def _level_finding(
        self,
        bed_spec: Flowerbed,
        bed: _Bed,
        cfg: WateringRule,
        at_ms: int,
        before: WaterLevel | None,
        outlook: Forecast | None,
        why: str | None,
        moisture: float,
        reading: Reading | None,
    ) -> Finding:
        tz = zone()
        level = bed.level
        rate = outlook.rate.central if outlook is not None else None
        hours = outlook.hours if outlook is not None and math.isfinite(outlook.hours) else None
        rate_words = text("needs_water.rate", rate=rate) if rate is not None else text("empty")
        evidence: dict[str, float | int | str | None] = {
            "status": level,
            "moisture_pct": round(moisture, 1),
            "dry_below_pct": bed_spec.dry_below_pct,
            "drying_pct_per_hour": None if rate is None else round(rate, 3),
            # None, not infinity, when the forecast never gets there: the alert store and the API speak JSON.
            "hours_to_threshold": None if hours is None else round(hours, 1),
        }
        device = reading.device_id if reading is not None else None
        if level == "now":
            message = text(
                "needs_water", bed=bed_spec.name, moisture=moisture, threshold=bed_spec.dry_below_pct, rate=rate_words
            )
            return self._finding("needs_water", bed_spec, at_ms, cfg.severity, message, evidence, True, device)
        if level == "soon":
            assert outlook is not None
            by_ms = at_ms + int(outlook.hours * HOUR_MS)
            bed.announced_by_ms = by_ms
            confidence = _confidence(outlook)
            evidence["confidence"] = confidence
            evidence["predicted_dry_ms"] = by_ms
            by, day = _when(by_ms, at_ms, tz)
            message = text(
                "needs_water.soon", bed=bed_spec.name, by=by, day=day, within=int(outlook.hours * HOUR_MS),
                confidence=confidence, moisture=moisture, rate=rate_words, threshold=bed_spec.dry_below_pct,
            )
            return self._finding("needs_water", bed_spec, at_ms, "info", message, evidence, True, device)
        if why == "watered" and bed.watered_ms is not None:
            cause = text("needs_water.watered", time=hm(bed.watered_ms, tz))
        elif why == "slowed":
            cause = text("needs_water.slowed")
        elif bed.last_rise_ms is not None and at_ms - bed.last_rise_ms <= 6 * HOUR_MS:
            cause = text("needs_water.rained", time=hm(bed.last_rise_ms, tz))
        else:
            cause = text("empty")
        message = text("needs_water.cleared", bed=bed_spec.name, cause=cause, moisture=moisture)
        severity: Severity = cfg.severity if before == "now" else "info"
        return self._finding("needs_water", bed_spec, at_ms, severity, message, evidence, False, device)

    def mark_watered(self, bed_id: str, at_ms: int) -> list[Finding]:
        """An operative watered ``bed_id`` at ``at_ms``: it leaves the list now (the probe confirms with a rise,
        which the forecast takes as this watering even when it is small), and is not listed again for a few hours.
        Returns the finding that clears its alert, if it had one."""
        bed = self._beds.get(bed_id)
        bed_spec = self._registry.flowerbeds.get(bed_id)
        if bed_spec is None:
            raise KeyError(bed_id)
        if bed is None or not bed.history:
            return []
        bed.watered_ms = at_ms
        if bed.level is None:
            return []
        before, bed.level = bed.level, None
        bed.level_since_ms, bed.announced_by_ms, bed.announced_pct = at_ms, None, None
        cfg = self._lookup.get(WateringRule, bed_id)
        return [self._level_finding(bed_spec, bed, cfg, at_ms, before, None, "watered", self._moisture(bed), None)]

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
            message = text("over_watered", bed=bed_spec.name, moisture=moisture, wet=wet)
        else:
            message = text("over_watered.cleared", bed=bed_spec.name, moisture=moisture)
        return [
            self._finding("over_watered", bed_spec, reading.ts_ms, cfg.severity, message, evidence, over,
                          reading.device_id)
        ]

    @staticmethod
    def _finding(
        rule: str,
        bed_spec: Flowerbed,
        at_ms: int,
        severity: Severity,
        message: Text,
        evidence: dict[str, float | int | str | None],
        active: bool,
        device_id: str | None,
    ) -> Finding:
        return Finding(
            rule=rule,
            audience="street",
            subject=bed_spec.id,
            severity=severity,
            message=message.english,
            text=message,
            at_ms=at_ms,
            active=active,
            evidence=evidence,
            device_id=device_id,
        )

    # -- the list ------------------------------------------------------------------------------------

    def watering_list(self, now_ms: int) -> list[WateringNeed]:
        """Beds that need water now or will within the watering horizon, most urgent first.

        Beds that need water now come first, driest (furthest below their threshold) first; then beds
        announced to cross their threshold, soonest first. A bed whose newest reading is older than
        ``stale_hours`` is left out.
        """
        rows: list[WateringNeed] = []
        for bed_id, bed in self._beds.items():
            bed_spec = self._registry.flowerbeds.get(bed_id)
            cfg = self._lookup.get(WateringRule, bed_id)
            if bed_spec is None or not bed.history or not cfg.enabled or bed.level is None:
                continue
            last_ts, _ = bed.history.last()
            if now_ms - last_ts > cfg.stale_hours * HOUR_MS:
                continue
            moisture = self._moisture(bed)
            outlook = self._forecast(bed, bed_spec, cfg, moisture)
            elapsed = max(0.0, (now_ms - last_ts) / HOUR_MS)
            hours_left, predicted, late = _time_left(bed, outlook, now_ms, elapsed)
            rows.append(
                WateringNeed(
                    bed_id=bed_id,
                    name=bed_spec.name,
                    status=bed.level,
                    moisture_pct=round(moisture, 1),
                    dry_below_pct=bed_spec.dry_below_pct,
                    hours_to_threshold=round(hours_left, 1),
                    predicted_dry_ms=predicted,
                    drying_pct_per_hour=None if outlook is None else round(outlook.rate.central, 3),
                    last_reading_ms=last_ts,
                    lat=bed_spec.lat,
                    lon=bed_spec.lon,
                    confidence=None if outlook is None or bed.level == "now" else _confidence(outlook),
                    latest_dry_ms=late,
                )
            )
        rows.sort(
            key=lambda r: (0, r.moisture_pct - r.dry_below_pct) if r.status == "now" else (1, r.hours_to_threshold)
        )
        return rows

    def threshold_suggestions(self, now_ms: int) -> list[ThresholdSuggestion]:
        """Each bed's own ``dry_below_pct`` once it has ``calibration_days`` of record, with the reason
        (``rules.watering_thresholds``)."""
        suggestions = []
        for bed_id, bed in self._beds.items():
            bed_spec = self._registry.flowerbeds.get(bed_id)
            if bed_spec is None:
                continue
            cfg = self._lookup.get(WateringRule, bed_id)
            suggestion = suggest_threshold(bed_id, bed, bed_spec.dry_below_pct, cfg.calibration_days, now_ms)
            if suggestion is not None:
                suggestions.append(suggestion)
        return suggestions


def _time_left(
    bed: _Bed, outlook: Forecast | None, now_ms: int, elapsed: float
) -> tuple[float, int | None, int | None]:
    """(hours to the threshold, when, latest when) of a listed bed, ``elapsed`` hours after its newest reading.

    A standing "soon" keeps the time it announced while its forecast has none to give: the bed stopped clearly
    drying, or its drying now slows so much that the central rate never gets there (an infinite time)."""
    if bed.level == "now":
        return 0.0, None if outlook is None else now_ms, None
    late = None
    if outlook is not None and math.isfinite(outlook.hours_late):
        late = now_ms + int(max(0.0, outlook.hours_late - elapsed) * HOUR_MS)
    if outlook is not None and math.isfinite(outlook.hours):
        hours_left = max(0.0, outlook.hours - elapsed)
        return hours_left, now_ms + int(hours_left * HOUR_MS), late
    by_ms = bed.announced_by_ms
    return (0.0 if by_ms is None else max(0.0, (by_ms - now_ms) / HOUR_MS)), by_ms, late


def _confidence(outlook: Forecast) -> Confidence:
    # High when even the slow end of the drying rate crosses within a day and the range is not wide; a forecast
    # from the daily low's fall alone rests on one day's fall, so it is medium.
    if outlook.by_daily_low:
        return "medium"
    return "high" if outlook.hours_late <= 1.5 * outlook.hours and outlook.hours_late <= 24.0 else "medium"


def _when(by_ms: int, now_ms: int, tz: ZoneInfo) -> tuple[str, int | str]:
    """The time rounded to the half hour and its day for ``placesense.basics.texts``: 0 today, 1 tomorrow, 'w4' on
    Friday."""
    rounded = round(by_ms / (30 * 60_000)) * 30 * 60_000
    moment, today = local(rounded, tz), local(now_ms, tz).date()
    days = (moment.date() - today).days
    day: int | str = days if days in (0, 1) else f"w{moment.weekday()}"
    return f"{moment:%H:%M}", day

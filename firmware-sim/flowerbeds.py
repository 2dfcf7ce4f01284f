"""Flowerbeds: soil moisture that dries with warmth and sun, rises with rain and with the operatives' watering.

Each bed has its own soil (field capacity, wilting point), exposure to sun and to rain. Water balance in 10-min
steps: evapotranspiration grows with air temperature, daylight and sunshine and slows as the soil dries; rain
adds moisture (drained back to field capacity within hours); on working days a street team waters beds that are
below their "needs water" threshold up to field capacity. The soil sensor reads every 20 or 30 minutes.
``bed_drying_out`` shelters a bed from rain and watering and makes it dry fast, in any season: besides
evaporation (little in a British winter) the sheltered planter drains and loses water to the wind at a steady
rate, so it falls below its threshold within about two days even in December. This module decides what the
soil does; it must not number messages, drain batteries or publish.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from firmware_sim.anomalies import AnomalyType, Injection
from firmware_sim.firmware import Metrics
from firmware_sim.timebase import Day
from firmware_sim.weather import Weather

from devices.registry import DeviceSpec, Flowerbed
from placesense.basics.timeunits import HOUR_MS, MINUTE_MS

RawEvent = tuple[int, str, Metrics]
STEP_MS = 10 * MINUTE_MS
SATURATION_PCT = 52.0
# %vol lost per hour per °C above 4 °C at full daylight and sunshine (about 3.7 %/day on a sunny 18 °C day).
ET_PCT_PER_DEGREE_HOUR = 0.03
DRYING_OUT_FACTOR = 2.5
# %vol per hour a drying-out bed loses whatever the weather (drainage and wind): about 8 points a day.
DRYING_OUT_FLOOR_PCT_PER_HOUR = 0.35


class BedModel:
    """One flowerbed's soil and its sensor."""

    def __init__(
        self,
        bed: Flowerbed,
        device: DeviceSpec | None,
        weather: Weather,
        seed: int,
        injections: Sequence[Injection] = (),
        report_every_ms: int | None = None,
    ) -> None:
        self.bed = bed
        self.device = device
        self._weather = weather
        self._seed = seed
        self.injections = list(injections)
        rng = random.Random(f"{seed}:bed:{bed.id}")
        self._rng = rng
        self.field_capacity_pct = rng.uniform(36.0, 44.0)
        self.wilting_point_pct = rng.uniform(8.0, 12.0)
        self._exposure = rng.uniform(0.7, 1.4)  # sun and wind; planters on paving dry fastest
        self._rain_catch = rng.uniform(0.5, 1.0)  # trees and walls keep some rain off
        self._round_h = rng.uniform(9.0, 14.0)  # when the watering round passes this bed
        self._interval_ms = rng.choice((20, 30)) * MINUTE_MS
        if report_every_ms:
            self._interval_ms = report_every_ms
        self.moisture_pct = rng.uniform(28.0, self.field_capacity_pct)
        self._soil_c: float | None = None
        self._clock_ms: int | None = None
        self._next_reading_ms: int | None = None
        self.waterings: list[int] = []

    def plan_injection(self, kind: AnomalyType, day: Day, rng: random.Random) -> Injection:
        if kind != "bed_drying_out":
            raise ValueError(f"{kind} is not a flowerbed anomaly")
        span_days = rng.randint(4, 7)
        return Injection(kind, self.bed.id, day.base_ms, day.base_ms + span_days * 86_400_000,
                         device=self.device.id if self.device else None,
                         details={"days": span_days, "drying_factor": DRYING_OUT_FACTOR,
                                  "drying_floor_pct_per_h": DRYING_OUT_FLOOR_PCT_PER_HOUR,
                                  "cause": "no rain reaching the bed and no watering"})

    def _drying_out(self, ts_ms: int) -> bool:
        return any(i.type == "bed_drying_out" and i.covers(ts_ms) for i in self.injections)

    def events_for_day(self, day: Day) -> list[RawEvent]:
        rng = self._rng
        weather = self._weather
        if self._clock_ms is None:
            self._clock_ms = day.base_ms
            self._soil_c = weather.day_weather(day).mean_temp_c
            self._next_reading_ms = day.base_ms + round(rng.uniform(0, 1) * self._interval_ms)
        assert self._soil_c is not None and self._next_reading_ms is not None
        round_ms = day.at(self._round_h)
        # Operatives work Monday to Friday and now and then miss a round.
        round_today = day.date.weekday() < 5 and rng.random() < 0.9
        events: list[RawEvent] = []
        step_h = STEP_MS / HOUR_MS
        while self._clock_ms < day.next_base_ms:
            now = self._clock_ms
            drying_out = self._drying_out(now)
            air_c = weather.temperature_c(now)
            stress = min(1.0, max(0.0, (self.moisture_pct - self.wilting_point_pct)
                                  / (0.6 * (self.field_capacity_pct - self.wilting_point_pct))))
            et_pct = (ET_PCT_PER_DEGREE_HOUR * self._exposure * max(0.0, air_c - 4.0) * weather.daylight(now)
                      * (0.4 + 0.6 * weather.sunshine(now)) * stress * step_h)
            if drying_out:
                et_pct = max(et_pct * DRYING_OUT_FACTOR,
                             DRYING_OUT_FLOOR_PCT_PER_HOUR * self._exposure * stress * step_h)
            else:
                self.moisture_pct += weather.rain_mm_per_h(now) * step_h * self._rain_catch
            self.moisture_pct = min(SATURATION_PCT, self.moisture_pct - et_pct)
            if self.moisture_pct > self.field_capacity_pct:
                # Water above field capacity drains away within hours.
                excess = self.moisture_pct - self.field_capacity_pct
                self.moisture_pct -= excess * (1 - math.exp(-step_h / 4.0))
            watering_due = round_today and now <= round_ms < now + STEP_MS and not drying_out
            if watering_due and self.moisture_pct < self.bed.dry_below_pct:
                self.moisture_pct = self.field_capacity_pct + rng.uniform(0.0, 2.0)
                self.waterings.append(round_ms)
            # Soil temperature lags the air by hours and swings much less.
            self._soil_c += (air_c - self._soil_c) * (1 - math.exp(-step_h / 10.0))
            step_end = now + STEP_MS
            while self._next_reading_ms < step_end:
                if self.device is not None:
                    events.append((self._next_reading_ms, self.device.id, {
                        "soil_moisture_pct": round(max(0.0, self.moisture_pct + rng.gauss(0, 0.2)), 2),
                        "soil_temperature_c": round(self._soil_c + rng.gauss(0, 0.05), 2),
                    }))
                self._next_reading_ms += self._interval_ms + round(rng.uniform(-20, 20) * 1000)
            self._clock_ms = step_end
        return events

"""Street air: PM2.5, PM10, NO2 (and O3 where fitted), temperature and humidity at a roadside site.

NO2 follows traffic: low at night, peaks in the morning and evening rush hours on weekdays, a gentle midday
hump at weekends. Particles have a regional background with multi-day episodes shared by all sites (when
continental air or calm, cold weather arrives), evening wood smoke on cold days, and rain washing them out.
O3 rises with sunshine and is eaten by NO2. A site reads every 5, 10 or 15 minutes. ``pollution_episode`` adds
a local episode (a fire, roadworks, stalled traffic) for hours. This module decides what the air does; it
must not number messages, drain batteries or publish.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from firmware_sim.anomalies import AnomalyType, Injection
from firmware_sim.firmware import Metrics
from firmware_sim.timebase import Day
from firmware_sim.weather import Weather

from devices.registry import AirSite, DeviceSpec
from placesense.basics.timeunits import HOUR_MS, MINUTE_MS

RawEvent = tuple[int, str, Metrics]


def _bump(hour: float, centre_h: float, width_h: float) -> float:
    return math.exp(-0.5 * ((hour - centre_h) / width_h) ** 2)


def traffic(hour: float, weekend: bool) -> float:
    """Relative traffic on a town road: about 1 at the weekday morning peak, near 0 at 3 am."""
    if weekend:
        return 0.05 + 0.45 * _bump(hour, 13.0, 3.5)
    daytime = 0.3 if 7.0 <= hour < 19.0 else 0.0
    return 0.04 + daytime + 0.75 * _bump(hour, 8.0, 0.9) + 0.65 * _bump(hour, 17.5, 1.1)


class RegionalParticles:
    """PM episodes that every site in the town sees together."""

    def __init__(self, days: Sequence[Day], seed: int) -> None:
        rng = random.Random(f"{seed}:pm-episodes")
        self.episodes: list[tuple[int, int, float]] = []
        for day in days:
            if rng.random() < 0.07:
                start = day.at(rng.uniform(0, 24))
                self.episodes.append((start, start + round(rng.uniform(12, 48) * HOUR_MS), rng.uniform(10, 28)))
        self._dispersion = {day.index: rng.uniform(0.6, 1.4) for day in days}

    def extra_pm2_5(self, ts_ms: int) -> float:
        return sum(level for start, end, level in self.episodes if start <= ts_ms < end)

    def dispersion(self, day: Day) -> float:
        """Calm days trap pollution (above 1), windy days clear it (below 1)."""
        return self._dispersion.get(day.index, 1.0)


class AirSiteModel:
    """One roadside site and its sensor."""

    def __init__(
        self,
        site: AirSite,
        device: DeviceSpec | None,
        weather: Weather,
        regional: RegionalParticles,
        seed: int,
        site_index: int,
        injections: Sequence[Injection] = (),
        report_every_ms: int | None = None,
    ) -> None:
        self.site = site
        self.device = device
        self._weather = weather
        self._regional = regional
        self.injections = list(injections)
        rng = random.Random(f"{seed}:air:{site.id}")
        self._rng = rng
        self._background_no2 = rng.uniform(10, 20)
        self._busy_no2 = rng.uniform(25, 60)  # how much a rush hour adds on this road
        self._background_pm2_5 = rng.uniform(4, 8)
        self._coarse_ratio = rng.uniform(1.4, 1.8)
        self.has_ozone = site_index % 2 == 1  # every other site has the extra O3 cell
        self._interval_ms = rng.choice((5, 10, 15)) * MINUTE_MS
        if report_every_ms:
            self._interval_ms = report_every_ms
        self._next_reading_ms: int | None = None

    def plan_injection(self, kind: AnomalyType, day: Day, rng: random.Random) -> Injection:
        if kind != "pollution_episode":
            raise ValueError(f"{kind} is not an air-site anomaly")
        start_h = rng.uniform(6.0, 16.0)
        hours = rng.uniform(4.0, 10.0)
        details = {"pm2_5_added_ugm3": round(rng.uniform(55, 75), 1),
                   "pm10_added_ugm3": round(rng.uniform(80, 110), 1),
                   "no2_added_ugm3": round(rng.uniform(180, 260), 1), "hours": round(hours, 2)}
        return Injection(kind, self.site.id, day.at(start_h), day.at(start_h + hours),
                         device=self.device.id if self.device else None, details=details)

    def events_for_day(self, day: Day) -> list[RawEvent]:
        if self.device is None:
            return []
        rng = self._rng
        weather = self._weather
        if self._next_reading_ms is None:
            self._next_reading_ms = day.base_ms + round(rng.uniform(0, 1) * self._interval_ms)
        dispersion = self._regional.dispersion(day)
        low_c = weather.day_weather(day).mean_temp_c - weather.day_weather(day).temp_range_c / 2
        events: list[RawEvent] = []
        while self._next_reading_ms < day.next_base_ms:
            moment = self._next_reading_ms
            hour = day.hour_of(moment)
            air_c = weather.temperature_c(moment)
            raining = weather.rain_mm_per_h(moment) > 0
            road = traffic(hour, day.is_weekend)
            no2 = (self._background_no2 + self._busy_no2 * road) * dispersion * rng.lognormvariate(0, 0.12)
            wood_smoke = 5.0 * _bump(hour, 20.5, 2.0) * max(0.0, (10.0 - air_c) / 10.0)
            pm2_5 = (self._background_pm2_5 * dispersion + 3.0 * road + wood_smoke
                     + self._regional.extra_pm2_5(moment)) * rng.lognormvariate(0, 0.15)
            if raining:
                pm2_5 *= 0.7
            pm10 = pm2_5 * self._coarse_ratio + 2.0 + abs(rng.gauss(0, 1.5))
            for injection in self.injections:
                if injection.type == "pollution_episode" and injection.covers(moment):
                    pm2_5 += float(injection.details["pm2_5_added_ugm3"]) * rng.uniform(0.9, 1.1)
                    pm10 += float(injection.details["pm10_added_ugm3"]) * rng.uniform(0.9, 1.1)
                    no2 += float(injection.details["no2_added_ugm3"]) * rng.uniform(0.9, 1.1)
            humidity = 78 - 15 * math.cos(2 * math.pi * (hour - 15) / 24) + (12 if raining else 0)
            humidity -= 1.5 * max(0.0, air_c - low_c - 6)
            metrics: dict[str, float | bool] = {
                "pm2_5_ugm3": round(pm2_5, 1),
                "pm10_ugm3": round(pm10, 1),
                "no2_ugm3": round(no2, 1),
                "temperature_c": round(air_c + 0.6 + rng.gauss(0, 0.2), 2),
                "humidity_pct": round(min(100.0, max(20.0, humidity + rng.gauss(0, 2))), 1),
            }
            if self.has_ozone:
                ozone = 45 + 25 * weather.daylight(moment) * weather.sunshine(moment) - 0.5 * no2
                noise = rng.lognormvariate(0, 0.1)
                # Traffic's NO2 can use up the ozone; near zero the cell reads a few µg/m³ of noise, never one
                # flat value for hours (which the rules rightly call a stuck sensor).
                metrics["o3_ugm3"] = round(max(ozone * noise, 3.0 * noise**8), 1)
            events.append((moment, self.device.id, metrics))
            self._next_reading_ms = moment + self._interval_ms + round(rng.uniform(-15, 15) * 1000)
        return events

"""The town's weather, shared by every outdoor model: hourly air temperature, sunshine and rain.

Deterministic for a seed and a window. Outdoor temperature follows the UK seasonal curve (about 4 °C in
January to 17 °C in July as daily means) with day-to-day persistence and a mid-afternoon peak; rain comes as
showers on some days, more often in winter. This module only describes weather; it must not know devices.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from firmware_sim.timebase import Day

from placesense.basics.timeunits import HOUR_MS


@dataclass(frozen=True, slots=True)
class DayWeather:
    mean_temp_c: float
    temp_range_c: float  # daily maximum minus minimum
    sunshine: float  # 0 (overcast) .. 1 (clear)


class Weather:
    """Hourly weather over a list of local days; read with ``temperature_c(ts)`` and friends."""

    def __init__(self, days: list[Day], seed: int) -> None:
        self._rng = random.Random(f"{seed}:weather")
        self._days = days
        self._first_base_ms = days[0].base_ms
        self._daily: list[DayWeather] = []
        self._rain_mm_h: list[float] = []  # per hour from the first day's midnight
        anomaly = 0.0
        for day in days:
            day_of_year = day.date.timetuple().tm_yday
            seasonal_c = 10.5 - 6.2 * math.cos(2 * math.pi * (day_of_year - 20) / 365.25)
            # Weather persists for days: an AR(1) departure from the seasonal normal.
            anomaly = 0.7 * anomaly + self._rng.gauss(0, 1.6)
            winterness = 0.5 + 0.5 * math.cos(2 * math.pi * (day_of_year - 15) / 365.25)
            rainy = self._rng.random() < 0.32 + 0.2 * winterness
            sunshine = self._rng.uniform(0.0, 0.35) if rainy else self._rng.uniform(0.3, 1.0)
            self._daily.append(
                DayWeather(
                    mean_temp_c=seasonal_c + anomaly,
                    temp_range_c=3.0 + 6.0 * sunshine * (1.2 - 0.4 * winterness),
                    sunshine=sunshine,
                )
            )
            hours = round((day.next_base_ms - day.base_ms) / HOUR_MS)
            rain = [0.0] * hours
            if rainy:
                for _ in range(self._rng.randint(1, 3)):
                    start = self._rng.randrange(hours)
                    intensity_mm_h = self._rng.uniform(0.3, 3.0)
                    for hour in range(start, min(hours, start + self._rng.randint(1, 5))):
                        rain[hour] += intensity_mm_h
            self._rain_mm_h.extend(rain)

    def day_weather(self, day: Day) -> DayWeather:
        return self._daily[day.index - self._days[0].index]

    def _day_at(self, ts_ms: int) -> Day:
        guess = max(0, min(len(self._days) - 1, (ts_ms - self._first_base_ms) // 86_400_000))
        while guess > 0 and ts_ms < self._days[guess].base_ms:
            guess -= 1
        while guess < len(self._days) - 1 and ts_ms >= self._days[guess].next_base_ms:
            guess += 1
        return self._days[guess]

    def temperature_c(self, ts_ms: int) -> float:
        """Outdoor air temperature: the day's mean plus a sine peaking at 15:00 local."""
        day = self._day_at(ts_ms)
        weather = self.day_weather(day)
        hour = day.hour_of(ts_ms)
        return weather.mean_temp_c + weather.temp_range_c / 2 * math.cos(2 * math.pi * (hour - 15) / 24)

    def daylight(self, ts_ms: int) -> float:
        """0 at night, up to 1 at solar noon; the day is longer in summer."""
        day = self._day_at(ts_ms)
        day_of_year = day.date.timetuple().tm_yday
        half_length_h = 6.1 + 2.3 * -math.cos(2 * math.pi * (day_of_year + 10) / 365.25)
        from_noon_h = day.hour_of(ts_ms) - 13.0  # solar noon is near 13:00 on the UK's summer clock
        if abs(from_noon_h) >= half_length_h:
            return 0.0
        return math.cos(math.pi / 2 * from_noon_h / half_length_h)

    def sunshine(self, ts_ms: int) -> float:
        return self.day_weather(self._day_at(ts_ms)).sunshine

    def rain_mm_per_h(self, ts_ms: int) -> float:
        hour = (ts_ms - self._first_base_ms) // HOUR_MS
        if 0 <= hour < len(self._rain_mm_h):
            return self._rain_mm_h[hour]
        return 0.0

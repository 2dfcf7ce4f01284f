"""The drying forecast of one flowerbed's probe: its noise, its drying rate with an uncertainty, and when it crosses.

Real probes report in steps of about 0.1 point, wobble with the day's temperature, jump within hours after rain or
watering and then *drain* fast for a day or two before slow drying resumes. So the forecast:

- measures the probe's **noise** as the median absolute change between consecutive points of the recent record
  (at least the probe's resolution), and judges moisture by the median of the last hour, not one reading;
- fits the **drying rate** by the median of pairwise slopes (Theil–Sen) over up to a day of the current dry spell,
  which averages out the daily cycle; within two days of a rise it takes the slower of the last 12 and 24 hours,
  since drainage slows down as it goes and its early pace would predict the bed dry far too soon;
- gives the rate an **uncertainty** from the spread of the pairwise slopes, and predicts the crossing at the
  central rate and at its slow and fast ends, so "needs water by about 14:00 tomorrow" carries a confidence;
- reports **no forecast** for a settled bed (a rate below the noise a day can show, or not clearly above zero);
- follows the bed's **daily low** (the lowest hourly median of the last day) and how far it fell from the day
  before's: beds cross their threshold at their daily low, in the drying hours of the day, so a bed whose low will
  be below its threshold less a noise step tomorrow (a probe reading in steps reads below a threshold on its grid
  only a step under it) even if its fall halves (drying slows as soil dries: near the threshold the fall of the
  daily low slowed by a median ×0.7 a day on the SIMPaCT probes, lower quartile ×0.36) needs water by about the time
  of tomorrow's low. Each low is uncertain by about a step of the probe's noise, so a fall of two steps or less is
  no measured fall (a settled bed wobbling at its threshold is not announced).

Plain functions over (time, moisture) points: this module keeps no state and must not raise findings.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from placesense.basics.timeunits import DAY_MS, HOUR_MS

LOW_BIN_MS = HOUR_MS  # the daily low is the lowest of the day's hourly medians
LOW_FALL_SHARE = 0.5  # tomorrow's low is judged with half of the latest day's fall (see the module docstring)
MAX_SLOPE_POINTS = 36  # Theil–Sen is quadratic; a subsample keeps it cheap and barely changes the median
RESOLUTION_PCT = 0.1  # the step of common TDR and capacitive probes: no noise estimate goes below it


def drying_rate(points: Sequence[tuple[int, float]]) -> float | None:
    """Moisture change in % per hour by the median of pairwise slopes (robust to single odd readings)."""
    slopes = pairwise_slopes(points)
    return statistics.median(slopes) if slopes else None


def pairwise_slopes(points: Sequence[tuple[int, float]]) -> list[float]:
    if len(points) > MAX_SLOPE_POINTS:
        step = len(points) / MAX_SLOPE_POINTS
        points = [points[int(i * step)] for i in range(MAX_SLOPE_POINTS)] + [points[-1]]
    return [
        (v2 - v1) / ((t2 - t1) / HOUR_MS)
        for i, (t1, v1) in enumerate(points)
        for (t2, v2) in points[i + 1 :]
        if t2 - t1 >= HOUR_MS  # slopes over less than an hour are mostly the probe's noise
    ]


def noise_pct(values: Sequence[float]) -> float:
    """The probe's noise: median absolute change between consecutive points, at least its resolution."""
    changes = [abs(b - a) for a, b in itertools.pairwise(values)]
    return max(RESOLUTION_PCT, statistics.median(changes)) if changes else RESOLUTION_PCT


@dataclass(frozen=True, slots=True)
class Rate:
    """A drying rate in % per hour (positive = drying) and the slow and fast ends of its likely range."""

    central: float
    slow: float
    fast: float


def estimate_rate(points: Sequence[tuple[int, float]], min_span_hours: float) -> Rate | None:
    """The drying rate over ``points`` (one dry spell, oldest first), or None if too short to tell."""
    if len(points) < 3 or points[-1][0] - points[0][0] < min_span_hours * HOUR_MS:
        return None
    slopes = pairwise_slopes(points)
    if len(slopes) < 3:
        return None
    quartiles = statistics.quantiles(slopes, n=4)
    central = -statistics.median(slopes)
    # The middle half of the pairwise slopes: wide when the daily cycle or noise dominates the trend.
    return Rate(central=central, slow=-quartiles[2], fast=-quartiles[0])


@dataclass(frozen=True, slots=True)
class Forecast:
    """When a drying bed reaches its threshold, in hours from its latest point."""

    rate: Rate
    hours: float  # at the central rate
    hours_late: float  # at the slow end of the rate (inf if the slow end is not drying)
    confident: bool  # the slow end still reaches the threshold within the horizon asked about
    by_daily_low: bool = False  # from the fall of the daily low (``low_forecast``), not the rate


def hours_to_cover(distance: float, rate: float, slowing: float) -> float:
    """Hours for a bed drying at ``rate`` %/h now, its rate multiplied by ``slowing`` (≤ 1) every day, to lose
    ``distance`` points (inf if it never does: the slowing rate adds up to less than the distance)."""
    if rate <= 0:
        return math.inf
    if slowing >= 0.999:
        return distance / rate
    per_hour = -math.log(slowing) / 24.0
    reachable = rate / per_hour
    if distance >= reachable:
        return math.inf
    return -math.log(1.0 - distance / reachable) / per_hour


def forecast(moisture: float, dry_below: float, rate: Rate, horizon_hours: float, slowing: float = 1.0) -> Forecast:
    """When the bed crosses ``dry_below``; ``confident`` when even the slow end of the rate gets there within
    ``horizon_hours``."""
    distance = max(0.0, moisture - dry_below)
    hours = hours_to_cover(distance, rate.central, slowing)
    hours_late = hours_to_cover(distance, rate.slow, slowing)
    return Forecast(rate, hours, hours_late, hours_late <= horizon_hours)


def slowing_per_day(last_day: Rate | None, day_before: Rate | None) -> float:
    """How much the drying rate fell from one day to the next (soil dries more slowly as it dries), 0.25–1."""
    if last_day is None or day_before is None or day_before.central <= 0 or last_day.central <= 0:
        return 1.0
    return min(1.0, max(0.25, last_day.central / day_before.central))


def median_since(points: Sequence[tuple[int, float]], since_ms: int) -> float | None:
    recent = [v for t, v in points if t >= since_ms]
    return statistics.median(recent) if recent else None


@dataclass(frozen=True, slots=True)
class DailyLow:
    """The lowest hourly median of the last day, when it was, and how far it fell from the day before's lowest."""

    low: float
    at_ms: int
    fall: float  # positive: drier than the day before


def daily_low(points: Sequence[tuple[int, float]], now_ms: int) -> DailyLow | None:
    """The daily low of ``points`` (oldest first, one dry spell), or None without two whole days of them.

    The lowest of the day's ``LOW_BIN_MS`` medians, so neither one odd reading nor one step of a quantised probe
    sets a low; the bins are counted back from ``now_ms`` (a rolling day).
    """
    if not points or points[0][0] > now_ms - 2 * DAY_MS + LOW_BIN_MS:
        return None
    per_day = DAY_MS // LOW_BIN_MS
    bins: dict[int, list[tuple[int, float]]] = {}
    for ts, value in points:
        back = (now_ms - ts) // LOW_BIN_MS
        if 0 <= back < 2 * per_day:
            bins.setdefault(back, []).append((ts, value))
    medians = {back: (kept[-1][0], statistics.median(v for _, v in kept)) for back, kept in bins.items()}
    today = [medians[back] for back in range(per_day - 1, -1, -1) if back in medians]  # oldest first: the earliest
    before = [medians[back][1] for back in range(per_day, 2 * per_day) if back in medians]
    if 2 * len(today) < per_day or 2 * len(before) < per_day:  # half of each day at least
        return None
    at_ms, low = min(today, key=lambda kept: kept[1])
    return DailyLow(low=low, at_ms=at_ms, fall=min(before) - low)


def low_forecast(low: DailyLow, dry_below: float, noise: float, now_ms: int) -> float | None:
    """Hours to the bed's next daily low when that low will be below ``dry_below`` less a step of the probe's
    ``noise`` even if the fall halves (a probe reading in steps reads below its threshold only a step under it);
    None when it will not, or when the low did not fall by more than two noise steps."""
    if low.fall <= 2.0 * noise or low.low - LOW_FALL_SHARE * low.fall >= dry_below - noise:
        return None
    return max(0.0, (low.at_ms + DAY_MS - now_ms) / HOUR_MS)

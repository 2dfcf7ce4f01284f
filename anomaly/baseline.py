"""A home's learned normal for one daily feature: the last few weeks of values, weekdays and weekends apart.

The baseline is a rolling window (28 values per day type by default), so it adapts to slow, healthy drift
— a resident who gradually gets up later is "normal" again after a few weeks — while a sudden change stands
out. Robust statistics only (median, MAD, quantiles): one odd day does not move the usual range.

This module knows nothing about sensors or findings; it stores numbers and answers "is this usual?".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from placesense.basics.memory import keep_last
from placesense.basics.stats import quantile, robust_centre

DayType = Literal["all", "weekdays", "weekend"]


@dataclass(frozen=True, slots=True)
class Usual:
    """What is usual for a feature on this kind of day: the range a carer reads, and robust centre/scale."""

    median: float
    low: float  # 10th percentile
    high: float  # 90th percentile
    scale: float  # robust standard deviation (1.4826 × MAD), floored
    days: int  # how many days this is based on
    highest: float
    lowest: float
    mean: float  # for counts, the rate a Poisson model needs (a median of small counts is too coarse)
    variance: float = 0.0  # for counts: real homes' days vary far more than a Poisson count would
    day_type: DayType = "all"  # which days ``days`` counts: weekdays or weekend days alone, once there are enough

    @property
    def overdispersed(self) -> bool:
        """Whether the days vary at least twice as much as chance alone would make a count vary."""
        return self.variance > 2.0 * max(self.mean, 1.0)

    def z(self, value: float) -> float:
        return (value - self.median) / self.scale


class DailyBaseline:
    """Rolling per-feature history with weekday/weekend separation and a minimum scale.

    >>> wake = DailyBaseline(min_scale=15.0)
    >>> for day in range(14):
    ...     wake.add(480.0 + (day % 3) * 10, weekend=False)
    >>> usual = wake.usual(weekend=False)
    >>> (usual.low, usual.high, usual.days)
    (480.0, 500.0, 14)
    >>> round(usual.z(600.0), 1)
    7.3
    """

    def __init__(self, min_scale: float, window: int = 28, min_same_type: int = 4) -> None:
        self.min_scale = min_scale
        self.window = window
        self.min_same_type = min_same_type
        # Lists, not deques with a maxlen: a home keeps one baseline a feature, and an empty deque alone is 624 bytes.
        self._weekday: list[float] = []
        self._weekend: list[float] = []

    def __len__(self) -> int:
        return len(self._weekday) + len(self._weekend)

    def add(self, value: float, weekend: bool) -> None:
        keep_last(self._weekend if weekend else self._weekday, value, self.window)

    def usual(self, weekend: bool) -> Usual | None:
        same = self._weekend if weekend else self._weekday
        # Weekends are judged against weekends once there are a few of them; until then against every day.
        own_type = len(same) >= self.min_same_type
        values = list(same) if own_type else [*self._weekday, *self._weekend]
        if len(values) < 3:
            return None
        ordered = sorted(values)
        median, scale = robust_centre(ordered, self.min_scale)
        return Usual(
            median=median,
            low=quantile(ordered, 0.1),
            high=quantile(ordered, 0.9),
            scale=scale,
            days=len(ordered),
            highest=ordered[-1],
            lowest=ordered[0],
            mean=sum(ordered) / len(ordered),
            variance=sum((v - sum(ordered) / len(ordered)) ** 2 for v in ordered) / len(ordered),
            day_type=("weekend" if weekend else "weekdays") if own_type else "all",
        )

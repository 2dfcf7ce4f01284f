"""Slow decline in one home: the last days against the same person weeks earlier, accumulated day by day.

A decline in health shows as many small moves in the same direction: getting up later, moving about less, fewer
meals and hot drinks, going out less. Each is within a normal day's spread, and a rolling baseline that follows
healthy drift (``anomaly.baseline``) absorbs them as they come. ``DeclineWatch`` therefore judges each routine day
against a *reference* made of days at least ``lag_days`` old (three to eight weeks back by default), so the
change cannot become its own normal while it builds up, and accumulates the evidence with a one-sided CUSUM
(Page, 1954): every day adds how far it moved in the declining direction, less an allowance, and the sum never
goes below zero. A change is reported when the sum passes a threshold *and* at least two kinds of behaviour
have moved, with what changed in words a carer reads.

The signal per day is the mean over four families of robust z-scores (median and MAD of the reference, same
type of day: weekday or weekend), each clipped so one extreme day cannot carry it: getting-up time (later),
movements detected (fewer), kitchen use — kitchen visits, kettle boils and fridge openings together — (fewer)
and time out of the home (less). A family a same-day check has already reported on (a late morning, little
kitchen use) is left out of that day and of the reference, so an incident is not counted twice.

This module only holds numbers and decides; it knows nothing about sensors, readings or findings.

>>> watch = DeclineWatch(lag_days=7, min_reference_days=7)
>>> for day in range(28):
...     _ = watch.add_day({"wake_min": 450.0 + day % 3 * 10, "motion_count": 200.0 + day % 4 * 8,
...                        "kitchen_events": 14.0 + day % 2, "out_min": 60.0}, weekend=False)
>>> watch.cusum
0.0
>>> changes = [watch.add_day({"wake_min": 475.0 + day * 5, "motion_count": 185.0, "kitchen_events": 12.0,
...                           "out_min": 30.0}, weekend=False) for day in range(4)]
>>> [change is not None for change in changes]
[False, False, True, False]
>>> [(moved.feature, moved.recent, moved.usual) for moved in changes[2].moved][:2]
[('motion_count', 185.0, 208.0), ('wake_min', 480.0, 460.0)]
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from placesense.basics.stats import robust_centre

# feature -> (direction of a decline: +1 later/more, -1 fewer/less; smallest robust scale)
DECLINE_FEATURES: dict[str, tuple[int, float]] = {
    "wake_min": (+1, 15.0),
    "motion_count": (-1, 15.0),
    "kitchen_events": (-1, 2.0),
    "out_min": (-1, 40.0),
}


@dataclass(frozen=True, slots=True)
class Moved:
    """One feature's move over the days of a decline: their mean against the reference for the same days."""

    feature: str
    recent: float  # mean over the days
    usual: float  # mean of the reference medians for those days' types
    z: float  # mean robust z in the declining direction


@dataclass(frozen=True, slots=True)
class Decline:
    """A reported decline: over how many days, the accumulated evidence and what moved (most first)."""

    days: int
    cusum: float
    moved: tuple[Moved, ...]
    reference_days: int
    reference_from_days_ago: int
    reference_to_days_ago: int


class DeclineWatch:
    """Per-home one-sided CUSUM of a daily decline score against a lagged reference; bounded memory.

    ``add_day`` takes one routine day's values (a feature missing, or ``None``, is not counted that day) and
    returns a ``Decline`` when one is reported, else None. After a report the sum restarts from zero and stays
    quiet for ``quiet_days`` (a decline that goes on is reported again after that).
    """

    def __init__(
        self,
        lag_days: int = 21,
        history_days: int = 56,
        min_reference_days: int = 14,
        allowance: float = 0.4,
        threshold: float = 2.0,
        clip: float = 3.0,
        min_families: int = 2,
        family_z: float = 1.0,
        quiet_days: int = 14,
    ) -> None:
        self.lag_days = lag_days
        self.min_reference_days = min_reference_days
        self.allowance = allowance
        self.threshold = threshold
        self.clip = clip
        self.min_families = min_families
        self.family_z = family_z
        self.quiet_days = quiet_days
        self.cusum = 0.0
        self.quiet = 0
        # (weekend, value per feature or nan) for the last history_days routine days, oldest first
        self._days: deque[tuple[bool, tuple[float, ...]]] = deque(maxlen=history_days)
        # the days since the sum last stood at zero: (weekend, values, robust z per feature or nan)
        self._run: deque[tuple[bool, tuple[float, ...], tuple[float, ...]]] = deque(maxlen=14)

    def add_day(self, values: dict[str, float | None], weekend: bool) -> Decline | None:
        row = tuple(_number(values.get(feature)) for feature in DECLINE_FEATURES)
        reference = list(self._days)[: max(0, len(self._days) - self.lag_days)]
        self._days.append((weekend, row))
        if len(reference) < self.min_reference_days:
            return None
        zs = tuple(self._z(index, value, weekend, reference) for index, value in enumerate(row))
        counted = [z for z in zs if not math.isnan(z)]
        score = sum(counted) / len(counted) if counted else 0.0
        self.cusum = max(0.0, self.cusum + score - self.allowance)
        if self.cusum == 0.0:
            self._run.clear()
        else:
            self._run.append((weekend, row, zs))
        if self.quiet > 0:
            self.quiet -= 1
            return None
        if self.cusum < self.threshold:
            return None
        moved = self._moved(reference)
        if len(moved) < self.min_families:
            return None
        decline = Decline(
            days=len(self._run), cusum=self.cusum, moved=tuple(moved), reference_days=len(reference),
            reference_from_days_ago=len(self._days) - 1, reference_to_days_ago=self.lag_days + 1,
        )
        self.cusum = 0.0
        self._run.clear()
        self.quiet = self.quiet_days
        return decline

    def _z(self, index: int, value: float, weekend: bool, reference: list[tuple[bool, tuple[float, ...]]]) -> float:
        if math.isnan(value):
            return math.nan
        direction, min_scale = DECLINE_FEATURES[list(DECLINE_FEATURES)[index]]
        median, scale = _centre(index, weekend, reference, min_scale)
        if math.isnan(median):
            return math.nan
        return max(-self.clip, min(self.clip, direction * (value - median) / scale))

    def _moved(self, reference: list[tuple[bool, tuple[float, ...]]]) -> list[Moved]:
        moved: list[Moved] = []
        for index, feature in enumerate(DECLINE_FEATURES):
            min_scale = DECLINE_FEATURES[feature][1]
            days = [(weekend, row[index], zs[index]) for weekend, row, zs in self._run if not math.isnan(zs[index])]
            if not days:
                continue
            z = sum(d[2] for d in days) / len(days)
            if z < self.family_z:
                continue
            recent = sum(d[1] for d in days) / len(days)
            usual = sum(_centre(index, weekend, reference, min_scale)[0] for weekend, _, _ in days) / len(days)
            moved.append(Moved(feature=feature, recent=recent, usual=usual, z=z))
        moved.sort(key=lambda m: m.z, reverse=True)
        return moved


def _number(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _centre(
    index: int, weekend: bool, reference: list[tuple[bool, tuple[float, ...]]], min_scale: float
) -> tuple[float, float]:
    """Median and robust scale of one feature in the reference, same type of day when there are 4 of them."""
    every = [row[index] for _, row in reference if not math.isnan(row[index])]
    same = [row[index] for day_weekend, row in reference if day_weekend == weekend and not math.isnan(row[index])]
    values = sorted(same if len(same) >= 4 else every)
    if len(values) < 3:
        return math.nan, min_scale
    return robust_centre(values, min_scale)

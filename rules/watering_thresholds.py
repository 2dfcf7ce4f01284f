"""A flowerbed's own dry threshold, learned from its record: probes read in ranges of their own (11–30 % is
common), so the default 25 % would have most beds "needs water now" most of the time.

After ``calibration_days`` of readings a bed suggests a ``dry_below_pct``: the median moisture it was at just
before it was watered or rained on (three such rises at least), or else the lower quartile of its daily lows, with
the reason in words an operative or officer can check. Only a suggestion: the registry's threshold stands until
someone changes it. This module reads a bed's record and nothing else: no rule state, timers, alerts or storage.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from placesense.basics.timeunits import DAY_MS

SAME_WITHIN_PCT = 0.5  # a suggestion this close to the current threshold is not worth making


@dataclass(frozen=True, slots=True)
class ThresholdSuggestion:
    """A bed's own ``dry_below_pct``, learned from its record, and why."""

    bed_id: str
    current_pct: float
    suggested_pct: float
    days: int
    reason: str


class BedRecord(Protocol):
    """What the watering rule keeps of a bed that a threshold is learned from."""

    @property
    def first_ms(self) -> int | None: ...  # its first reading

    @property
    def daily_lows(self) -> Sequence[float]: ...  # each day's lowest moisture, oldest first

    @property
    def lows_before_rises(self) -> Sequence[float]: ...  # the moisture just before each recent rise


def suggest_threshold(
    bed_id: str, bed: BedRecord, current_pct: float, calibration_days: int, now_ms: int
) -> ThresholdSuggestion | None:
    """The bed's own ``dry_below_pct`` and why, or None: too little record yet, or no different from now."""
    if bed.first_ms is None or not bed.daily_lows:
        return None
    days = int((now_ms - bed.first_ms) // DAY_MS)
    if days < calibration_days:
        return None
    if len(bed.lows_before_rises) >= 3:
        lows = sorted(bed.lows_before_rises)
        suggested = round(statistics.median(lows), 1)
        reason = (
            f"over the last {days} days it was watered or rained on {len(lows)} times at "
            f"{lows[0]:.1f}–{lows[-1]:.1f} % (median {suggested:g} %)"
        )
    else:
        if len(bed.daily_lows) < 4:
            return None
        suggested = round(statistics.quantiles(bed.daily_lows, n=4)[0], 1)
        reason = (
            f"over the last {days} days its daily lows ranged {min(bed.daily_lows):.1f}–"
            f"{max(bed.daily_lows):.1f} %; a quarter of days went below {suggested:g} %"
        )
    if abs(suggested - current_pct) < SAME_WITHIN_PCT:
        return None
    return ThresholdSuggestion(bed_id, current_pct, suggested, days, reason)

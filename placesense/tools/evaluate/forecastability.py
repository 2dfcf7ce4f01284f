"""How well any drying forecast of the rule's kind can time a threshold crossing on a real probe record.

Beside what the rules announced (``placesense.tools.evaluate.street``), this asks the question under it: at each
hour of a dry spell with at least a day of drying behind it (``slope_window_hours`` after the ``settle_hours`` of
drainage that follow a wetting) and a crossing 6–48 h ahead with no wetting first, when does the rule's own drying
forecast (``rules.watering_forecast``: the robust rate over the last day, at the median of the last hour) say the
bed crosses, and when does it? A "within 24 h" announcement made 12 h or more ahead needs the actual time to fall
within a factor of two of the time the announcement rests on; the spread of actual / forecast says how often
that can happen, whatever bar the announcement uses. A wetting is a rise of ``rise_pct`` within 3 h, as the rule
counts one.

This module only measures; it must not change how the rules decide.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

from placesense.basics.timeunits import HOUR_MS
from placesense.tools.evaluate.street_replay import SoilRecord
from rules.config import WateringRule
from rules.watering_forecast import estimate_rate, hours_to_cover

AHEAD_HOURS = (6, 48)  # crossings this far ahead are judged: nearer ones are mostly the last step of a probe
RISE_WITHIN_HOURS = 3


def wettings(values: Sequence[float | None], rise_pct: float) -> list[int]:
    """Indexes (hours) where the probe rose ``rise_pct`` above its lowest of the previous few hours."""
    found = []
    for index, value in enumerate(values):
        before = [v for v in values[max(0, index - RISE_WITHIN_HOURS) : index] if v is not None]
        if value is not None and before and value > min(before) + rise_pct:
            found.append(index)
    return found


def crossing_after(values: Sequence[float | None], index: int, dry: float, rise_pct: float) -> int | None:
    """Hours from ``index`` to the first reading below ``dry`` within the judged range, None if a wetting (or
    nothing) comes first."""
    low = math.inf
    for later in range(index + 1, min(len(values), index + AHEAD_HOURS[1] + 1)):
        value = values[later]
        if value is None:
            continue
        if value < dry:
            return later - index
        low = min(low, value)
        if value >= low + rise_pct:
            return None
    return None


def forecastability(record: SoilRecord, dry: dict[str, float]) -> dict[str, Any]:
    cfg = WateringRule()
    hour_steps = round(HOUR_MS / (record.times[1] - record.times[0]))
    settle, window = int(cfg.settle_hours) * hour_steps, int(cfg.slope_window_hours) * hour_steps
    judged: list[tuple[float, int]] = []  # (forecast hours at the central rate, actual hours)
    hours = 0
    for probe, values in record.probes.items():
        wet = wettings(values, cfg.rise_pct)
        for index, value in enumerate(values):
            if value is None or value < dry[probe]:
                continue
            start = max((w for w in wet if w <= index), default=-settle) + settle
            if index - start < window:
                continue
            actual = crossing_after(values, index, dry[probe], cfg.rise_pct)
            if actual is None or actual < AHEAD_HOURS[0]:
                continue
            hours += 1
            points = [(record.times[k], v) for k in range(index - window, index + 1) if (v := values[k]) is not None]
            level = statistics.median([v for t, v in points if t >= record.times[index] - HOUR_MS])
            rate = estimate_rate(points, cfg.min_slope_hours)
            if rate is not None:
                judged.append((hours_to_cover(max(0.0, level - dry[probe]), rate.central, 1.0), actual))
    finite = [(forecast, actual) for forecast, actual in judged if 0 < forecast < math.inf]
    ratios = sorted(actual / forecast for forecast, actual in finite)
    deciles = statistics.quantiles(ratios, n=10) if len(ratios) >= 10 else []
    said_a_day = [(forecast, actual) for forecast, actual in finite if 12 <= forecast <= 24]
    return {
        "hours_judged": hours,
        "hours_with_a_forecast": len(finite),
        "actual_over_forecast_p10_p50_p90": [round(deciles[i], 2) for i in (0, 4, 8)] if deciles else None,
        "within_a_factor_1_5": sum(1 for ratio in ratios if 1 / 1.5 <= ratio <= 1.5),
        "forecast_12_24h": len(said_a_day),
        "of_those_crossed_12_24h_later": sum(1 for _, actual in said_a_day if 12 <= actual <= 24),
    }

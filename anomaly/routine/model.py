"""The per-home model: everything the routine detector learns and tracks for one home (``HomeModel``), and the
smallest robust scale of each daily feature.

Saved as it is (``placesense.evaluation_state``); a check keeps nothing of its own. This module must not talk to
MQTT, InfluxDB or the alert store.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from anomaly.baseline import DailyBaseline, Usual
from anomaly.decline import DeclineWatch
from anomaly.homeday import HomeTracker

# feature -> smallest robust scale, so a very regular resident is not alarmed by tiny changes
MIN_SCALE: dict[str, float] = {
    "wake_min": 20.0,
    "bedtime_min": 25.0,
    "motion_count": 40.0,
    "kitchen_visits": 1.5,
    "kettle_uses": 1.5,
    "fridge_opens": 2.0,
    "bathroom_day": 1.5,
    "bathroom_night": 1.0,
    "night_activity": 1.0,
    "out_min": 45.0,
    "temperature_c": 0.7,
}


@dataclass
class HomeModel:
    """Everything learned and tracked for one home; saved as it is (``placesense.evaluation_state``)."""

    tracker: HomeTracker
    baselines: dict[str, DailyBaseline] = field(default_factory=dict)
    still: DailyBaseline = field(default_factory=lambda: DailyBaseline(min_scale=5.0))
    # each learned day's longest still spell overlapping each hour of the day (minutes), newest last
    still_hours: deque[list[int]] = field(default_factory=lambda: deque(maxlen=28))
    kitchen_curves: deque[tuple[bool, dict[int, int]]] = field(default_factory=lambda: deque(maxlen=28))
    hour_active: list[float] = field(default_factory=lambda: [0.0] * 24)
    temperature_mean: list[float] = field(default_factory=lambda: [0.0] * 24)
    temperature_dev: list[float] = field(default_factory=lambda: [0.0] * 24)
    temperature_n: list[int] = field(default_factory=lambda: [0] * 24)
    days_learned: int = 0
    held: dict[str, list[tuple[float, bool]]] = field(default_factory=dict)
    open_rules: set[str] = field(default_factory=set)
    flagged_today: set[str] = field(default_factory=set)
    last_kitchen_check_hour: int = -1
    recent_z: dict[str, deque[float]] = field(default_factory=dict)  # feature -> robust z of the last days
    trend_quiet_days: int = 0
    cold_streak: int = 0
    decline: DeclineWatch = field(default_factory=DeclineWatch)
    bathroom_cusum: float = 0.0  # evidence of more bathroom visits over the last days (see _bathroom_trend)
    bathroom_quiet_days: int = 0
    bathroom_run: deque[tuple[int, int]] = field(default_factory=lambda: deque(maxlen=7))  # (day, night) visits
    # each closed day's getting-up moment, newest last, for the care page's chart: (wake_ms, local minute, weekend)
    wake_days: deque[tuple[int, float, bool]] = field(default_factory=lambda: deque(maxlen=28))

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A model pickled by the previous release before a field existed gets that field's default, so its
        # routine.pkl still loads (``placesense.evaluation_state`` reads it once). The JSON state does the same
        # for every dataclass by itself.
        for spec in dataclasses.fields(self):
            if spec.name not in state:
                if spec.default_factory is not dataclasses.MISSING:
                    state[spec.name] = spec.default_factory()
                elif spec.default is not dataclasses.MISSING:
                    state[spec.name] = spec.default
        self.__dict__.update(state)

    def baseline(self, feature: str) -> DailyBaseline:
        if feature not in self.baselines:
            self.baselines[feature] = DailyBaseline(min_scale=MIN_SCALE.get(feature, 1.0))
        return self.baselines[feature]

    def usual(self, feature: str, weekend: bool) -> Usual | None:
        baseline = self.baselines.get(feature)
        return baseline.usual(weekend) if baseline is not None else None


"""What a routine check is: the small protocols through which the detector (``anomaly.routine.detector``) hands a
check each tick, each activity, each climate reading or each closed day of a home; what the checks share (the
detector's tuning, which says when a home is past warm-up); and how a check says over how many days. Findings are
worded by ``placesense.basics.findings.care_finding``, as home care's are.

A check keeps no state of its own: all it tracks and learns of a home is in the home's model
(``anomaly.routine.model``), which is what gets saved. This module must not talk to MQTT, InfluxDB or the alert
store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from anomaly.baseline import Usual
from anomaly.explain import days_text
from anomaly.homeday import HomeDay
from anomaly.routine.model import HomeModel
from placesense.basics.findings import Finding
from placesense.basics.texts import Text, text

Evidence = dict[str, float | int | str | None]

# feature -> the direction of a change that worries a carer: +1 more or later, -1 fewer or colder, 0 either way.
# A day with more kitchen use, more movement, more time out or a warmer home is a good day (or visitors), not a
# routine change to tell anyone about; sleeping and getting up earlier or later both are.
CONCERNING: dict[str, int] = {
    "wake_min": 0,
    "bedtime_min": 0,
    "motion_count": -1,
    "kitchen_visits": -1,
    "kettle_uses": -1,
    "fridge_opens": -1,
    "bathroom_day": +1,
    "bathroom_night": +1,
    "night_activity": +1,
    "out_min": -1,
    "temperature_c": -1,
}


@dataclass(frozen=True, slots=True)
class Tuning:
    """The detector's settings the checks judge by (``RoutineDetector``'s arguments of the same names)."""

    warm_up_days: int
    significance: float
    bathroom_rate_ratio: float
    bathroom_threshold: float
    bathroom_quiet_days: int

    def ready(self, model: HomeModel) -> bool:
        return model.days_learned >= self.warm_up_days


class OnTick(Protocol):
    """A live check run for every home on each tick (the passing of time, with or without readings)."""

    def on_tick(self, home_id: str, model: HomeModel, now: int) -> list[Finding]: ...


class OnActivity(Protocol):
    """A live check run as her activity (or the front door) is recorded."""

    def on_activity(self, home_id: str, model: HomeModel, now: int) -> list[Finding]: ...


class OnTemperature(Protocol):
    """A live check run on each room-temperature reading (``minute``: the local minute of the day)."""

    def on_temperature(
        self, home_id: str, model: HomeModel, now: int, value: float, minute: int
    ) -> list[Finding]: ...


class OnDayClosed(Protocol):
    """An end-of-day check: run when a routine day closes (her getting up the next morning), before the day is
    learned into the baselines."""

    def on_day_closed(
        self, home_id: str, model: HomeModel, day: HomeDay, features: dict[str, float], now: int
    ) -> list[Finding]: ...


def concerning(feature: str, z: float) -> bool:
    """Whether a move of robust z in this feature is in a direction that worries a carer (``CONCERNING``)."""
    direction = CONCERNING.get(feature, 0)
    return direction == 0 or z * direction > 0


def over(usual: Usual | None) -> Text:
    """' over the last 14 days.' (or '10 weekdays', '4 weekend days'), or just the full stop when nothing is
    learned yet."""
    return text("routine.over_days", days=days_text(usual)) if usual is not None else text("routine.full_stop")

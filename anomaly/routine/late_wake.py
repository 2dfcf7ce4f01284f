"""*Not up yet*: still in bed once her usual getting-up range has clearly passed (``routine_late_wakeup``).

A live check, run on every tick (``anomaly.routine.check.OnTick``). This module must not talk to MQTT, InfluxDB
or the alert store.
"""

from __future__ import annotations

from anomaly.explain import clock, days_text
from anomaly.homeday import EARLIEST_WAKE_MIN, local_minute
from anomaly.routine.check import Tuning
from anomaly.routine.model import HomeModel
from placesense.basics.findings import Finding, care_finding
from placesense.basics.texts import text


class LateWakeCheck:
    """Not up by well past her usual getting-up time, and not out."""

    def __init__(self, tuning: Tuning) -> None:
        self._tuning = tuning

    def on_tick(self, home_id: str, model: HomeModel, now: int) -> list[Finding]:
        tracker = model.tracker
        if not self._tuning.ready(model) or not tracker.asleep or "routine_late_wakeup" in model.open_rules:
            return []
        if tracker.is_out(now):
            return []  # out since the front door: not in bed
        if tracker.bed_left_ms is not None:
            return []  # out of bed, waiting to see whether it is for good
        minute, weekend = local_minute(now, tracker.timezone)
        usual = model.usual("wake_min", weekend)
        if usual is None or not EARLIEST_WAKE_MIN <= minute < 18 * 60:
            return []  # in bed in the evening or at night is not "not up yet"
        limit = max(usual.high + 45.0, usual.median + 3.0 * usual.scale)
        if minute < limit:
            return []
        message = text(
            "routine_late_wakeup", time=clock(minute), usual_from=clock(usual.low), usual_to=clock(usual.high),
            days=days_text(usual),
        )
        evidence: dict[str, float | int | str | None] = {
            "now_min": minute, "usual_low_min": round(usual.low), "usual_high_min": round(usual.high),
            "days": usual.days,
        }
        model.open_rules.add("routine_late_wakeup")
        model.flagged_today.add("wake_min")
        return [care_finding("routine_late_wakeup", home_id, "warning", message, now, evidence=evidence)]

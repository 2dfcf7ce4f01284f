"""*Night-time wandering*: movement from room to room, or out of the front door, after bedtime
(``routine_night_wandering``), as it happens.

A live check, run after each activity and front-door opening (``anomaly.routine.check.OnActivity``). This module
must not talk to MQTT, InfluxDB or the alert store.
"""

from __future__ import annotations

from anomaly.explain import clock
from anomaly.homeday import local_minute
from anomaly.routine.check import Tuning, over
from anomaly.routine.model import HomeModel
from placesense.basics.findings import Finding, care_finding
from placesense.basics.texts import Text, text

NIGHT_ACTIVITY_MIN = 4.0  # fewer uses of one room at night than this are a drink or a snack, not wandering


class NightCheck:
    """More night-time activity than on her usual nights, or the front door at night."""

    def __init__(self, tuning: Tuning) -> None:
        self._tuning = tuning

    def on_activity(self, home_id: str, model: HomeModel, now: int) -> list[Finding]:
        tracker = model.tracker
        day = tracker.day
        rule = "routine_night_wandering"
        if not self._tuning.ready(model) or day is None or not tracker.asleep or day.bedtime_ms is None:
            return []
        if rule in model.open_rules:
            return []
        count = day.night_activity + day.night_door_opens
        usual = model.usual("night_activity", day.weekend)
        usual_most = usual.high if usual is not None else 0.0
        # Wandering goes from room to room, or out of the door; a snack in the kitchen is one room.
        least = 3.0 if len(day.night_rooms) >= 2 or day.night_door_opens else NIGHT_ACTIVITY_MIN
        if count < max(least, usual_most + 2.0) and not (day.night_door_opens and usual_most < 1.0):
            return []
        minute, _ = local_minute(now, tracker.timezone)
        doors = (
            text("routine_night_wandering.doors", count=day.night_door_opens) if day.night_door_opens
            else text("empty")
        )
        rooms: Text | list[Text] = (
            [text("routine.room", room=r) for r in sorted(day.night_rooms)] or text("routine.nowhere")
        )
        message = text(
            "routine_night_wandering", count=day.night_activity, rooms=rooms, doors=doors, time=clock(minute),
            most=round(usual_most), over=over(usual),
        )
        evidence: dict[str, float | int | str | None] = {
            "night_movements": day.night_activity, "night_door_opens": day.night_door_opens,
            "usual_most": usual_most,
        }
        model.open_rules.add(rule)
        model.flagged_today.add("night_activity")
        return [care_finding(rule, home_id, "warning", message, now, evidence=evidence)]

"""*No movement*: still for far longer than usual while at home, up, and at an hour she is normally active
(``routine_no_movement``), judged against her learned longest still spells around that hour.

A live check, run on every tick (``anomaly.routine.check.OnTick``). This module must not talk to MQTT, InfluxDB
or the alert store.
"""

from __future__ import annotations

from anomaly.explain import clock
from anomaly.homeday import EARLIEST_WAKE_MIN, local_minute
from anomaly.routine.check import Tuning, over
from anomaly.routine.model import HomeModel
from placesense.basics.findings import Finding, care_finding
from placesense.basics.stats import quantile
from placesense.basics.texts import text
from placesense.basics.timeunits import HOUR_MS, MINUTE_MS

STILL_FLOOR_MIN = 45.0  # stillness shorter than this is a sit-down, whatever the learned spells say


class StillnessCheck:
    """No movement for longer than her usual still spells at this hour; cleared once she moves again."""

    def __init__(self, tuning: Tuning) -> None:
        self._tuning = tuning

    def on_tick(self, home_id: str, model: HomeModel, now: int) -> list[Finding]:
        tracker = model.tracker
        rule = "routine_no_movement"
        still_ms = tracker.still_for_ms(now)
        if rule in model.open_rules:
            if still_ms < 5 * MINUTE_MS:
                model.open_rules.discard(rule)
                return [care_finding(rule, home_id, "info", text("routine_no_movement.cleared"), now, active=False)]
            return []
        day = tracker.day
        if not self._tuning.ready(model) or day is None or tracker.asleep or tracker.is_out(now):
            return []
        minute, weekend = local_minute(now, tracker.timezone)
        hour = minute // 60
        if now - day.wake_ms < HOUR_MS or min(model.hour_active[hour], model.hour_active[(hour + 23) % 24]) < 0.7:
            return []
        bedtime = model.usual("bedtime_min", weekend)
        if bedtime is not None and minute + 60 > bedtime.low and minute >= EARLIEST_WAKE_MIN:
            return []  # getting close to bedtime: stillness may be sleep
        # Half again her usual longest still spell around this hour (90th percentile over the learned days of
        # the longest spell overlapping this hour or the one before): in a home with a PIR in every room that is
        # under an hour; where only cupboards and doors are sensed, her ordinary quiet spells are hours long.
        around = sorted(
            float(max(spells[hour], spells[(hour + 23) % 24])) for spells in model.still_hours
            if max(spells[hour], spells[(hour + 23) % 24]) > 0
        )
        usual_still = model.still.usual(weekend)
        whole_day = usual_still.high if usual_still is not None else 30.0
        longest = around[-1] + 15.0 if len(around) >= 5 else 0.0  # longer than any learned spell around now
        typical = quantile(around, 0.9) if len(around) >= 5 else whole_day
        # Never sooner than half again the day's usual longest spell (up to 50 min), as before hours were learned.
        limit_min = max(STILL_FLOOR_MIN, min(50.0, 1.5 * whole_day), 1.5 * typical, longest)
        if still_ms < limit_min * MINUTE_MS or tracker.last_activity_ms is None:
            return []
        since = local_minute(tracker.last_activity_ms, tracker.timezone)[0]
        message = text(
            "routine_no_movement", still=still_ms / MINUTE_MS, since=clock(since), typical=typical,
            over=over(usual_still),
        )
        evidence: dict[str, float | int | str | None] = {
            "still_min": round(still_ms / MINUTE_MS), "since_min": since, "limit_min": round(limit_min),
            "hour_active_share": round(model.hour_active[hour], 2),
        }
        model.open_rules.add(rule)
        model.flagged_today.add("still")
        return [care_finding(rule, home_id, "critical", message, now, evidence=evidence)]

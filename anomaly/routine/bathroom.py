"""*More bathroom visits* today than her usual days, judged against how busy the rest of the house is
(``routine_more_bathroom_visits``), during the day.

A live check, run after each activity (``anomaly.routine.check.OnActivity``); the same rise over several days is
``anomaly.routine.bathroom_trend``'s. This module must not talk to MQTT, InfluxDB or the alert store.
"""

from __future__ import annotations

from anomaly.baseline import Usual
from anomaly.explain import amount, clock, days_text
from anomaly.homeday import local_minute
from anomaly.routine.check import Tuning
from anomaly.routine.model import HomeModel
from placesense.basics.findings import Finding, care_finding
from placesense.basics.stats import poisson_upper_tail
from placesense.basics.texts import text
from placesense.basics.timeunits import MINUTE_MS


class BathroomCheck:
    """Far more bathroom visits so far today than her usual, on a day not busier all over the house."""

    def __init__(self, tuning: Tuning) -> None:
        self._tuning = tuning

    def on_activity(self, home_id: str, model: HomeModel, now: int) -> list[Finding]:
        tracker = model.tracker
        day = tracker.day
        rule = "routine_more_bathroom_visits"
        if not self._tuning.ready(model) or day is None or "bathroom_day" in model.flagged_today:
            return []
        usual = model.usual("bathroom_day", day.weekend)
        night = model.usual("bathroom_night", day.weekend)
        if usual is None or night is None:
            return []
        bedtime, wake = model.usual("bedtime_min", day.weekend), model.usual("wake_min", day.weekend)
        awake_min = bedtime.median - wake.median if bedtime is not None and wake is not None else 900.0
        share = min(1.0, max(0.1, (now - day.wake_ms) / MINUTE_MS / max(awake_min, 60.0)))
        visits = day.bathroom_day + day.bathroom_night
        expected = max(usual.median * share + (night.median if day.bathroom_night else 0.0), 1.0)
        # On a day busy all over the house (visitors, a clean-up) she passes the bathroom more too: judge the
        # visits against how busy the rest of the house is (the bathroom's own movements would count the very
        # visits judged). More visits with an ordinary day elsewhere is what an infection looks like.
        elsewhere = day.motion_count - day.bathroom_motion
        busy = _busier_than_usual(elsewhere, model.usual("motion_count", day.weekend), share)
        judged = visits / busy
        # Where her days vary more than chance (most real homes), also more than on any learned day.
        if judged < usual.high + 3 or (usual.overdispersed and judged <= usual.highest + night.highest):
            return []
        if poisson_upper_tail(round(judged), expected) >= 10 * self._tuning.significance:
            return []
        minute, _ = local_minute(now, tracker.timezone)
        message = text(
            "routine_more_bathroom_visits.today", visits=visits, time=clock(minute),
            low=amount("bathroom_day", usual.low), high=amount("bathroom_day", usual.high), days=days_text(usual),
        )
        evidence: dict[str, float | int | str | None] = {
            "visits": visits, "usual_low": usual.low, "usual_high": usual.high, "days": usual.days,
            "expected_by_now": round(expected, 1),
        }
        model.flagged_today |= {"bathroom_day", "bathroom_night"}
        return [care_finding(rule, home_id, "warning", message, now, evidence=evidence)]


BUSY_SLACK = 0.5  # see _busier_than_usual
BUSY_MIN_MOVEMENTS = 20.0  # fewer usual movements a day than this (a home of contacts, few PIRs) says nothing


def _busier_than_usual(movements: int, usual: Usual | None, share: float) -> float:
    """How much busier than usual the day is so far, 1 to 3: her movements over her usual for this part of the day,
    less half a day's worth (walking to and from the bathroom more is itself a little busier, and not a reason to
    discount the visits); 1 where movements are not usually counted."""
    if usual is None or usual.median < BUSY_MIN_MOVEMENTS:
        return 1.0
    return max(1.0, min(3.0, movements / max(usual.median * share, 1.0) - BUSY_SLACK))

"""*Less kitchen use*: far fewer kitchen visits, kettle boils and fridge openings so far today than on her learned
days by the same hour since getting up (``routine_reduced_kitchen_use``).

A live check, run on every tick, at most once an hour (``anomaly.routine.check.OnTick``). This module must not
talk to MQTT, InfluxDB or the alert store.
"""

from __future__ import annotations

from anomaly.explain import clock
from anomaly.homeday import local_minute
from anomaly.routine.check import Tuning
from anomaly.routine.model import HomeModel
from placesense.basics.findings import Finding, care_finding
from placesense.basics.stats import poisson_lower_tail, quantile
from placesense.basics.texts import text
from placesense.basics.timeunits import HOUR_MS


class KitchenCheck:
    """Fewer kitchen uses by this hour of her day than on every one of her learned days."""

    def __init__(self, tuning: Tuning) -> None:
        self._tuning = tuning

    def on_tick(self, home_id: str, model: HomeModel, now: int) -> list[Finding]:
        tracker = model.tracker
        day = tracker.day
        if not self._tuning.ready(model) or day is None or tracker.asleep or "kitchen_visits" in model.flagged_today:
            return []
        if tracker.is_out(now) or day.out_ms >= 6 * HOUR_MS:
            return []  # out, or out for most of the day: her meals were elsewhere
        hour = int((now - day.wake_ms) // HOUR_MS)
        if hour < 6 or hour > 15 or hour == model.last_kitchen_check_hour:
            return []
        model.last_kitchen_check_hour = hour
        curves = [c for w, c in model.kitchen_curves if w == day.weekend]
        if len(curves) < 4:
            curves = [c for _, c in model.kitchen_curves]
        if len(curves) < 5:
            return []
        by_now = sorted(float(max((n for h, n in c.items() if h < hour), default=0)) for c in curves)
        today = max((n for h, n in day.kitchen_by_hour.items() if h < hour), default=0)
        median = quantile(by_now, 0.5)
        mean = sum(by_now) / len(by_now)
        overdispersed = sum((n - mean) ** 2 for n in by_now) / len(by_now) > max(mean, 1.0)
        # Kitchen counts are steadier than Poisson (meals come every day), so the tail test can be looser; where
        # her days vary more than a Poisson count would (most real homes), it must also be fewer than on every
        # learned day.
        if today > 0.5 * median or median - today < 4 or (overdispersed and today >= by_now[0]):
            return []
        if poisson_lower_tail(today, median) >= 10 * self._tuning.significance:
            return []
        minute, _ = local_minute(now, tracker.timezone)
        message = text(
            "routine_reduced_kitchen_use.today", today=today, time=clock(minute), low=round(quantile(by_now, 0.1)),
            high=round(quantile(by_now, 0.9)), days=len(curves),
        )
        evidence: dict[str, float | int | str | None] = {
            "kitchen_events": today, "usual_median": median, "days": len(curves), "hours_since_up": hour,
        }
        model.flagged_today |= {"kitchen_visits", "kettle_uses", "fridge_opens"}
        return [care_finding("routine_reduced_kitchen_use", home_id, "warning", message, now, evidence=evidence)]

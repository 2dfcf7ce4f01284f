"""*Gradual decline* (``routine_gradual_decline``): each closed day goes to the home's ``anomaly.decline.DeclineWatch``,
which judges the last weeks against the same person three to eight weeks earlier.

An end-of-day check (``anomaly.routine.check.OnDayClosed``), fed every day, even during warm-up. This module must
not talk to MQTT, InfluxDB or the alert store.
"""

from __future__ import annotations

from anomaly.decline import Decline
from anomaly.explain import change_text
from anomaly.homeday import HomeDay
from anomaly.routine.check import Tuning
from anomaly.routine.model import HomeModel
from placesense.basics.findings import Finding, care_finding
from placesense.basics.texts import text


class DeclineCheck:
    """Later mornings, fewer movements, less kitchen use, less time out, over weeks."""

    def __init__(self, tuning: Tuning) -> None:
        self._tuning = tuning

    def on_day_closed(
        self, home_id: str, model: HomeModel, day: HomeDay, features: dict[str, float], now: int
    ) -> list[Finding]:
        """Feed the day to the home's ``DeclineWatch`` (always, so its lagged reference fills during warm-up);
        a gradual decline it reports becomes a finding once the home is past warm-up."""
        kitchen = ("kitchen_visits", "kettle_uses", "fridge_opens")
        told = model.flagged_today  # what a same-day check has reported is not counted twice
        values: dict[str, float | None] = {
            "wake_min": None if "wake_min" in told else features.get("wake_min"),
            "motion_count": features.get("motion_count"),
            "kitchen_events": None if told & set(kitchen) else sum(features.get(k, 0.0) for k in kitchen),
            "out_min": features.get("out_min"),
        }
        decline = model.decline.add_day(values, day.weekend)
        if decline is None or not self._tuning.ready(model):
            return []
        return [self._decline_finding(home_id, decline, now)]

    def _decline_finding(self, home_id: str, decline: Decline, now: int) -> Finding:
        parts = [change_text(moved.feature, moved.recent, moved.usual) for moved in decline.moved]
        weeks_from, weeks_to = decline.reference_to_days_ago // 7, decline.reference_from_days_ago // 7
        message = text("routine_decline", days=decline.days, weeks_from=weeks_from, weeks_to=weeks_to, parts=parts)
        evidence: dict[str, float | int | str | None] = {
            "days": decline.days, "cusum": round(decline.cusum, 2), "reference_days": decline.reference_days,
        }
        for moved in decline.moved:
            evidence[moved.feature] = round(moved.recent, 2)
            evidence[f"{moved.feature}_usual"] = round(moved.usual, 2)
            evidence[f"{moved.feature}_z"] = round(moved.z, 2)
        return care_finding("routine_gradual_decline", home_id, "warning", message, now, evidence=evidence)

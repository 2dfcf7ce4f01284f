"""A change sustained over two or three days (``routine_change``): the mean robust z of the last days per feature.

An end-of-day check (``anomaly.routine.check.OnDayClosed``), run by the daily check (``anomaly.routine.daily``)
once a home is past warm-up. This module must not talk to MQTT, InfluxDB or the alert store.
"""

from __future__ import annotations

import math
from collections import deque

from anomaly.explain import FEATURES, amount_text
from anomaly.homeday import HomeDay
from anomaly.routine.check import concerning
from anomaly.routine.model import HomeModel
from placesense.basics.findings import Finding, care_finding
from placesense.basics.texts import Text, text


class TrendCheck:
    """Several features moved the same worrying way on two or three days running; at most once a week."""

    def on_day_closed(
        self, home_id: str, model: HomeModel, day: HomeDay, features: dict[str, float], now: int
    ) -> list[Finding]:
        """A change sustained over two or three days: the mean robust z, which grows with √days."""
        for feature, value in features.items():
            usual = model.usual(feature, day.weekend)
            if usual is not None:
                model.recent_z.setdefault(feature, deque(maxlen=3)).append(max(-10.0, min(10.0, usual.z(value))))
        if model.trend_quiet_days > 0:
            model.trend_quiet_days -= 1
            return []
        moved: list[tuple[float, str, int]] = []
        for feature, history in model.recent_z.items():
            known = model.usual(feature, day.weekend)
            yesterday = features.get(feature)
            if known is None or yesterday is None or known.low <= yesterday <= known.high:
                continue  # yesterday within her usual range: not a change to tell anyone about
            if not concerning(feature, history[-1]):
                continue
            for days in (2, 3):
                if len(history) >= days:
                    last = list(history)[-days:]
                    same_sign = all(z > 0 for z in last) or all(z < 0 for z in last)
                    combined = abs(sum(last)) / math.sqrt(days)
                    if same_sign and combined >= 3.5:
                        moved.append((combined, feature, days))
                        break
        moved.sort(reverse=True)
        if len(moved) < 2 or sum(z for z, _, _ in moved) < 8.0:
            return []
        model.trend_quiet_days = 7  # one heads-up a week about the same slow change is enough
        parts: list[Text] = []
        evidence: dict[str, float | int | str | None] = {"features_moved": len(moved)}
        for combined, feature, days in moved[:4]:
            usual = model.usual(feature, day.weekend)
            if usual is None:
                continue
            later = model.recent_z[feature][-1] > 0
            if FEATURES[feature][1] == "clock":
                direction = "later" if later else "earlier"
            else:
                direction = "more" if later else "less"
            parts.append(text(
                "routine_trend.part", feature=feature, direction=direction, days=days,
                yesterday=amount_text(feature, features.get(feature, usual.median)),
                low=amount_text(feature, usual.low), high=amount_text(feature, usual.high),
            ))
            evidence[f"{feature}_z"] = round(combined, 2)
            evidence[f"{feature}_days"] = days
        message = text("routine_trend", parts=parts, days=model.days_learned)
        return [care_finding("routine_change", home_id, "warning", message, now, evidence=evidence)]

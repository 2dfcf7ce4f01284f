"""The end-of-day multivariate check (``routine_change``): every feature of the day closed against its baseline
(robust z-scores, combined; see ``docs/anomaly.md`` for why this and not HalfSpaceTrees); several moderate moves
or one big one. It also runs the trends over the last days (``anomaly.routine.trend``,
``anomaly.routine.bathroom_trend``) and says which features moved, so they are kept out of their baselines.

This module must not talk to MQTT, InfluxDB or the alert store.
"""

from __future__ import annotations

from collections.abc import Sequence

from anomaly.baseline import Usual
from anomaly.explain import feature_text
from anomaly.homeday import HomeDay
from anomaly.routine.check import OnDayClosed, concerning
from anomaly.routine.model import MIN_SCALE, HomeModel
from placesense.basics.findings import Finding, Severity, care_finding
from placesense.basics.texts import text

# An early or a late night on its own is an ordinary evening (tired, a late film, visitors), however far it is from
# her usual: only beside other changes is it news. (Getting up late has a rule of its own.)
NOT_ON_ITS_OWN = frozenset({"bedtime_min"})


class DailyCheck:
    """The day closed against her usual, feature by feature; runs the day-to-day trends first."""

    def __init__(self, trends: Sequence[OnDayClosed]) -> None:
        self._trends = list(trends)  # run in this order, before the day is judged

    def check(
        self, home_id: str, model: HomeModel, day: HomeDay, features: dict[str, float], now: int
    ) -> tuple[list[Finding], set[str]]:
        """The multivariate check: robust z per feature, combined; several moderate moves or one big one."""
        moved: list[tuple[float, str, float, Usual]] = []
        for feature, value in features.items():
            usual = model.usual(feature, day.weekend)
            if usual is None:
                continue
            z = usual.z(value)
            # Beyond every learned day by a noticeable step ("got up at 09:36; usually 04:01–09:33" is no news).
            step = MIN_SCALE.get(feature, 0.0) / 2
            outside = value > usual.highest + step or value < usual.lowest - step
            if abs(z) >= 3.0 and outside and concerning(feature, z):
                moved.append((abs(z), feature, value, usual))
        moved.sort(reverse=True)
        trend: list[Finding] = []
        for check in self._trends:
            trend += check.on_day_closed(home_id, model, day, features, now)
        flagged = {feature for _, feature, _, _ in moved}
        strength = sum(min(z, 10.0) for z, _, _, _ in moved)
        fresh = [m for m in moved if m[1] not in model.flagged_today]
        big = [m for m in moved if m[0] >= 6.0 and m[1] not in NOT_ON_ITS_OWN]
        if not fresh or not ((len(moved) >= 2 and strength >= 8.0) or big):
            return trend, flagged
        sentences = [feature_text(feature, value, usual) for _, feature, value, usual in moved[:4]]
        evidence: dict[str, float | int | str | None] = {"features_moved": len(moved), "strength": round(strength, 2)}
        for z, feature, value, usual in moved[:4]:
            evidence[f"{feature}"] = round(value, 2)
            evidence[f"{feature}_usual_low"] = round(usual.low, 2)
            evidence[f"{feature}_usual_high"] = round(usual.high, 2)
            evidence[f"{feature}_z"] = round(z, 2)
        evidence["days"] = moved[0][3].days
        message = text("routine_change", sentences=sentences)
        severity: Severity = "warning" if len(moved) >= 2 else "info"
        return [care_finding("routine_change", home_id, severity, message, now, evidence=evidence)], flagged

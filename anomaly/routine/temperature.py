"""*Cold home*: the room temperature below 16 °C and well below her usual at that hour, three readings in a row
(``routine_cold_home``); and how the usual temperature of each hour is learned.

A live check, run on each climate reading (``anomaly.routine.check.OnTemperature``). This module must not talk to
MQTT, InfluxDB or the alert store.
"""

from __future__ import annotations

from anomaly.explain import clock
from anomaly.routine.check import Tuning
from anomaly.routine.model import HomeModel
from placesense.basics.findings import Finding, care_finding
from placesense.basics.texts import text


class TemperatureCheck:
    """Colder than usual at this hour, and cold; learns each hour's usual temperature from the rest."""

    def __init__(self, tuning: Tuning) -> None:
        self._tuning = tuning

    def on_temperature(
        self, home_id: str, model: HomeModel, now: int, value: float, minute: int
    ) -> list[Finding]:
        model.tracker.temperature(value)
        hour = minute // 60
        rule = "routine_cold_home"
        n = model.temperature_n[hour]
        mean, dev = model.temperature_mean[hour], model.temperature_dev[hour]
        limit = mean - max(2.5, 4.0 * dev)
        # Below 16 °C is where care teams start to worry (DESIGN.md); relative to usual so a cool house is not.
        cold = self._tuning.ready(model) and n >= 20 and value < min(16.0, limit)
        # Three readings in a row (half an hour or more): a cold snap at dawn before the heating is not it.
        model.cold_streak = model.cold_streak + 1 if cold else 0
        findings: list[Finding] = []
        if model.cold_streak >= 3 and rule not in model.open_rules:
            model.open_rules.add(rule)
            message = text("routine_cold_home", now_c=value, time=clock(minute), usual_c=mean, days=model.days_learned)
            evidence: dict[str, float | int | str | None] = {
                "temperature_c": value, "usual_c": round(mean, 2), "limit_c": round(limit, 2),
            }
            findings.append(care_finding(rule, home_id, "warning", message, now, evidence=evidence))
        elif rule in model.open_rules and value >= min(18.0, mean - 1.5):
            model.open_rules.discard(rule)
            findings.append(care_finding(rule, home_id, "info", text("routine_cold_home.cleared"), now, active=False))
        if not cold and rule not in model.open_rules:
            model.temperature_n[hour] = n + 1
            rate = max(1.0 / (n + 1), 1.0 / 80)
            model.temperature_mean[hour] = mean + rate * (value - mean)
            model.temperature_dev[hour] = dev + rate * (abs(value - mean) - dev)
        return findings

"""More bathroom visits over several days (``routine_more_bathroom_visits``): a Poisson CUSUM against her usual rate.

An end-of-day check (``anomaly.routine.check.OnDayClosed``), run by the daily check (``anomaly.routine.daily``)
once a home is past warm-up. This module must not talk to MQTT, InfluxDB or the alert store.
"""

from __future__ import annotations

import math

from anomaly.explain import amount, days_text
from anomaly.homeday import HomeDay
from anomaly.routine.check import Tuning
from anomaly.routine.model import HomeModel
from placesense.basics.findings import Finding, care_finding
from placesense.basics.texts import text


class BathroomTrendCheck:
    """A rise in bathroom visits, by day and at night together, that lasts several days."""

    def __init__(self, tuning: Tuning) -> None:
        self._tuning = tuning

    def on_day_closed(
        self, home_id: str, model: HomeModel, day: HomeDay, features: dict[str, float], now: int
    ) -> list[Finding]:
        """More bathroom visits, by day and at night together, over several days: an early sign of a urinary
        infection that one busy day on its own does not show.

        A Poisson CUSUM: each day adds the log-likelihood ratio of its day and night counts under "visits are
        ``bathroom_rate_ratio`` times the usual mean" against "as usual", and the sum never goes below zero, so
        a rise of half again is found in two to four days while ordinary ups and downs cancel out."""
        rule = "routine_more_bathroom_visits"
        by_day, at_night = features.get("bathroom_day"), features.get("bathroom_night")
        usual_day, usual_night = model.usual("bathroom_day", day.weekend), model.usual("bathroom_night", day.weekend)
        if by_day is None or at_night is None or usual_day is None or usual_night is None:
            return []
        if "bathroom_day" in model.flagged_today or "bathroom_night" in model.flagged_today:
            # told today by the check that runs during the day: count afresh from tomorrow, so the days before
            # are not told again later, while the days after can still show that the rise goes on
            model.bathroom_cusum = 0.0
            model.bathroom_run.clear()
            return []
        ratio = self._tuning.bathroom_rate_ratio
        rate_day, rate_night = max(usual_day.mean, 1.0), max(usual_night.mean, 0.5)
        evidence_today = (by_day + at_night) * math.log(ratio) - (ratio - 1.0) * (rate_day + rate_night)
        model.bathroom_cusum = max(0.0, model.bathroom_cusum + evidence_today)
        if model.bathroom_cusum == 0.0:
            model.bathroom_run.clear()
        else:
            model.bathroom_run.append((round(by_day), round(at_night)))
        if model.bathroom_quiet_days > 0:
            model.bathroom_quiet_days -= 1
            return []
        if model.bathroom_cusum < self._tuning.bathroom_threshold or len(model.bathroom_run) < 2:
            return []
        days = len(model.bathroom_run)
        totals = [str(d + n) for d, n in model.bathroom_run]
        message = text(
            "routine_bathroom_trend", days=days, listed=text("list_and", first=", ".join(totals[:-1]), last=totals[-1]),
            by_day=round(by_day), at_night=round(at_night), usual=round(rate_day + rate_night),
            day_low=amount("bathroom_day", usual_day.low), day_high=amount("bathroom_day", usual_day.high),
            night_low=amount("bathroom_night", usual_night.low), night_high=amount("bathroom_night", usual_night.high),
            usual_days=days_text(usual_day),
        )
        evidence: dict[str, float | int | str | None] = {
            "days": days, "cusum": round(model.bathroom_cusum, 2), "visits_per_day": " ".join(totals),
            "usual_per_day": round(rate_day + rate_night, 2), "bathroom_day": by_day, "bathroom_night": at_night,
        }
        model.bathroom_cusum, model.bathroom_quiet_days = 0.0, self._tuning.bathroom_quiet_days
        model.bathroom_run.clear()
        model.flagged_today |= {"bathroom_day", "bathroom_night"}
        return [care_finding(rule, home_id, "warning", message, now, evidence=evidence)]

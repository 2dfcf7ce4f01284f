"""The API's read-only views of what the evaluation process knows: the rule engine's watering list and air
quality (``RulesView``) and the routine detector's day (``RoutineView``). Each is a question put to the child
through the ``Evaluator``; nothing here holds state, evaluates a reading or touches an alert (a finding a person's
action returns is handed to the evaluator, which applies it as it applies any).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from placesense.basics.findings import Finding
    from placesense.evaluation import Evaluator
    from rules.daqi import SiteAirQuality
    from rules.watering import WateringNeed
    from rules.watering_thresholds import ThresholdSuggestion


class RulesView:
    """What the API reads from the rule engine, asked of the evaluation process."""

    def __init__(self, evaluator: Evaluator) -> None:
        self._evaluator = evaluator

    def watering_list(self, now_ms: int | None = None) -> list[WateringNeed]:
        """Beds that need water now or within a day, most urgent first."""
        result: list[WateringNeed] = self._evaluator.call("watering_list", now_ms)
        return result

    def threshold_suggestions(self, now_ms: int | None = None) -> list[ThresholdSuggestion]:
        """Each bed's own dry threshold learned from its record, with the reason (beds with enough record)."""
        result: list[ThresholdSuggestion] = self._evaluator.call("threshold_suggestions", now_ms)
        return result

    def air_quality(self) -> list[SiteAirQuality]:
        """Latest DAQI band per site and pollutant."""
        result: list[SiteAirQuality] = self._evaluator.call("air_quality")
        return result

    def mark_watered(self, bed_id: str, at_ms: int | None = None) -> list[Finding]:
        """An operative watered ``bed_id``: the evaluation process takes it off the list (and saves that), and the
        finding that clears its alert is applied here, as any finding is."""
        findings: list[Finding] = self._evaluator.call("mark_watered", bed_id, at_ms)
        self._evaluator.apply_findings(findings)
        return findings


class RoutineView:
    """What the API reads from the routine detector, asked of the evaluation process."""

    def __init__(self, evaluator: Evaluator) -> None:
        self._evaluator = evaluator

    def routine_today(self, home_id: str) -> dict[str, Any]:
        """Today's routine against the learned baseline for one home."""
        result: dict[str, Any] = self._evaluator.call("routine_today", home_id)
        return result

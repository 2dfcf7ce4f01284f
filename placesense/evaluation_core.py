"""The evaluation core: the rule engine, the routine detector and the sensor detectors, built from one spec.

``EvaluationCore`` is what the evaluation process runs and what replays run in-process: the same objects, fed
the same readings, give the same findings. It must not talk to MQTT, InfluxDB or the alert store.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devices.readings import Reading
from devices.registry import Registry
from placesense.clock import EventClock, make_clock
from rules.config import RulesConfig

if TYPE_CHECKING:
    from rules.daqi import SiteAirQuality
    from rules.findings import Finding
    from rules.watering import WateringNeed

log = logging.getLogger("placesense.evaluation")


@dataclass(frozen=True)
class EvaluationSpec:
    """What the child needs to build the rules and detectors: the same inputs the composition root has."""

    registry: Registry
    rules: RulesConfig
    clock: str
    state_dir: Path
    log_level: int


class EvaluationCore:
    """The rules and detectors behind one event or live clock: readings in, findings out.

    The evaluation process drives one from its loop (one thread: no lock is ever contended); replays and
    evaluations (``placesense evaluate``) drive one directly, so they judge exactly what serve judges.
    """

    def __init__(self, spec: EvaluationSpec) -> None:
        from anomaly.routine import RoutineDetector
        from anomaly.sensors import SensorDetectors
        from rules.engine import RuleEngine

        self.clock = make_clock(spec.clock)
        self.event_clock = isinstance(self.clock, EventClock)
        self.state_dir = spec.state_dir
        self.rules = RuleEngine(spec.registry, spec.rules, self.clock)
        self.routine = RoutineDetector(spec.registry, self.clock)
        self.sensors = SensorDetectors(spec.registry, self.clock)
        if self.routine.load_state(spec.state_dir):
            log.info("restored learned routines of %d homes from %s", len(self.routine.homes()), spec.state_dir)

    def readings(self, rows: list[tuple[Any, ...]]) -> list[Finding]:
        findings: list[Finding] = []
        rules, routine, sensors, observe = self.rules, self.routine, self.sensors, self.clock.observe
        for row in rows:
            reading = Reading(*row)
            observe(reading.ts_ms)
            findings.extend(rules.process(reading))
            findings.extend(routine.process(reading))
            findings.extend(sensors.process(reading))
        return findings

    def tick(self) -> list[Finding]:
        now = self.clock.now_ms()
        return [*self.rules.tick(now), *self.routine.tick(now)]

    def save(self) -> None:
        try:
            path = self.routine.save_state(self.state_dir)
        except OSError as exc:
            log.error("cannot save learned routines to %s: %s", self.state_dir, exc)
            return
        log.debug("saved learned routines to %s", path)

    # what the API asks

    def watering_list(self, now_ms: int | None) -> list[WateringNeed]:
        return self.rules.watering_list(now_ms)

    def air_quality(self) -> list[SiteAirQuality]:
        return self.rules.air_quality()

    def routine_today(self, home_id: str) -> dict[str, Any]:
        return self.routine.routine_today(home_id)




# what the API may ask of a core, by name
CALLS = frozenset({"watering_list", "air_quality", "routine_today"})

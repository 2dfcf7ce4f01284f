"""Measure routine-change detection against firmware-sim's labelled ground truth, in-process.

``run_evaluation`` builds a simulated fleet of homes, injects labelled anomalies after the warm-up, feeds every
simulated message to a ``RoutineDetector`` on an event clock (no broker, no database), and scores the findings
against the injections: per anomaly type recall, precision, median detection delay, and false alerts per home
per month. A finding *detects* an injection when it is about the same home and raised between an hour before
the injection starts and a day after it ends (a gradual decline never ends within the run).

This module only scores; it must not change how the detector decides.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from firmware_sim.anomalies import ANOMALY_TYPES, HOME_ANOMALIES

from anomaly.routine import RoutineDetector
from devices.readings import Reading
from placesense.basics.clock import EventClock
from placesense.basics.findings import Finding
from placesense.basics.timeunits import DAY_MS, HOUR_MS

# the simulator's home anomalies, in its own order (the evaluation schedules injections round-robin over them)
ROUTINE_TYPES: tuple[str, ...] = tuple(t for t in ANOMALY_TYPES if t in HOME_ANOMALIES)
# the rule that names each type; any routine finding in the window still counts as detecting it
RULE_FOR_TYPE = {
    "late_wakeup": "routine_late_wakeup",
    "night_wandering": "routine_night_wandering",
    "more_bathroom_visits": "routine_more_bathroom_visits",
    "no_movement": "routine_no_movement",
    "cold_home": "routine_cold_home",
    "reduced_kitchen_use": "routine_reduced_kitchen_use",
    "gradual_decline": "routine_gradual_decline",
}
START_MS = 1_704_067_200_000  # Monday 1 January 2024, 00:00 UTC


@dataclass
class TypeScore:
    injected: int = 0
    detected: int = 0
    detected_by_rule: int = 0
    delays_h: list[float] = field(default_factory=list)
    rule_findings: int = 0
    rule_findings_true: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "injected": self.injected,
            "recall": round(self.detected / self.injected, 3) if self.injected else None,
            "recall_by_its_rule": round(self.detected_by_rule / self.injected, 3) if self.injected else None,
            "precision": round(self.rule_findings_true / self.rule_findings, 3) if self.rule_findings else None,
            "median_delay_h": round(statistics.median(self.delays_h), 2) if self.delays_h else None,
        }


def anomaly_plan(homes: list[str], days: int, warm_up_days: int) -> list[str]:
    """One anomaly per home every nine days after the warm-up, cycling through the types; a gradual decline
    (which does not end) only as a home's last."""
    plan: list[str] = []
    slots = list(range(warm_up_days + 3, days - 4, 9))
    others = [t for t in ROUTINE_TYPES if t != "gradual_decline"]
    for index, home in enumerate(homes):
        for slot_index, day in enumerate(slots):
            decline = slot_index == len(slots) - 1 and index % 3 == 0
            kind = "gradual_decline" if decline else others[(index + slot_index * 2) % len(others)]
            plan.append(f"{kind}:{home}@{day}")
    return plan


def run_evaluation(
    homes: int = 12, days: int = 60, seed: int = 1, warm_up_days: int = 14, tick_minutes: int = 5
) -> dict[str, Any]:
    """Simulate, detect and score; returns the report as a JSON-ready dict."""
    from firmware_sim.fleet import build_fleet
    from firmware_sim.simulation import generate, ground_truth

    registry = build_fleet(homes=homes, beds=0, air_sites=0, seed=seed, formats="canonical")
    home_ids = sorted(registry.homes)
    end_ms = START_MS + days * DAY_MS
    anomalies = anomaly_plan(home_ids, days, warm_up_days)
    truth = [i for i in ground_truth(registry, START_MS, end_ms, seed=seed, anomalies=anomalies)
             if i.type in ROUTINE_TYPES]
    clock = EventClock(START_MS)
    detector = RoutineDetector(registry, clock, warm_up_days=warm_up_days)
    findings: list[Finding] = []
    tick_ms = tick_minutes * 60_000
    next_tick = START_MS + tick_ms
    events = 0
    spent = 0.0
    for device, measurement in generate(registry, START_MS, end_ms, seed=seed, anomalies=anomalies):
        ts = measurement.ts_ms
        while ts >= next_tick:
            clock.observe(next_tick)
            started = time.perf_counter()
            findings += detector.tick(next_tick)
            spent += time.perf_counter() - started
            next_tick += tick_ms
        clock.observe(ts)
        reading = Reading(
            domain=device.domain, device_id=device.id, subject=device.subject, room=device.room, ts_ms=ts,
            metrics={k: float(v) for k, v in measurement.metrics.items()}, battery_pct=measurement.battery_pct,
            seq=measurement.seq,
        )
        started = time.perf_counter()
        findings += detector.process(reading)
        spent += time.perf_counter() - started
        events += 1
    return score(findings, truth, home_ids, end_ms, warm_up_days, events, spent)


def score(
    findings: list[Finding], truth: list[Any], homes: list[str], end_ms: int, warm_up_days: int, events: int,
    spent_s: float,
) -> dict[str, Any]:
    raised = [f for f in findings if f.active]
    per_type: dict[str, TypeScore] = defaultdict(TypeScore)
    matched: set[int] = set()
    for injection in truth:
        until = end_ms if injection.type == "gradual_decline" else injection.end_ms + DAY_MS
        hits = [
            (index, f) for index, f in enumerate(raised)
            if f.subject == injection.subject and injection.start_ms - HOUR_MS <= f.at_ms <= until
        ]
        entry = per_type[injection.type]
        entry.injected += 1
        matched |= {index for index, _ in hits}
        if hits:
            entry.detected += 1
            first = min(f.at_ms for _, f in hits)
            entry.delays_h.append(max(0.0, (first - injection.start_ms) / HOUR_MS))
        rule = RULE_FOR_TYPE[injection.type]
        own = [f for _, f in hits if f.rule == rule]
        entry.rule_findings_true += len(own)
        entry.detected_by_rule += bool(own)
    for kind, rule in RULE_FOR_TYPE.items():
        per_type[kind].rule_findings += sum(1 for f in raised if f.rule == rule)
    learning_end = START_MS + (warm_up_days + 1) * DAY_MS
    false_alerts = [f for index, f in enumerate(raised) if index not in matched]
    months = len(homes) * max(1e-9, (end_ms - learning_end) / (30 * DAY_MS))
    by_rule: dict[str, int] = defaultdict(int)
    for finding in false_alerts:
        by_rule[finding.rule] += 1
    return {
        "homes": len(homes),
        "days": round((end_ms - START_MS) / DAY_MS),
        "events": events,
        "us_per_event": round(1e6 * spent_s / max(events, 1), 2),
        "types": {kind: per_type[kind].as_dict() for kind in ROUTINE_TYPES if per_type[kind].injected},
        "findings": len(raised),
        "false_alerts": len(false_alerts),
        "false_alerts_by_rule": dict(by_rule),
        "false_alerts_per_home_month": round(len(false_alerts) / months, 3),
        "false_alert_examples": [
            {"rule": f.rule, "subject": f.subject, "day": (f.at_ms - START_MS) // DAY_MS, "message": f.message}
            for f in false_alerts[:8]
        ],
        "missed": [
            {"type": i.type, "subject": i.subject, "day": (i.start_ms - START_MS) // DAY_MS}
            for i in truth
            if not any(
                f.subject == i.subject and i.start_ms - HOUR_MS <= f.at_ms <= i.end_ms + DAY_MS for f in raised
            )
        ][:12],
    }

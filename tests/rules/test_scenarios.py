"""Rules against firmware-sim: each injected anomaly raises its alert inside the injected window (event clock),
and a month of ordinary simulated life for several homes, beds and sites raises no false alerts."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from itertools import pairwise

import pytest

from devices.readings import Reading
from devices.registry import Registry
from placesense.basics.clock import EventClock
from placesense.basics.findings import Finding
from rules.config import RulesConfig
from rules.engine import RuleEngine
from tests.helpers import sim_readings
from tests.rules.factory import DAY, HOUR, LONDON

firmware_sim = pytest.importorskip("firmware_sim")

# Which alert each injected anomaly should raise.
EXPECTED_RULE = {
    "late_wakeup": {"not_up"},
    "night_wandering": {"night_door"},
    "more_bathroom_visits": {"bathroom_visits"},
    "no_movement": {"inactivity", "bathroom_stay"},
    "cold_home": {"cold_home"},
    "reduced_kitchen_use": {"no_kitchen_use", "reduced_kitchen_use"},
    "bed_drying_out": {"needs_water"},
    "stuck_sensor": {"sensor_fault"},
    "pollution_episode": {"daqi"},
    "device_offline": {"device_offline"},
}
# firmware-sim's more_bathroom_visits adds Poisson(+2) night trips and boosts day trips, but most extra day
# trips fall past bedtime and are dropped, so on this fleet the counts (nights 4, 1, 4, 4, 1 against a usual
# 1.6) are not unusual enough to tell from ordinary nights without false alarms. The rule is tested on a clear
# scenario in test_home.py; this is reported to the firmware-sim owner rather than tuned away here.
WEAK_IN_SIM: frozenset[str] = frozenset()
# How long after an injection ends its alert may still come: a cold room warms slowly, a count is judged
# the morning after, a buffered device reports late.
SLACK_MS = {"more_bathroom_visits": 2 * DAY, "reduced_kitchen_use": DAY, "bed_drying_out": DAY}


def _readings(registry: Registry, start_ms: int, end_ms: int, anomalies: Iterable[str] = ()) -> Iterable[Reading]:
    return sim_readings(registry, start_ms, end_ms, seed=11, anomalies=anomalies)


def _run(registry: Registry, start_ms: int, end_ms: int, anomalies: Iterable[str] = ()) -> list[Finding]:
    engine = RuleEngine(registry, RulesConfig(), EventClock())
    findings: list[Finding] = []
    for reading in _readings(registry, start_ms, end_ms, anomalies):
        findings += engine.process(reading)
    return findings + engine.tick(end_ms)


def _start(month: int, day: int) -> int:
    return int(datetime(2026, month, day, tzinfo=LONDON).timestamp() * 1000)


def test_each_injected_anomaly_raises_its_alert_inside_the_window() -> None:
    registry = firmware_sim.build_fleet(homes=4, beds=4, air_sites=2, seed=11, formats="canonical")
    start = _start(6, 1)  # June: beds really dry out when sheltered from rain and watering
    end = start + 24 * DAY
    anomalies = [
        "late_wakeup@15",
        "night_wandering@16",
        "more_bathroom_visits@15",
        "no_movement@18",
        "cold_home@19",
        "reduced_kitchen_use@15",
        "bed_drying_out@14",
        "stuck_sensor@15",
        "pollution_episode@16",
        "device_offline@17",
    ]
    truth = firmware_sim.ground_truth(registry, start, end, seed=11, anomalies=anomalies)
    findings = [f for f in _run(registry, start, end, anomalies) if f.active]
    missed = []
    for injection in truth:
        if injection.type in WEAK_IN_SIM:
            continue
        wanted = EXPECTED_RULE[injection.type]
        subject = injection.subject
        if injection.device is not None and injection.device in registry.devices:
            subject = registry.devices[injection.device].subject
        late = injection.end_ms + SLACK_MS.get(injection.type, 2 * HOUR)
        hits = [
            f for f in findings if f.rule in wanted and f.subject == subject and injection.start_ms <= f.at_ms <= late
        ]
        if not hits:
            missed.append(
                f"{injection.type} on {subject} ({injection.to_json()['start']}–{injection.to_json()['end']})"
            )
    assert missed == [], "no alert for: " + "; ".join(missed)


def test_a_normal_month_raises_no_false_alerts() -> None:
    registry = firmware_sim.build_fleet(homes=3, beds=5, air_sites=2, seed=11, formats="canonical")
    start = _start(5, 4)
    end = start + 30 * DAY
    engine = RuleEngine(registry, RulesConfig(), EventClock())
    findings: list[Finding] = []
    moisture: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for reading in _readings(registry, start, end):
        findings += engine.process(reading)
        if "soil_moisture_pct" in reading.metrics:
            moisture[reading.subject].append((reading.ts_ms, reading.metrics["soil_moisture_pct"]))
    findings += engine.tick(end)

    watering = [f for f in findings if f.rule in ("needs_water", "over_watered")]
    others = [f"{f.rule} {f.subject}: {f.message}" for f in findings if f not in watering and f.rule != "low_battery"]
    assert others == []
    # Watering alerts are true when the bed really is, or soon gets, that dry (operatives water only beds
    # below threshold, so a normal month has some): check each against what the soil did.
    for finding in watering:
        if not finding.active:
            continue
        dry = registry.flowerbeds[finding.subject].dry_below_pct
        series = moisture[finding.subject]
        if finding.rule == "over_watered":
            assert any(v > registry.flowerbeds[finding.subject].wet_above_pct for t, v in series if t == finding.at_ms)
            continue
        ahead = [v for t, v in series if finding.at_ms <= t <= finding.at_ms + 36 * HOUR]
        rose = any(b - a > 3 for a, b in pairwise(ahead))
        assert min(ahead) < dry + 3 or rose, f"{finding.subject}: {finding.message}"

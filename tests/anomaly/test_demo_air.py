"""The demo's air sites, a week of them reporting every minute, through the evaluation: their everyday differences
(a roadside site's rush hours, a local pollution episode and the hours after it) raise no "drifted away from the
other sites" alert, and a sensor that really drifts still does."""

from __future__ import annotations

from pathlib import Path

import pytest
from firmware_sim.fleet import build_fleet
from firmware_sim.simulation import Quirks, Simulation
from firmware_sim.timebase import local_days, parse_rfc3339

from devices.readings import Reading
from devices.registry import Registry
from placesense.basics.findings import Finding
from placesense.basics.timeunits import DAY_MS
from placesense.evaluation_core import EvaluationCore, EvaluationSpec
from placesense.tools.demo import SEED, demo_incidents
from rules.config import RulesConfig

START_MS = parse_rfc3339("2024-11-04T00:00:00Z")  # a Monday in late autumn: cold evenings, wood smoke
DAYS = 8
DRIFT_FROM_MS = START_MS + 4 * DAY_MS


@pytest.fixture(scope="module")
def demo_air() -> tuple[Registry, list[Reading]]:
    """The default demo fleet's air readings with the demo's incidents (two pollution episodes, a stuck sensor)."""
    registry = build_fleet(homes=4, beds=8, air_sites=5, seed=SEED, formats="mix")
    end = START_MS + DAYS * DAY_MS
    # "today" is day 6: yesterday's and today's episodes and the stuck sensor, with time after them to settle
    today = local_days(START_MS, end)[6].index
    incidents = [i for i in demo_incidents(registry, today) if i.startswith(("pollution_episode", "stuck_sensor:air"))]
    assert len(incidents) == 3
    simulation = Simulation(registry, START_MS, end, seed=SEED, anomalies=incidents, quirks=Quirks(report_every_s=60))
    readings = [
        Reading("air", e.device.id, e.device.subject, None, e.measurement.ts_ms,
                {name: float(value) for name, value in e.measurement.metrics.items()})
        for e in simulation.events() if e.device.domain == "air" and "no2_ugm3" in e.measurement.metrics
    ]
    return registry, readings


def _evaluate(registry: Registry, readings: list[Reading], state_dir: Path) -> list[Finding]:
    core = EvaluationCore(EvaluationSpec(registry, RulesConfig(), "event", state_dir, 30))
    found: list[Finding] = []
    for start in range(0, len(readings), 1000):
        found += core.readings([tuple(r) for r in readings[start:start + 1000]])
        found += core.tick()
    return found


def test_the_demo_week_raises_no_drift_alert(demo_air: tuple[Registry, list[Reading]], tmp_path: Path) -> None:
    registry, readings = demo_air
    found = _evaluate(registry, readings, tmp_path)
    assert [f for f in found if "vs_neighbours" in f.rule] == []
    # the week did reach the rules: the demo's pollution episodes and stuck sensor are reported
    assert any(f.active and f.rule.startswith("daqi") for f in found), {f.rule for f in found}
    assert any(f.active and f.device_id == "air-05-aq" and "stuck" in f.message for f in found)


def test_a_demo_site_that_drifts_is_reported(demo_air: tuple[Registry, list[Reading]], tmp_path: Path) -> None:
    registry, readings = demo_air
    # air-02's NO2 cell loses its calibration on day 4: it reads ever higher, 25 µg/m³ too high a day later
    drifting = [
        r._replace(metrics={**r.metrics, "no2_ugm3": r.metrics["no2_ugm3"]
                            + min(25.0, 25.0 * (r.ts_ms - DRIFT_FROM_MS) / DAY_MS)})
        if r.device_id == "air-02-aq" and r.ts_ms >= DRIFT_FROM_MS else r
        for r in readings
    ]
    drifted = [f for f in _evaluate(registry, drifting, tmp_path) if f.active and "vs_neighbours" in f.rule]
    assert drifted and {(f.subject, f.rule) for f in drifted} == {("air-02", "sensor_anomaly_no2_ugm3_vs_neighbours")}
    assert all(f.at_ms >= DRIFT_FROM_MS + DAY_MS for f in drifted)

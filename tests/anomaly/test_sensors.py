"""Per-sensor detectors on soil and air streams: stuck sensors, sudden jumps, drift from the neighbours."""

from __future__ import annotations

import math
import random

from anomaly.sensors import SensorDetectors
from devices.readings import Reading
from devices.registry import Registry
from placesense.clock import EventClock

HOUR = 3_600_000
REGISTRY = Registry.from_data({
    "flowerbeds": [{"id": "bed-01", "name": "Rose bed", "lat": 53.0, "lon": -3.0}],
    "air_sites": [{"id": f"air-0{i}", "name": f"Site {i}", "lat": 53.0, "lon": -3.0} for i in range(1, 5)],
    "devices": [{"id": "bed-01-soil", "domain": "soil", "subject": "bed-01", "kind": "soil"}]
    + [{"id": f"air-0{i}-aq", "domain": "air", "subject": f"air-0{i}", "kind": "air"} for i in range(1, 5)],
})


def _soil(i: int, moisture: float) -> Reading:
    return Reading("soil", "bed-01-soil", "bed-01", None, i * HOUR // 3, {"soil_moisture_pct": moisture})


def _drying(i: int, rng: random.Random) -> float:
    # Dries over a few days, watered back up every 3 days, with sensor noise.
    return 55 - (i % 216) * 0.1 + rng.gauss(0, 0.3)


def test_a_stuck_soil_sensor_is_reported_once_and_clears_when_it_reads_again() -> None:
    rng = random.Random(1)
    detectors = SensorDetectors(REGISTRY, EventClock())
    findings = [f for i in range(600) for f in detectors.process(_soil(i, _drying(i, rng)))]
    assert findings == []  # ordinary drying and watering raise nothing
    stuck = [f for i in range(600, 680) for f in detectors.process(_soil(i, 41.3))]
    assert len(stuck) == 1 and stuck[0].active
    assert "stuck" in stuck[0].message and stuck[0].subject == "bed-01" and stuck[0].audience == "street"
    back = [f for i in range(680, 800) for f in detectors.process(_soil(i, _drying(i, rng)))]
    assert [f.active for f in back if f.rule == stuck[0].rule][-1] is False


def test_a_sudden_drop_is_reported_but_a_watering_is_not() -> None:
    rng = random.Random(2)
    detectors = SensorDetectors(REGISTRY, EventClock())
    for i in range(600):
        assert detectors.process(_soil(i, _drying(i, rng))) == []
    # Soil cannot dry from ~50 % to 5 % in twenty minutes: the probe has come out of the ground.
    drop = detectors.process(_soil(600, 5.0))
    assert len(drop) == 1 and "dropped suddenly" in drop[0].message


def test_an_air_sensor_drifting_from_its_neighbours_is_reported() -> None:
    rng = random.Random(3)
    detectors = SensorDetectors(REGISTRY, EventClock())
    findings = []
    for i in range(900):
        town = 30 + 15 * math.sin(i / 12)  # the whole town's NO2 rises and falls together
        for site in range(1, 5):
            drift = 0.25 * max(0, i - 600) if site == 2 else 0.0  # site 2 reads ever higher after i = 600
            value = max(0.0, town + rng.gauss(0, 1.0) + drift)
            reading = Reading("air", f"air-0{site}-aq", f"air-0{site}", None, i * 300_000 + site,
                              {"no2_ugm3": value, "pm2_5_ugm3": 8.0 + rng.gauss(0, 0.5),
                               "pm10_ugm3": 14.0 + rng.gauss(0, 0.8)})
            findings += detectors.process(reading)
    drifted = [f for f in findings if f.active and "vs_neighbours" in f.rule]
    assert drifted and {f.subject for f in drifted} == {"air-02"}
    assert all(f.at_ms > 600 * 300_000 for f in drifted)
    assert "drifted away from the other sites" in drifted[0].message

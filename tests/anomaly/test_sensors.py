"""Per-sensor detectors on soil and air streams: stuck sensors, sudden jumps, drift from the neighbours."""

from __future__ import annotations

import math
import random

from anomaly.sensors import SensorDetectors
from devices.readings import Reading
from devices.registry import Registry
from placesense.basics.clock import EventClock

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


def test_an_air_sensor_drifting_from_its_neighbours_is_reported_after_a_day() -> None:
    rng = random.Random(3)
    detectors = SensorDetectors(REGISTRY, EventClock())
    findings = []
    drift_from = 6 * 288  # six days of readings every five minutes
    for i in range(10 * 288):
        town = 30 + 15 * math.sin(i / 12)  # the whole town's NO2 rises and falls together
        for site in range(1, 5):
            # site 2 reads ever higher from day 6, up to 20 µg/m³ too high a day and a half later
            drift = min(20.0, 0.05 * max(0, i - drift_from)) if site == 2 else 0.0
            value = max(0.0, town + rng.gauss(0, 1.0) + drift)
            reading = Reading("air", f"air-0{site}-aq", f"air-0{site}", None, i * 300_000 + site,
                              {"no2_ugm3": value, "pm2_5_ugm3": 8.0 + rng.gauss(0, 0.5),
                               "pm10_ugm3": 14.0 + rng.gauss(0, 0.8)})
            findings += detectors.process(reading)
    drifted = [f for f in findings if f.active and "vs_neighbours" in f.rule]
    assert drifted and {f.subject for f in drifted} == {"air-02"}
    # a drift is reported only once it has lasted a day, and within two days of its start
    assert all(drift_from * 300_000 + 24 * HOUR <= f.at_ms <= drift_from * 300_000 + 48 * HOUR for f in drifted)
    assert "drifted away from the other sites" in drifted[0].message
    assert "nitrogen dioxide" in drifted[0].message


def test_a_sites_local_episode_is_not_a_drift() -> None:
    """One site's NO2 is lifted for six hours (a fire, stalled traffic) and falls back: the DAQI's business, not a
    faulty sensor, however often it reports."""
    rng = random.Random(4)
    detectors = SensorDetectors(REGISTRY, EventClock())
    findings = []
    every_ms = 60_000
    per_day = 86_400_000 // every_ms
    for i in range(6 * per_day):
        hour = (i * every_ms / HOUR) % 24
        town = 25 + 30 * math.exp(-0.5 * ((hour - 8) / 1.0) ** 2) + 25 * math.exp(-0.5 * ((hour - 17.5) / 1.2) ** 2)
        for site in range(1, 5):
            roadside = 1.6 if site == 3 else 1.0  # site 3 is by a busy road: its rush hours are much higher
            episode = 200.0 if site == 1 and 4 * per_day + 600 <= i < 4 * per_day + 960 else 0.0
            value = town * roadside * rng.lognormvariate(0, 0.1) + episode
            reading = Reading("air", f"air-0{site}-aq", f"air-0{site}", None, i * every_ms + site,
                              {"no2_ugm3": value, "pm2_5_ugm3": 8.0 + rng.gauss(0, 0.5)})
            findings += detectors.process(reading)
    assert [f for f in findings if "vs_neighbours" in f.rule] == []

"""Every injected anomaly is labelled in the ground truth and visible in the stream inside its window."""

from __future__ import annotations

import itertools
import statistics
from pathlib import Path

import pytest
from firmware_sim.anomalies import (
    ANOMALY_TYPES,
    AnomalyRequest,
    Injection,
    parse_anomaly,
    random_requests,
    read_ground_truth,
    write_ground_truth,
)
from firmware_sim.fleet import build_fleet
from firmware_sim.simulation import Simulation
from firmware_sim.timebase import parse_rfc3339

from placesense.basics.timeunits import DAY_MS, HOUR_MS, MINUTE_MS

from .conftest import DAYS, START_MS, Run


def _truth(run: Run, kind: str, subject: str | None = None) -> Injection:
    found = [i for i in run.simulation.ground_truth if i.type == kind and subject in (None, i.subject)]
    assert len(found) == 1, (kind, found)
    return found[0]


def _motion_on(run: Run, home_id: str, rooms: tuple[str, ...] | None = None) -> list[int]:
    return [e.measurement.ts_ms for e in run.events
            if e.device.subject == home_id and e.device.kind == "motion" and e.measurement.metrics["motion"] is True
            and (rooms is None or e.device.room in rooms)]


def _per_day(stamps: list[int], run: Run, days: range) -> list[int]:
    return [sum(1 for ts in stamps if run.simulation.day(d).base_ms <= ts < run.simulation.day(d).next_base_ms)
            for d in days]


def _values(run: Run, device_id: str, metric: str, start: int, end: int) -> list[float]:
    return [float(e.measurement.metrics[metric]) for e in run.events
            if e.device.id == device_id and start <= e.measurement.ts_ms < end and metric in e.measurement.metrics]


def test_ground_truth_lists_each_request_once_with_rfc3339_windows(anomaly_run: Run, tmp_path: Path) -> None:
    truth = anomaly_run.simulation.ground_truth
    assert {i.type for i in truth} == set(ANOMALY_TYPES)
    path = tmp_path / "truth.jsonl"
    assert write_ground_truth(truth, path) == len(truth)
    records = read_ground_truth(path)
    for record, injection in zip(records, truth, strict=True):
        assert set(record) >= {"type", "subject", "start", "end", "details"}
        assert parse_rfc3339(record["start"]) == injection.start_ms and record["end"].endswith("Z")
        assert START_MS <= injection.start_ms < injection.end_ms <= START_MS + DAYS * DAY_MS


def test_late_wakeup(anomaly_run: Run) -> None:
    late = _truth(anomaly_run, "late_wakeup")
    day = anomaly_run.simulation.day(10)
    usual_ms = day.at(anomaly_run.simulation.home_model(late.subject).usual_wake_h(day))
    assert late.start_ms == usual_ms and late.end_ms - late.start_ms >= 2.5 * HOUR_MS
    first_activity = min(ts for ts in _motion_on(anomaly_run, late.subject, ("bedroom", "kitchen"))
                         if day.at(5) <= ts < day.at(16))
    skew_ms = round(anomaly_run.simulation.quirks.clock_skew_max_s * 1000)  # device clocks may be off a little
    assert late.end_ms - skew_ms <= first_activity < late.end_ms + 5 * MINUTE_MS


def test_night_wandering(anomaly_run: Run) -> None:
    wander = _truth(anomaly_run, "night_wandering")
    home_id = wander.subject
    door_opens = [e.measurement.ts_ms for e in anomaly_run.events
                  if e.device.id == f"{home_id}-door-front" and e.measurement.metrics["door_open"] is True]
    assert any(wander.covers(ts) for ts in door_opens)
    assert wander.device == f"{home_id}-door-front"
    hallway = [ts for ts in _motion_on(anomaly_run, home_id, ("hallway",)) if wander.covers(ts)]
    assert len(hallway) >= 2
    # On every other night the front door stays shut between midnight and five.
    for index in range(1, DAYS):
        day = anomaly_run.simulation.day(index)
        if index != 13:
            assert not [ts for ts in door_opens if day.at(0) <= ts < day.at(5)], index


def test_more_bathroom_visits(anomaly_run: Run) -> None:
    more = _truth(anomaly_run, "more_bathroom_visits")
    first = next(d for d in range(DAYS) if anomaly_run.simulation.day(d).base_ms == more.start_ms)
    span = int(more.details["days"])
    visits = _motion_on(anomaly_run, more.subject, ("bathroom",))
    before = statistics.mean(_per_day(visits, anomaly_run, range(1, first)))
    during = statistics.mean(_per_day(visits, anomaly_run, range(first, first + span)))
    assert during > 1.6 * before


def test_no_movement(anomaly_run: Run) -> None:
    fall = _truth(anomaly_run, "no_movement")
    assert fall.end_ms - fall.start_ms >= 3 * HOUR_MS
    assert not [ts for ts in _motion_on(anomaly_run, fall.subject) if fall.covers(ts)]
    assert [ts for ts in _motion_on(anomaly_run, fall.subject) if fall.end_ms <= ts < fall.end_ms + HOUR_MS]


def test_cold_home(anomaly_run: Run) -> None:
    cold = _truth(anomaly_run, "cold_home")
    assert cold.device == f"{cold.subject}-climate"
    readings = [(e.measurement.ts_ms, float(e.measurement.metrics["temperature_c"])) for e in anomaly_run.events
                if e.device.id == cold.device and cold.covers(e.measurement.ts_ms)]
    below = [ts for ts, temperature in readings if temperature < 16]
    assert below and below[-1] - below[0] >= 4 * HOUR_MS
    before = _values(anomaly_run, cold.device, "temperature_c", cold.start_ms - 6 * HOUR_MS, cold.start_ms)
    assert min(before) >= 16


def test_reduced_kitchen_use(anomaly_run: Run) -> None:
    cut = _truth(anomaly_run, "reduced_kitchen_use")
    first = next(d for d in range(DAYS) if anomaly_run.simulation.day(d).base_ms == cut.start_ms)
    span = int(cut.details["days"])
    boils = [e.measurement.ts_ms for e in anomaly_run.events
             if e.device.id == f"{cut.subject}-plug-kettle" and float(e.measurement.metrics["power_w"]) > 0]
    kitchen = _motion_on(anomaly_run, cut.subject, ("kitchen",))
    normal_days = range(1, 10)  # before the same home's bathroom episode
    assert statistics.mean(_per_day(boils, anomaly_run, range(first, first + span))) < 0.5 * statistics.mean(
        _per_day(boils, anomaly_run, normal_days))
    assert statistics.mean(_per_day(kitchen, anomaly_run, range(first, first + span))) < 0.75 * statistics.mean(
        _per_day(kitchen, anomaly_run, normal_days))


def test_gradual_decline(anomaly_run: Run) -> None:
    decline = _truth(anomaly_run, "gradual_decline")
    assert decline.end_ms == anomaly_run.simulation.end_ms
    activity = _motion_on(anomaly_run, decline.subject)
    early = statistics.mean(_per_day(activity, anomaly_run, range(1, 8)))
    late = statistics.mean(_per_day(activity, anomaly_run, range(DAYS - 7, DAYS)))
    assert late < 0.8 * early
    outings = [e.measurement.ts_ms for e in anomaly_run.events if e.device.id == f"{decline.subject}-door-front"
               and e.measurement.metrics["door_open"] is True]
    assert len([t for t in outings if t >= anomaly_run.simulation.day(DAYS - 7).base_ms]) <= len(
        [t for t in outings if t < anomaly_run.simulation.day(8).base_ms])


def test_bed_drying_out(anomaly_run: Run) -> None:
    dry = _truth(anomaly_run, "bed_drying_out", "bed-001")
    readings = _values(anomaly_run, "bed-001-soil", "soil_moisture_pct", dry.start_ms, dry.end_ms)
    assert all(b - a < 1.0 for a, b in itertools.pairwise(readings)), "no rain, no watering"
    lost_per_day = (readings[0] - readings[-1]) / int(dry.details["days"])
    assert lost_per_day > 3
    assert not [w for bed, w in anomaly_run.simulation.waterings if bed == "bed-001" and dry.covers(w)]


def test_stuck_sensors(anomaly_run: Run) -> None:
    stuck = [i for i in anomaly_run.simulation.ground_truth if i.type == "stuck_sensor"]
    assert {i.device for i in stuck} >= {"bed-002-soil"}
    for injection in stuck:
        assert injection.device is not None
        inside = [dict(e.measurement.metrics) for e in anomaly_run.events
                  if e.device.id == injection.device and injection.covers(e.measurement.ts_ms)]
        assert len(inside) >= 10 and all(m == inside[0] for m in inside)
        after = [dict(e.measurement.metrics) for e in anomaly_run.events if e.device.id == injection.device
                 and injection.end_ms <= e.measurement.ts_ms < injection.end_ms + 6 * HOUR_MS]
        assert len({tuple(sorted(m.items())) for m in after}) > 1


def test_pollution_episode(anomaly_run: Run) -> None:
    episode = _truth(anomaly_run, "pollution_episode")
    assert episode.subject == "air-01" and episode.device == "air-01-aq"
    pm_inside = _values(anomaly_run, "air-01-aq", "pm2_5_ugm3", episode.start_ms, episode.end_ms)
    no2_inside = _values(anomaly_run, "air-01-aq", "no2_ugm3", episode.start_ms, episode.end_ms)
    pm_day_before = _values(anomaly_run, "air-01-aq", "pm2_5_ugm3", episode.start_ms - DAY_MS, episode.start_ms)
    assert min(pm_inside) > 45 and statistics.mean(no2_inside) > 180
    assert statistics.mean(pm_inside) > statistics.mean(pm_day_before) + 40


def test_device_offline_buffers_or_loses(anomaly_run: Run) -> None:
    outages = [i for i in anomaly_run.simulation.ground_truth if i.type == "device_offline"]
    assert len(outages) == 2
    for outage in outages:
        device = anomaly_run.registry.devices[outage.device or ""]
        inside = [e for e in anomaly_run.events if e.device.id == device.id and outage.covers(e.measurement.ts_ms)]
        if device.format == "zigbee2mqtt":
            assert not inside
        else:
            assert all(e.send_ms >= outage.end_ms for e in inside)
        if device.kind == "soil":
            # A periodic sensor measured all along: on return it sends the backlog at once.
            assert len(inside) >= 2
            burst = [e.send_ms for e in inside]
            assert burst[-1] - burst[0] < 1000, "sent in a burst on return"


def test_parse_and_random_requests() -> None:
    assert parse_anomaly("late_wakeup") == AnomalyRequest("late_wakeup")
    assert parse_anomaly("cold_home:h-abc123@4") == AnomalyRequest("cold_home", "h-abc123", 4)
    assert parse_anomaly("stuck_sensor:bed-001-soil") == AnomalyRequest("stuck_sensor", "bed-001-soil")
    for bad in ("sleepwalking", "late_wakeup@x", "late_wakeup@-1"):
        with pytest.raises(ValueError):
            parse_anomaly(bad)
    requests = random_requests(12, seed=3)
    assert len(requests) == 12 and len({r.type for r in requests[:10]}) == 10
    assert requests == random_requests(12, seed=3)


def test_random_anomalies_resolve_inside_the_window_after_a_normal_week() -> None:
    registry = build_fleet(3, 3, 2, seed=6)
    simulation = Simulation(registry, START_MS, START_MS + 21 * DAY_MS, seed=6, anomalies=random_requests(10, 6))
    assert len(simulation.ground_truth) == 10
    for injection in simulation.ground_truth:
        assert START_MS <= injection.start_ms < injection.end_ms <= simulation.end_ms
        if injection.type != "gradual_decline":
            assert injection.start_ms >= simulation.day(7).base_ms - 2 * HOUR_MS


def test_impossible_requests_are_refused_with_a_reason() -> None:
    registry = build_fleet(1, 1, 0, seed=6)
    with pytest.raises(ValueError, match="no day 40"):
        Simulation(registry, START_MS, START_MS + 5 * DAY_MS, anomalies=["late_wakeup@40"])
    with pytest.raises(ValueError, match="pollution_episode"):
        Simulation(registry, START_MS, START_MS + 5 * DAY_MS, anomalies=["pollution_episode"])
    with pytest.raises(ValueError, match="h-nobody"):
        Simulation(registry, START_MS, START_MS + 5 * DAY_MS, anomalies=["cold_home:h-nobody"])

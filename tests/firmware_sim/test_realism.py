"""Does the simulated world look like the real one? Routines, heating, drying beds and rush-hour NO2."""

from __future__ import annotations

import itertools
import statistics
from collections import defaultdict
from datetime import datetime

from firmware_sim.firmware import SimEvent
from firmware_sim.timebase import TOWN_TZ

from placesense.basics.timeunits import HOUR_MS, MINUTE_MS

from .conftest import DAYS, Run


def _series(run: Run, device_id: str, metric: str) -> list[tuple[int, float]]:
    return [(e.measurement.ts_ms, float(e.measurement.metrics[metric])) for e in run.events
            if e.device.id == device_id and metric in e.measurement.metrics]


def _local_hour(ts_ms: int) -> float:
    stamp = datetime.fromtimestamp(ts_ms / 1000, tz=TOWN_TZ)
    return stamp.hour + stamp.minute / 60


def _changes(run: Run, device_id: str, metric: str) -> list[tuple[int, float]]:
    """Only the readings that change the value (check-ins repeat the last one)."""
    changes: list[tuple[int, float]] = []
    for ts_ms, value in _series(run, device_id, metric):
        if not changes or changes[-1][1] != value:
            changes.append((ts_ms, value))
    return changes


def test_wake_times_cluster_around_each_residents_usual_time(normal_run: Run) -> None:
    simulation = normal_run.simulation
    for home_id in normal_run.homes:
        model = simulation.home_model(home_id)
        errors_min = []
        for index in range(1, DAYS):
            day = simulation.day(index)
            # Getting up for the day is the last time out of bed before noon (earlier ones are night trips).
            got_up = [ts for ts, occupied in _changes(normal_run, f"{home_id}-bed", "occupied")
                      if not occupied and day.at(3) <= ts < day.at(12)]
            assert got_up, f"{home_id} never got up on day {index}"
            errors_min.append((got_up[-1] - day.at(model.usual_wake_h(day))) / MINUTE_MS)
        assert abs(statistics.median(errors_min)) < 5
        assert max(abs(e) for e in errors_min) < 60
        weekday_h = [model.usual_wake_h(simulation.day(i)) for i in range(DAYS) if not simulation.day(i).is_weekend]
        weekend_h = [model.usual_wake_h(simulation.day(i)) for i in range(DAYS) if simulation.day(i).is_weekend]
        assert statistics.mean(weekend_h) > statistics.mean(weekday_h) + 0.2, "later at weekends"
        assert abs(statistics.mean(weekday_h) - model.resident.wake_h) < 0.25


def test_pir_reports_motion_then_quiet_after_a_minute_or_so(normal_run: Run) -> None:
    home_id = normal_run.homes[0]
    for room in ("kitchen", "living_room", "hallway", "bathroom", "bedroom"):
        device_id = f"{home_id}-pir-{'living' if room == 'living_room' else room}"
        changes = _changes(normal_run, device_id, "motion")
        while changes and changes[0][1] == 0.0:
            changes.pop(0)  # the window may open with a quiet check-in
        assert len(changes) > 50, room
        for (on_ms, on), (off_ms, off) in zip(changes[::2], changes[1::2], strict=False):
            assert on == 1.0 and off == 0.0
            assert off_ms - on_ms >= 60_000


def test_nights_are_quiet_and_days_busy(normal_run: Run) -> None:
    by_hour: dict[int, int] = defaultdict(int)
    for event in normal_run.events:
        if event.device.kind == "motion" and event.measurement.metrics.get("motion") is True:
            by_hour[int(_local_hour(event.measurement.ts_ms))] += 1
    assert sum(by_hour[h] for h in range(1, 5)) * 10 < sum(by_hour[h] for h in range(10, 14))


def test_kettle_boils_at_two_to_three_kilowatts_and_is_otherwise_off(normal_run: Run) -> None:
    home_id = normal_run.homes[0]
    powers = [watts for _, watts in _series(normal_run, f"{home_id}-plug-kettle", "power_w")]
    boils = [w for w in powers if w > 0]
    assert all(2000 * 0.97 <= w <= 3000 * 1.02 for w in boils)
    assert all(w == 0 for w in powers if w < 2000)
    assert 2 * DAYS <= len(boils) <= 8 * DAYS


def test_indoor_temperature_follows_the_heating(normal_run: Run) -> None:
    for home_id in normal_run.homes:
        readings = _series(normal_run, f"{home_id}-climate", "temperature_c")
        gaps_min = [(b - a) / MINUTE_MS for (a, _), (b, _) in itertools.pairwise(readings)]
        assert all(9.5 <= gap <= 15.5 for gap in gaps_min)
        temperatures = [t for _, t in readings]
        assert min(temperatures) >= 16 and max(temperatures) <= 26
        evening = [t for ts, t in readings if 19 <= _local_hour(ts) < 22]
        setpoint_c = normal_run.simulation.home_model(home_id).resident.heating_setpoint_c
        assert abs(statistics.mean(evening) - setpoint_c) < 1.5


def test_beds_dry_and_rain_and_watering_raise_moisture(normal_run: Run) -> None:
    simulation = normal_run.simulation
    weather = simulation.weather
    dried_pct = rose_with_rain = 0.0
    for bed_id in normal_run.registry.flowerbeds:
        readings = _series(normal_run, f"{bed_id}-soil", "soil_moisture_pct")
        gaps_min = [(b - a) / MINUTE_MS for (a, _), (b, _) in itertools.pairwise(readings)]
        assert all(19 <= gap <= 31 for gap in gaps_min)
        for (a_ms, a_pct), (b_ms, b_pct) in itertools.pairwise(readings):
            rain_mm = sum(weather.rain_mm_per_h(t) for t in range(a_ms, b_ms, 10 * MINUTE_MS)) / 6
            if rain_mm == 0 and not any(a_ms <= w <= b_ms for bed, w in simulation.waterings if bed == bed_id):
                assert b_pct - a_pct < 1.5, "no water, no rise beyond the sensor's noise"
                dried_pct += max(0.0, a_pct - b_pct)
            elif rain_mm > 0.5:
                rose_with_rain += b_pct - a_pct
        for bed, watered_ms in simulation.waterings:
            if bed == bed_id:
                before = [pct for ts, pct in readings if watered_ms - HOUR_MS < ts < watered_ms]
                after = [pct for ts, pct in readings if watered_ms < ts < watered_ms + HOUR_MS]
                assert before and after and after[0] > before[-1] + 5
                assert after[0] > 34, "watered up to field capacity"
    assert dried_pct > 20 and rose_with_rain > 5
    assert simulation.waterings, "some bed needed watering in four weeks"


def test_no2_peaks_at_rush_hour_and_is_low_at_3am(normal_run: Run) -> None:
    rush: list[float] = []
    night: list[float] = []
    for event in normal_run.events:
        if event.device.domain != "air":
            continue
        stamp = datetime.fromtimestamp(event.measurement.ts_ms / 1000, tz=TOWN_TZ)
        hour = stamp.hour + stamp.minute / 60
        no2 = float(event.measurement.metrics["no2_ugm3"])
        if stamp.weekday() < 5 and 7.5 <= hour < 8.5:
            rush.append(no2)
        elif 2.5 <= hour < 3.5:
            night.append(no2)
    assert statistics.mean(rush) > 2 * statistics.mean(night)


def test_air_sites_read_every_5_to_15_minutes_and_some_have_ozone(normal_run: Run) -> None:
    events: dict[str, list[SimEvent]] = defaultdict(list)
    for event in normal_run.events:
        if event.device.domain == "air":
            events[event.device.id].append(event)
    assert len(events) == 2
    with_ozone = 0
    for readings in events.values():
        stamps = [e.measurement.ts_ms for e in readings]
        gap_min = statistics.median((b - a) / MINUTE_MS for a, b in itertools.pairwise(stamps))
        assert 4.5 <= gap_min <= 15.5
        with_ozone += all("o3_ugm3" in e.measurement.metrics for e in readings)
        pm = [float(e.measurement.metrics["pm2_5_ugm3"]) for e in readings]
        pm10 = [float(e.measurement.metrics["pm10_ugm3"]) for e in readings]
        assert all(b > a for a, b in zip(pm, pm10, strict=True)), "PM10 includes PM2.5"
        assert 2 < statistics.median(pm) < 20
    assert with_ozone == 1

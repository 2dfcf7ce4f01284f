"""Device health: offline after N× the usual interval (with a per-domain floor), battery levels with hysteresis,
stuck values and impossible jumps; per-device overrides from the registry."""

from __future__ import annotations

import random
import statistics

import pytest

from placesense.basics.errors import ConfigError
from tests.rules.factory import HOUR, MINUTE, air_reading, engine, local_ms, of, only_rules, registry, run, soil_reading

START = local_ms(5, 0)


def test_soil_sensor_offline_after_two_hours_and_back() -> None:
    eng = engine(only_rules({"offline"}), registry(beds=1, sites=0))
    readings = [soil_reading(0, START + i * 15 * MINUTE, 40.0 - i * 0.01) for i in range(12)]
    back = START + 11 * 15 * MINUTE + 5 * HOUR
    readings.append(soil_reading(0, back, 38.0))
    findings = [f for f in run(eng, readings) if f.subject == "bed-0"]
    offline = of(findings, "device_offline")
    last = START + 11 * 15 * MINUTE
    assert [(f.active, f.at_ms) for f in offline] == [(True, last + 2 * HOUR), (False, back)]
    assert offline[0].audience == "street"
    assert "Soil sensor (bed-0-soil) has sent nothing since 02:45 (2 h); it usually reports every 15 min" in (
        offline[0].message
    )


def test_offline_time_grows_with_a_slow_reporting_interval() -> None:
    eng = engine(only_rules({"offline"}), registry(beds=1, sites=0))
    readings = [soil_reading(0, START + i * HOUR, 40.0) for i in range(8)]
    findings = of(run(eng, readings, until_ms=START + 7 * HOUR + 4 * HOUR), "device_offline")
    bed = [f for f in findings if f.subject == "bed-0"]
    assert [f.at_ms for f in bed] == [START + 7 * HOUR + 4 * HOUR]  # 4 × the hourly interval


def test_the_usual_interval_is_the_median_of_the_last_25_gaps_only() -> None:
    eng = engine(only_rules({"offline"}), registry(beds=1, sites=0))
    times = [START + i * 15 * MINUTE for i in range(31)]  # 30 gaps of 15 min, then 13 of 100 min
    times += [times[-1] + i * 100 * MINUTE for i in range(1, 14)]
    last = times[-1]
    readings = [soil_reading(0, t, 40.0 + i % 2) for i, t in enumerate(times)]
    findings = of(run(eng, readings, until_ms=last + 24 * HOUR), "device_offline")
    # The 25 gaps kept are 12 of 15 min and 13 of 100 min: 4 × a 100 min median. Counting every gap ever
    # seen, the median would be 15 min and the device offline at the 2 h floor.
    bed = [f for f in findings if f.subject == "bed-0"]
    assert [f.at_ms for f in bed] == [last + 4 * 100 * MINUTE]
    assert "it usually reports every 1 h 40 min" in bed[0].message


def test_per_device_override_from_the_registry() -> None:
    reg = registry(beds=1, sites=0, device_rules={"bed-0-soil": {"offline": {"after_minutes": {"soil": 600}}}})
    eng = engine(only_rules({"offline"}), reg)
    readings = [soil_reading(0, START + i * 15 * MINUTE, 40.0) for i in range(8)]
    bed = [f for f in run(eng, readings, until_ms=START + 12 * HOUR) if f.subject == "bed-0"]
    assert [f.at_ms for f in bed] == [START + 7 * 15 * MINUTE + 10 * HOUR]


def test_bad_device_override_fails_at_start_naming_the_device() -> None:
    reg = registry(beds=1, sites=0, device_rules={"bed-0-soil": {"battery": {"warning_below": 30}}})
    with pytest.raises(ConfigError, match=r"device 'bed-0-soil' rules.battery: warning_below: Extra inputs"):
        engine({}, reg)


def test_a_device_that_never_reports_is_offline_from_start_up() -> None:
    eng = engine(only_rules({"offline"}), registry(beds=2, sites=0))
    readings = [soil_reading(0, START + i * 15 * MINUTE, 40.0) for i in range(10)]
    silent = [f for f in run(eng, readings) if f.subject == "bed-1"]
    assert [f.at_ms for f in silent] == [START + 2 * HOUR]
    assert "has sent nothing since monitoring started" in silent[0].message


def test_low_battery_warning_then_critical_and_a_new_battery_clears() -> None:
    eng = engine(only_rules({"battery"}), registry(beds=1, sites=0))
    levels = [30, 21, 19.5, 20.5, 19.8, 12, 9.5, 10.5, 9.9, 22, 95]
    readings = [soil_reading(0, START + i * HOUR, 40.0, battery_pct=b) for i, b in enumerate(levels)]
    battery = of(run(eng, readings), "low_battery")
    assert [(f.active, f.severity, f.at_ms) for f in battery] == [
        (True, "warning", START + 2 * HOUR),
        (True, "critical", START + 6 * HOUR),
        (False, "info", START + 10 * HOUR),
    ]
    assert "battery at 20 %: replace it soon" in battery[0].message
    assert "battery at 10 %: replace it now" in battery[1].message


def test_stuck_soil_sensor_after_twelve_hours_and_clears_when_it_moves() -> None:
    eng = engine(only_rules({"sensor_fault"}), registry(beds=1, sites=0))
    readings = [soil_reading(0, START + i * 30 * MINUTE, 33.3) for i in range(30)]
    readings.append(soil_reading(0, START + 30 * 30 * MINUTE, 33.1))
    faults = of(run(eng, readings), "sensor_fault")
    assert [(f.active, f.at_ms) for f in faults] == [(True, START + 12 * HOUR), (False, START + 15 * HOUR)]
    assert "has read exactly 33.3 % soil moisture for 12 h: probably stuck" in faults[0].message


def test_stuck_hours_for_one_kind_keeps_the_defaults_of_the_others() -> None:
    config = only_rules({"sensor_fault"})
    config["sensor_fault"]["stuck_hours"] = {"soil": 3}
    eng = engine(config, registry(beds=1, sites=1))
    readings = []
    for i in range(16):  # soil and air both stuck; air for 7.5 h, past its default of 6 h
        readings += [soil_reading(0, START + i * 30 * MINUTE, 33.3), air_reading(0, START + i * 30 * MINUTE + 1,
                                                                                 pm2_5_ugm3=7.0)]
    faults = [(f.subject, f.at_ms) for f in of(run(eng, readings), "sensor_fault") if f.active]
    assert faults == [("bed-0", START + 3 * HOUR), ("air-0", START + 6 * HOUR + 1)]


def test_clean_air_reading_zero_for_hours_is_not_stuck() -> None:
    eng = engine(only_rules({"sensor_fault"}), registry(beds=0, sites=1))
    readings = [air_reading(0, START + i * 10 * MINUTE, no2_ugm3=0.0, pm2_5_ugm3=3.0 + (i % 5)) for i in range(60)]
    assert of(run(eng, readings), "sensor_fault") == []


def test_impossible_jumps() -> None:
    eng = engine(only_rules({"sensor_fault"}), registry(beds=1, sites=1))
    readings = [
        soil_reading(0, START, 45.0),
        soil_reading(0, START + 15 * MINUTE, 12.0),  # 33 points drier in 15 minutes: no soil does that
        air_reading(0, START, pm2_5_ugm3=8.0),
        air_reading(0, START + MINUTE, pm2_5_ugm3=900.0),
    ]
    faults = of(run(eng, readings), "sensor_fault")
    assert {f.subject for f in faults if f.active} == {"bed-0", "air-0"}
    soil = next(f for f in faults if f.subject == "bed-0")
    assert "jumped from 45 to 12 in 15 min" in soil.message
    # Rain or watering raises moisture fast: not a fault.
    eng2 = engine(only_rules({"sensor_fault"}), registry(beds=1, sites=0))
    assert run(eng2, [soil_reading(0, START, 12.0), soil_reading(0, START + 15 * MINUTE, 60.0)]) == []


@pytest.mark.parametrize("seed", range(12))
def test_offline_time_follows_the_median_as_long_gaps_come_and_go(seed: int) -> None:
    # The engine counts the gaps long enough to matter (above 2 h / 4 for soil) instead of sorting every time;
    # the offline time must still be exactly 4 × the median of the last 25 gaps, never below the 2 h floor.
    rng = random.Random(seed)
    eng = engine(only_rules({"offline"}), registry(beds=1, sites=0))
    gaps = [rng.choice([15, 29, 30, 31, 45, 100]) * MINUTE for _ in range(rng.randrange(20, 60))]
    times = [START + sum(gaps[:i]) for i in range(len(gaps) + 1)]
    readings = [soil_reading(0, t, 40.0 + i % 2) for i, t in enumerate(times)]
    findings = of(run(eng, readings, until_ms=times[-1] + 24 * HOUR), "device_offline")
    expected = max(2 * HOUR, int(4 * statistics.median(gaps[-25:])))
    assert [f.at_ms for f in findings if f.subject == "bed-0"] == [times[-1] + expected]

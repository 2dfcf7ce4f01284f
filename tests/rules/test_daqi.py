"""DAQI: table boundaries per pollutant, the averaging period of each, and band-change alerts with hysteresis."""

from __future__ import annotations

import pytest

from rules.daqi import POLLUTANTS, daqi_band, daqi_index
from tests.rules.factory import HOUR, MINUTE, air_reading, engine, local_ms, of, only_rules

# The table in DESIGN.md: (lowest value, highest value) of indexes 1..10 in whole µg/m³ (10 is open-ended).
# fmt: off
TABLE = {
    "no2_ugm3": [(0, 67), (68, 134), (135, 200), (201, 267), (268, 334), (335, 400), (401, 467), (468, 534),
                 (535, 600), (601, 2000)],
    "pm2_5_ugm3": [(0, 11), (12, 23), (24, 35), (36, 41), (42, 47), (48, 53), (54, 58), (59, 64), (65, 70),
                   (71, 1000)],
    "pm10_ugm3": [(0, 16), (17, 33), (34, 50), (51, 58), (59, 66), (67, 75), (76, 83), (84, 91), (92, 100),
                  (101, 1000)],
    "o3_ugm3": [(0, 33), (34, 66), (67, 100), (101, 120), (121, 140), (141, 160), (161, 187), (188, 213),
                (214, 240), (241, 1000)],
}
# fmt: on
BOUNDARIES = [
    (metric, value, index)
    for metric, rows in TABLE.items()
    for index, (low, high) in enumerate(rows, start=1)
    for value in (low, high)
]
START = local_ms(5, 0)


@pytest.mark.parametrize(("metric", "value", "index"), BOUNDARIES)
def test_index_of_every_boundary_value_matches_the_table(metric: str, value: int, index: int) -> None:
    assert daqi_index(metric, value) == index


@pytest.mark.parametrize("metric", list(TABLE))
def test_non_integer_means_round_to_the_nearest_whole_microgram(metric: str) -> None:
    for index, (_, high) in enumerate(TABLE[metric][:-1], start=1):
        assert daqi_index(metric, high + 0.49) == index
        assert daqi_index(metric, high + 0.5) == index + 1


def test_bands() -> None:
    assert [daqi_band(i) for i in range(1, 11)] == ["Low"] * 3 + ["Moderate"] * 3 + ["High"] * 3 + ["Very High"]


def _feed(eng_values: dict[str, list[tuple[int, float]]], minutes_step: int = 10) -> dict[str, int]:
    """Run an engine over (hours from start, value) segments per metric; return the per-pollutant index."""
    eng = engine(only_rules({"daqi"}))
    end = max(sum(h for h, _ in segments) for segments in eng_values.values())
    schedule: dict[str, list[float]] = {}
    for metric, segments in eng_values.items():
        series: list[float] = []
        for hours, value in segments:
            series += [value] * (hours * 60 // minutes_step)
        schedule[metric] = series
    for step in range(end * 60 // minutes_step):
        metrics = {m: s[step] for m, s in schedule.items() if step < len(s)}
        eng.process(air_reading(0, START + step * minutes_step * MINUTE, **metrics))
    [site] = eng.air_quality()
    return {p.metric: p.index for p in site.pollutants if p.complete}


@pytest.mark.parametrize(("metric", "value", "index"), BOUNDARIES)
def test_site_index_from_running_means_matches_the_table(metric: str, value: int, index: int) -> None:
    hours = POLLUTANTS[metric][1]
    assert _feed({metric: [(hours, float(value))]}, minutes_step=30 if hours > 1 else 10) == {metric: index}


def test_no2_uses_the_one_hour_mean() -> None:
    # Three hours of 300 then one hour of 30: only the last hour counts.
    assert _feed({"no2_ugm3": [(3, 300.0), (1, 30.0)]})["no2_ugm3"] == 1
    assert _feed({"no2_ugm3": [(3, 30.0), (1, 300.0)]})["no2_ugm3"] == 5


def test_particulates_use_the_running_24_hour_mean() -> None:
    # 23 h at 20 and 1 h at 100: the 24-hour mean is 23.3 -> 23 -> index 2 (a 1-hour mean would say 10).
    result = _feed({"pm2_5_ugm3": [(23, 20.0), (1, 100.0)], "pm10_ugm3": [(23, 20.0), (1, 100.0)]})
    assert result == {"pm2_5_ugm3": 2, "pm10_ugm3": 2}
    # A spike more than 24 h ago has left the window.
    assert _feed({"pm2_5_ugm3": [(6, 200.0), (24, 10.0)]})["pm2_5_ugm3"] == 1


def test_ozone_uses_the_8_hour_running_mean() -> None:
    assert _feed({"o3_ugm3": [(16, 20.0), (8, 150.0)]})["o3_ugm3"] == 6
    # 4 h of 150 inside the last 8 h with 4 h of 20: mean 85 -> index 3.
    assert _feed({"o3_ugm3": [(12, 20.0), (4, 150.0), (4, 20.0)]})["o3_ugm3"] == 3


def test_too_little_data_is_not_banded() -> None:
    eng = engine(only_rules({"daqi"}))
    for step in range(6):  # one hour of PM2.5: far from the 24-hour mean's coverage
        assert eng.process(air_reading(0, START + step * 10 * MINUTE, pm2_5_ugm3=90.0)) == []
    [site] = eng.air_quality()
    assert site.index is None and site.pollutants[0].complete is False


def test_alert_rises_with_health_message_and_resolves_after_an_hour_of_low() -> None:
    eng = engine(only_rules({"daqi"}))
    findings = []
    ts = START
    for value, minutes in ((100.0, 120), (300.0, 120), (450.0, 120), (50.0, 180)):
        for _ in range(minutes // 5):
            findings += eng.process(air_reading(0, ts, no2_ugm3=value))
            ts += 5 * MINUTE
    daqi = of(findings, "daqi")
    assert [(f.active, f.evidence["band"], f.severity) for f in daqi] == [
        (True, "Moderate", "info"),
        (True, "High", "warning"),
        (True, "Moderate", "info"),  # easing back updates the alert's wording; the alert keeps its severity
        (False, "Low", "info"),
    ]
    assert "moderate" in daqi[0].message and "NO2 1-hour mean" in daqi[0].message
    assert "heart or lung" in daqi[1].message
    moderate_at = START + 120 * MINUTE
    # The 1-hour mean passes 267 once more than ~one third of the hour is at 300: within the first 30 minutes.
    assert moderate_at < daqi[0].at_ms <= moderate_at + 30 * MINUTE
    low_at = START + 360 * MINUTE
    assert low_at + 60 * MINUTE <= daqi[3].at_ms <= low_at + 2 * HOUR


def test_a_mean_hovering_at_the_moderate_boundary_does_not_flap() -> None:
    eng = engine(only_rules({"daqi"}))
    findings = []
    ts = START
    for step in range(12 * 12):  # 12 h of readings every 5 min alternating just below / above 200.5
        findings += eng.process(air_reading(0, ts, no2_ugm3=180.0 if (step // 6) % 2 else 222.0))
        ts += 5 * MINUTE
    assert len(of(findings, "daqi")) == 1


def test_a_running_mean_drops_readings_once_they_are_a_whole_window_old() -> None:
    from rules.daqi import _RunningMean

    running = _RunningMean(window_ms=HOUR)
    running.add(0, 10.0)
    running.add(30 * MINUTE, 20.0)
    assert (len(running), running.mean(), running.span_ms()) == (2, 15.0, 30 * MINUTE)
    running.add(HOUR, 60.0)  # the reading at 0 is exactly one window old: out
    assert (len(running), running.mean(), running.span_ms()) == (2, 40.0, 30 * MINUTE)
    running.add(3 * HOUR, 7.0)  # a gap longer than the window leaves only the new reading
    assert (len(running), running.mean(), running.span_ms()) == (1, 7.0, 0)


def test_a_running_mean_matches_a_plain_window_over_many_wrap_arounds() -> None:
    from collections import deque

    from rules.daqi import _RunningMean

    running = _RunningMean(window_ms=HOUR)
    window: deque[tuple[int, float]] = deque()
    ts = 0
    for i in range(2000):
        ts += (i * 7) % 23 * MINUTE // 4  # uneven gaps, some of them zero
        value = float((i * 37) % 101)
        running.add(ts, value)
        window.append((ts, value))
        while window[0][0] <= ts - HOUR:
            window.popleft()
        assert len(running) == len(window)
        assert running.mean() == pytest.approx(sum(v for _, v in window) / len(window))
        assert running.span_ms() == window[-1][0] - window[0][0]
    # the readings that left the window do not pile up in memory
    assert len(running._times) <= 2 * len(window) + 1

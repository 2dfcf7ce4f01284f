"""The street targets on real public data (tests/data), replayed through exactly what serve's evaluation runs.

SIMPaCT's 13 park probes (hourly, irrigated, two months) for the watering forecast, sensor faults and the alert
budget; openair's Marylebone Road 2003 (hourly means) for the DAQI against DEFRA's method; SKAB and Microsoft's
cloud monitoring series for the NAB-style score of ``placesense detect``. Counts are asserted, never timings. The
figures are in docs/anomaly.md.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import pytest

from placesense.tools.evaluate.air import evaluate_air
from placesense.tools.evaluate.cli import configure, run
from placesense.tools.evaluate.detect import evaluate_detect
from placesense.tools.evaluate.nab_score import scaled_sigmoid, score_series, windows_from_labels
from placesense.tools.evaluate.street import evaluate_soil, evaluate_transplanted

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def soil() -> dict[str, Any]:
    return evaluate_soil(DATA / "simpact_soil")


def test_watering_announcements_come_true_and_stand(soil: dict[str, Any]) -> None:
    water = soil["watering"]
    # At least 80 % of "needs water by about …" announcements are followed by the bed crossing within 24 h.
    assert water["announcements"] >= 20  # beds whose daily low falls toward their threshold are announced too
    assert water["announcements_true"] >= 0.8 * water["announcements"]
    assert water["morning_list_soon_true"] >= 0.8 * water["morning_list_soon"]
    # No flapping: an announcement stands until it comes true or the bed is wetted (one on SENS0028 hovered
    # at its threshold for a day past its time and crossed 5 h after the old rule had withdrawn it), and no bed
    # is announced more than a few times in two months.
    assert water["withdrawn_without_rise"] == 0
    assert water["most_announcements_one_bed"] <= 5


def test_watering_crossings_announced_ahead(soil: dict[str, Any]) -> None:
    water = soil["watering"]
    assert water["crossings"] == 27  # the probes' own drying cycles through their thresholds
    # Below the 80 % target on this set (see docs/anomaly.md: small waterings that drain back within hours,
    # and settled beds creeping through their threshold, are not forecastable 12 h ahead): what holds now.
    # 10 at the start of issue 17's round; 11 once announcements stand (SENS0028, 2022-12-30). The daily low
    # announces six more beds before they cross (24 listed within the hour, 22 before the round), hours ahead.
    assert water["announced_12h_ahead"] >= 11
    assert water["announced_6h_ahead"] >= 13
    assert water["listed_within_1h_of_crossing"] >= 24
    # Four crossings came less than 12 h after the probe was a point above its threshold: no listing can span
    # a wetting (it clears it). Two are listed anyway, dry beds whose small watering never cleared them.
    assert (water["crossings_within_12h_of_a_wetting"], water["of_those_listed_12h_ahead"]) == (4, 2)
    assert water["of_those_announced_12h_ahead"] >= 9  # of the 22 crossings after a day of drying
    assert water["listed_within_1h_of_crossing"] >= 0.8 * water["crossings"]


def test_the_drying_forecast_cannot_time_most_crossings_within_a_factor_of_two(soil: dict[str, Any]) -> None:
    # Why the 12 h lead is below target on this set: at the hours 6-48 h before a crossing (with a day of
    # drying behind them), the rule's forecast is off by more than the factor of two a 12-24 h window allows.
    ahead = soil["forecastability"]
    assert ahead["hours_judged"] == 1253 and ahead["hours_with_a_forecast"] == 951
    p10, p50, p90 = ahead["actual_over_forecast_p10_p50_p90"]
    assert p10 < 0.5 and 0.8 < p50 < 1.3 and p90 > 3.0
    assert ahead["within_a_factor_1_5"] < 0.4 * ahead["hours_with_a_forecast"]
    assert ahead["of_those_crossed_12_24h_later"] < 0.4 * ahead["forecast_12_24h"]


def test_fault_alerts_are_few_and_one_per_episode(soil: dict[str, Any]) -> None:
    faults = soil["faults"]
    probe_months = soil["probes"] * soil["days"] / 30
    assert faults["fault_alerts_opened"] <= 0.5 * probe_months
    assert soil["alert_changes_per_day_per_30_beds"] <= 10


def test_transplanted_failures_are_caught() -> None:
    result = evaluate_transplanted(DATA / "simpact_soil")
    assert result["caught"] == result["failed_probes"] == 5
    assert result["false_per_healthy_probe_month"] <= 0.5


def test_daqi_from_an_hourly_station_matches_defra_hour_by_hour() -> None:
    air = evaluate_air(DATA / "openair_marylebone")
    assert air["hours"] == 8760
    # Only the very first hour differs: one hourly mean does not yet show the station's interval.
    assert air["hours_site_index_disagrees"] <= 1
    assert air["hours_band_shown_without_valid_mean"] == {}  # a stopped pollutant is never a current band
    assert air["defra_moderate_or_worse_hours"] > 1000 and air["daqi_alerts_opened"] > 0
    assert air["offline_alert_changes"] <= 6  # real outages of 4 h or more, never the hour between two means


def test_daqi_with_a_declared_interval_matches_from_the_first_hour() -> None:
    air = evaluate_air(DATA / "openair_marylebone", {"reporting": {"interval_minutes": 60}})
    assert air["hours_site_index_disagrees"] == 0


def test_detect_scores_nab_style_above_75_on_skab() -> None:
    result = evaluate_detect(DATA / "skab")
    ours, gaussian = result["placesense_detect"], result["windowed_gaussian_best_threshold"]
    assert result["series"] == 35 and ours["windows"] == 33  # other-2's fault begins in the probation period
    assert ours["nab_standard"] >= 80.0
    assert ours["detected"] >= 30
    assert result["null"]["nab_standard"] == 0.0 and gaussian["nab_standard"] > 0


def test_detect_beats_the_windowed_gaussian_on_ms_cloud_monitoring() -> None:
    result = evaluate_detect(DATA / "ms_cloud_monitoring")
    ours, gaussian = result["placesense_detect"], result["windowed_gaussian_best_threshold"]
    assert result["series"] == 59
    assert ours["nab_standard"] >= 50.0
    assert ours["nab_standard"] > gaussian["nab_standard"]  # even at the Gaussian's best threshold


def test_evaluate_reports_each_detect_set_apart(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    configure(parser)
    args = parser.parse_args(["--detect", str(DATA / "skab"), "--detect", str(DATA / "ms_cloud_monitoring")])
    assert run(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines if line.startswith("detect on")] == [
        "detect on skab", "detect on ms_cloud_monitoring",
    ]
    report = json.loads(lines[-1])["detect"]
    assert set(report) == {"skab", "ms_cloud_monitoring"}
    for name in report:
        assert report[name]["windowed_gaussian_best_threshold"]["nab_standard"] > 0


def test_point_labels_get_nab_windows_and_long_runs_keep_theirs() -> None:
    labels = [0] * 1000
    labels[600:603] = [1, 1, 1]  # a short run is one anomaly: NAB's window, centred on it
    labels[800] = 1
    assert windows_from_labels(labels) == [(576, 626), (775, 825)]  # 10 % of 1000 shared by two anomalies
    long_run = [0] * 1000
    long_run[300:700] = [1] * 400  # longer than its share: its own window
    assert windows_from_labels(long_run) == [(300, 699)]
    late = [0] * 1000
    late[790] = 1  # a detection a little early, before the first labelled point, counts
    assert score_series(late, labels).detected == 1


def test_an_anomaly_that_begins_in_probation_is_not_judged() -> None:
    labels = [0] * 1000
    labels[140] = 1  # probation is the first 150 points; the window (90-190) reaches past it
    result = score_series([0] * 1000, labels)
    assert result.windows == 0 and result.score == 0.0
    flagged = [0] * 1000
    flagged[170] = 1  # inside the unjudged window: neither caught nor false
    assert score_series(flagged, labels).false_positives == 0


def test_nab_scoring_follows_the_published_rules() -> None:
    assert scaled_sigmoid(-1.0) == pytest.approx(2 / (1 + math.exp(-5)) - 1)
    assert scaled_sigmoid(0.0) == 0.0 and scaled_sigmoid(5.0) == -1.0
    labels = [0] * 1000
    labels[600] = 1
    assert windows_from_labels(labels) == [(550, 650)]  # 10 % of the series, centred on the label
    early = [0] * 1000
    early[550] = 1
    perfect = score_series(early, labels)
    assert perfect.score == pytest.approx(perfect.perfect_score)
    missed = score_series([0] * 1000, labels)
    assert missed.score == missed.null_score == -1.0
    false_alarm = [0] * 1000
    false_alarm[300] = 1  # after probation (150), before any window: the full false-positive weight
    assert score_series(false_alarm, labels).score == pytest.approx(-1.0 - 0.11)
    in_probation = [0] * 1000
    in_probation[100] = 1
    assert score_series(in_probation, labels).score == pytest.approx(-1.0)

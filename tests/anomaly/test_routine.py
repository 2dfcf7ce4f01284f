"""Routine-change detection on simulated homes: each injected change is found and explained, a normal month
stays quiet after warm-up, and a restart keeps what was learned."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from anomaly.homeday import HomeDay, HomeTracker
from anomaly.routine import RoutineDetector
from placesense import evaluation_state
from placesense.basics.clock import EventClock
from placesense.basics.timeunits import DAY_MS, HOUR_MS
from placesense.tools.evaluate.simulated import START_MS
from tests.anomaly.conftest import RoutineRun, feed, readings

RULES = {
    "late_wakeup": "routine_late_wakeup",
    "night_wandering": "routine_night_wandering",
    "no_movement": "routine_no_movement",
    "cold_home": "routine_cold_home",
    "reduced_kitchen_use": "routine_reduced_kitchen_use",
    "more_bathroom_visits": "routine_more_bathroom_visits",
}


def test_a_normal_month_raises_no_routine_finding_after_warm_up(normal_month: RoutineRun) -> None:
    raised = [f for f in normal_month.findings if f.active]
    # 3 homes × 30 days after warm-up: allow at most one false alert in all of it
    assert len(raised) <= 1, [f.message for f in raised]
    for home in normal_month.registry.homes:
        status = normal_month.detector.warm_up(home)
        assert status["ready"] and status["days_needed"] == 14 and status["days_learned"] >= 40


def test_no_finding_during_warm_up() -> None:
    run_findings = [f for f in _short_run().findings if f.active]
    assert run_findings == []


def _short_run() -> RoutineRun:
    from tests.anomaly.conftest import run_homes

    return run_homes(days=10, anomalies=["late_wakeup@5", "no_movement@6"], seed=3, homes=2)


@pytest.mark.parametrize("kind", sorted(RULES))
def test_each_injected_change_is_detected_and_explained(changed_homes: RoutineRun, kind: str) -> None:
    injection = next(i for i in changed_homes.truth if i.type == kind)
    hits = [
        f for f in changed_homes.findings
        if f.active and f.subject == injection.subject and f.rule == RULES[kind]
        and injection.start_ms - HOUR_MS <= f.at_ms <= injection.end_ms + DAY_MS
    ]
    assert hits, f"{kind} on {injection.subject} not detected"
    finding = hits[0]
    assert finding.audience == "care"
    assert re.search(r"\d", finding.message) and "usually" in finding.message
    assert finding.evidence
    if kind == "no_movement":
        assert finding.at_ms - injection.start_ms <= HOUR_MS
    if kind == "late_wakeup":
        assert re.match(r"Not up yet at \d\d:\d\d; usually up \d\d:\d\d–\d\d:\d\d over the last "
                        r"\d+ (days|weekdays|weekend days)\.", finding.message)


def test_routine_today_compares_with_the_baseline(normal_month: RoutineRun) -> None:
    home = sorted(normal_month.registry.homes)[0]
    today = normal_month.detector.routine_today(home)
    assert today["warm_up"]["ready"] is True
    features = {f["feature"]: f for f in today["features"]}
    assert "wake_min" in features and "usual_low" in features["wake_min"]
    assert "over the last" in features["wake_min"]["text"]
    assert len(today["hour_activity"]) == 24
    # The last weeks' getting-up times, each closed day's, oldest first, inside the usual range most days.
    history = today["wake_history"]
    learned = today["warm_up"]["days_learned"]
    assert len(history) == min(learned, 28) and [d["wake_ms"] for d in history] == sorted(d["wake_ms"] for d in history)
    usual = today["usual_wake"]["weekday"]
    assert usual["low"] <= usual["median"] <= usual["high"]
    inside = [d for d in history if not d["weekend"] and usual["low"] <= d["wake_min"] <= usual["high"]]
    assert len(inside) >= len([d for d in history if not d["weekend"]]) // 2
    assert normal_month.detector.routine_today("h-unknown")["warm_up"]["days_learned"] == 0


def _saved_and_restored(
    run: RoutineRun, tmp_path: Path, edit: Callable[[Any], None] = lambda _: None
) -> RoutineDetector:
    """The detector's state through the state file and back into a new detector, as a restart does it."""
    evaluation_state.save(tmp_path, {"routine": run.detector.state()}, applied_seq=1, clock_ms=run.clock.now_ms())
    body = orjson.loads((tmp_path / evaluation_state.STATE_FILE).read_bytes())
    edit(body)
    (tmp_path / evaluation_state.STATE_FILE).write_bytes(orjson.dumps(body))
    saved = evaluation_state.load(tmp_path)
    assert not saved.problems
    restarted = RoutineDetector(run.registry, EventClock(run.clock.now_ms()))
    restarted.restore(saved.parts["routine"])
    return restarted


def test_save_and_restore_keep_the_learned_baselines(tmp_path: Path, normal_month: RoutineRun) -> None:
    detector = normal_month.detector
    restarted = _saved_and_restored(normal_month, tmp_path)
    for home in normal_month.registry.homes:
        assert restarted.warm_up(home) == detector.warm_up(home)
        assert restarted.routine_today(home)["features"] == detector.routine_today(home)["features"]
        assert restarted.routine_today(home)["wake_history"] == detector.routine_today(home)["wake_history"]
    # and it carries on: a late morning right after the restart is caught without a new warm-up
    start = normal_month.end_ms
    stream = readings(normal_month.registry, start, start + 2 * DAY_MS, 7, ["late_wakeup@1"])
    found = feed(restarted, restarted.clock, stream, start)  # type: ignore[arg-type]
    assert any(f.rule == "routine_late_wakeup" and f.active for f in found)


def test_non_home_readings_are_ignored(normal_month: RoutineRun) -> None:
    from devices.readings import Reading

    reading = Reading(domain="soil", device_id="x", subject="bed-1", room=None, ts_ms=START_MS, metrics={})
    assert normal_month.detector.process(reading) == []


def test_more_bathroom_visits_over_several_days_is_reported_as_such(infection_home: RoutineRun) -> None:
    injection = next(i for i in infection_home.truth if i.type == "more_bathroom_visits")
    raised = [f for f in infection_home.findings if f.active and f.rule == "routine_more_bathroom_visits"]
    assert {f.subject for f in raised} == {injection.subject}
    sustained = [
        f for f in raised
        if injection.start_ms <= f.at_ms <= injection.end_ms + DAY_MS and "than usual for" in f.message
    ]
    assert sustained, "no several-day bathroom finding inside the injected window"
    assert re.match(r"More bathroom visits than usual for [2-7] days: (\d+, )*\d+ and \d+ a day, by day and at "
                    r"night together \(yesterday \d+ by day and \d+ at night\); usually about \d+ a day "
                    r"\(\d+–\d+ by day and \d+–\d+ at night\) over the last \d+ (days|weekdays|weekend days)\. "
                    r"More visits can be an early sign of an infection\.", sustained[0].message)
    evidence = sustained[0].evidence
    assert evidence["cusum"] >= 4.5  # type: ignore[operator]
    per_day = [int(n) for n in str(evidence["visits_per_day"]).split()]
    assert len(per_day) == evidence["days"] and sum(per_day) > evidence["days"] * evidence["usual_per_day"]  # type: ignore[operator]


def test_a_gradual_decline_is_reported_against_weeks_earlier_and_explained(declining_home: RoutineRun) -> None:
    injection = next(i for i in declining_home.truth if i.type == "gradual_decline")
    declines = [f for f in declining_home.findings if f.active and f.rule == "routine_gradual_decline"]
    assert declines, "gradual decline not reported"
    assert {f.subject for f in declines} == {injection.subject}  # the two homes living as usual: nothing
    first = declines[0]
    assert injection.start_ms < first.at_ms <= injection.start_ms + 9 * DAY_MS
    assert re.match(r"Gradual change over the last \d+ days, compared with 3–\d weeks earlier: ", first.message)
    assert "early sign of declining health" in first.message
    # what moved, in words and numbers: later getting up, fewer movements or less kitchen use
    assert re.search(r"got up at \d\d:\d\d on average, \d+ min later than usual \(\d\d:\d\d\)", first.message)
    assert re.search(r"(movements detected|kitchen visits, kettle boils and fridge openings): \d+ a day on "
                     r"average, \d+ % fewer than usual \(\d+\)", first.message)
    evidence = first.evidence
    assert evidence["wake_min"] > evidence["wake_min_usual"]  # type: ignore[operator]
    assert evidence["cusum"] >= 2.0  # type: ignore[operator]


def test_a_state_file_from_before_the_decline_watch_still_loads(tmp_path: Path, normal_month: RoutineRun) -> None:
    def drop_new_fields(body: Any) -> None:
        for model in body["parts"]["routine"]["state"]["homes"].values():
            for name in ("decline", "bathroom_cusum", "bathroom_quiet_days", "bathroom_run", "wake_days"):
                del model["v"][name]

    restarted = _saved_and_restored(normal_month, tmp_path, drop_new_fields)
    for home in normal_month.registry.homes:
        model = restarted._homes[home]
        assert model.decline.cusum == 0.0 and model.bathroom_cusum == 0.0
        assert restarted.routine_today(home)["features"] == normal_month.detector.routine_today(home)["features"]
        assert restarted.routine_today(home)["wake_history"] == []  # a file from before it was kept


def test_night_activity_counts_walking_about_not_a_device_reporting_again() -> None:
    """A chair mat flickering all night under a restless sleeper (or a cat), or a cupboard's opening and then its
    closing, is one thing used; each new detection by a PIR, and each different cupboard, is activity."""
    tracker = HomeTracker(timezone="Europe/London")
    tracker.start_day(START_MS)
    tracker.go_to_bed(START_MS + 15 * HOUR_MS)
    day = tracker.day
    assert day is not None
    for _ in range(9):
        tracker.night_use("chair-living", "living_room", motion=False)
    tracker.night_use("cupboard-1", "kitchen", motion=False)
    tracker.night_use("cupboard-1", "kitchen", motion=False)  # its closing
    assert day.night_activity == 2
    for device in ("cupboard-2", "fridge", "microwave"):
        tracker.night_use(device, "kitchen", motion=False)
    for _ in range(3):
        tracker.night_use("pir-kitchen", "kitchen", motion=True)
    tracker.night_use("pir-bathroom", "bathroom", motion=True)  # a trip to the toilet is not wandering
    assert day.night_activity == 8
    assert day.night_rooms == {"living_room", "kitchen"}


def _learned_home(run: RoutineRun, tmp_path: Path) -> tuple[RoutineDetector, str, Any]:
    """A copy of a detector that has learned a month (the copy may be changed freely) and one of its homes."""
    detector = _saved_and_restored(run, tmp_path)
    home = sorted(run.registry.homes)[0]
    return detector, home, detector._homes[home]


def test_a_busier_day_than_usual_is_no_routine_change_and_a_quieter_one_is(
    normal_month: RoutineRun, tmp_path: Path
) -> None:
    """More kitchen use and more movement is a good day (or visitors), and an early night alone an ordinary
    evening; fewer movements with a late morning is what worries."""
    detector, home, model = _learned_home(normal_month, tmp_path)
    usual = {name: model.usual(name, False) for name in ("wake_min", "motion_count", "kitchen_visits", "out_min")}
    ordinary = {name: u.median for name, u in usual.items() if u is not None}
    day = HomeDay(wake_ms=normal_month.end_ms, wake_min=ordinary["wake_min"], weekend=False)
    assert usual["motion_count"] is not None and usual["kitchen_visits"] is not None
    busier = {**ordinary, "motion_count": usual["motion_count"].highest * 2,
              "kitchen_visits": usual["kitchen_visits"].highest * 3}
    findings, flagged = detector._daily.check(home, model, day, busier, normal_month.end_ms)
    assert (findings, flagged) == ([], set())
    # An early night alone, three hours before her earliest, is an ordinary evening: not news on its own.
    bedtime = model.usual("bedtime_min", False)
    assert bedtime is not None
    early_night = {**ordinary, "bedtime_min": bedtime.lowest - 180}
    findings, flagged = detector._daily.check(home, model, day, early_night, normal_month.end_ms)
    assert (findings, flagged) == ([], {"bedtime_min"})
    # The same size of move the other way, with a late morning: a routine change.
    assert usual["wake_min"] is not None
    quieter = {**ordinary, "motion_count": 0.0, "wake_min": usual["wake_min"].highest + 90}
    findings, flagged = detector._daily.check(home, model, day, quieter, normal_month.end_ms)
    assert [f.rule for f in findings] == ["routine_change"] and flagged == {"motion_count", "wake_min"}


def test_bathroom_visits_are_judged_against_how_busy_the_rest_of_the_house_is(
    normal_month: RoutineRun, tmp_path: Path
) -> None:
    """Twice her usual bathroom visits by mid-afternoon on an ordinary day is news; the same on a day she (or a
    visitor) is three times as busy everywhere else in the house is not."""
    detector, home, model = _learned_home(normal_month, tmp_path)
    bathroom, motion = model.usual("bathroom_day", False), model.usual("motion_count", False)
    assert bathroom is not None and motion is not None
    wake_ms = normal_month.end_ms + 7 * HOUR_MS
    now = wake_ms + 8 * HOUR_MS  # about half her waking day
    visits = int(bathroom.highest) + 6

    def findings(movements_elsewhere: float) -> list[str]:
        model.tracker.day = HomeDay(
            wake_ms=wake_ms, wake_min=420.0, weekend=False, bathroom_day=visits,
            motion_count=int(movements_elsewhere) + 3 * visits, bathroom_motion=3 * visits,
        )
        model.flagged_today.clear()
        return [f.rule for f in detector._bathroom.on_activity(home, model, now)]

    assert findings(motion.median / 2) == ["routine_more_bathroom_visits"]
    assert findings(motion.median * 1.5) == []

"""The home's presence (``rules.presence``): one meaning of "a change", "her last activity" and "out" for the care
rules and the routine detector alike, checked on its own and on real homes' recordings replayed through both."""

from __future__ import annotations

from pathlib import Path

import pytest

from anomaly.routine import RoutineDetector
from devices.readings import Reading
from devices.registry import DeviceSpec
from placesense.basics.clock import EventClock
from placesense.basics.timeunits import DAY_MS, HOUR_MS, MINUTE_MS
from placesense.tools.evaluate.inject import inject, looped
from placesense.tools.evaluate.realhomes import device_readings, load_home, registry_for
from rules.config import RulesConfig
from rules.engine import RuleEngine
from rules.presence import PIR_HOLD_MS, Presence

HOMES = Path(__file__).resolve().parents[1] / "data" / "homes"
T0 = 1_700_000_000_000


def _device(device_id: str, kind: str, room: str) -> DeviceSpec:
    return DeviceSpec(id=device_id, domain="home", kind=kind, subject="h1", room=room)


HALL = _device("pir-hall", "motion", "hallway")
LOUNGE = _device("pir-lounge", "motion", "living_room")
FRIDGE = _device("fridge", "fridge_door", "kitchen")
DOOR = _device("front", "front_door", "hallway")


def test_a_repeated_state_is_a_check_in_and_only_a_change_counts() -> None:
    presence = Presence()
    assert presence.change(FRIDGE, 1.0, T0) is not None  # opened
    assert presence.change(FRIDGE, 1.0, T0 + 60 * MINUTE_MS) is None  # the hourly check-in, still open
    closed = presence.change(FRIDGE, 0.0, T0 + 61 * MINUTE_MS)
    assert closed is not None and closed.what == "closed"


def test_a_pirs_no_motion_dates_her_movement_unless_stuck_or_she_left_meanwhile() -> None:
    presence = Presence()
    presence.change(LOUNGE, 1.0, T0)
    assert presence.moving_until(LOUNGE, T0 + 5 * MINUTE_MS) == T0 + 5 * MINUTE_MS - PIR_HOLD_MS
    presence.change(LOUNGE, 0.0, T0 + 5 * MINUTE_MS)
    presence.change(LOUNGE, 1.0, T0 + 10 * MINUTE_MS)
    assert presence.moving_until(LOUNGE, T0 + 50 * MINUTE_MS) is None  # "on" for 40 min: stuck
    presence.change(HALL, 1.0, T0 + 60 * MINUTE_MS)
    presence.active(T0 + 60 * MINUTE_MS)
    presence.front_door(T0 + 61 * MINUTE_MS)
    assert presence.moving_until(HALL, T0 + 62 * MINUTE_MS) is None  # the hall saw her leave


def test_front_door_then_nothing_is_out_and_one_device_alone_does_not_bring_her_back() -> None:
    presence = Presence()
    presence.active(T0)
    presence.front_door(T0)
    assert not presence.is_out(T0 + MINUTE_MS)  # she may still be in the hall
    assert presence.is_out(T0 + 3 * MINUTE_MS)
    assert not presence.believe(LOUNGE, T0 + 30 * MINUTE_MS)  # the sun on a PIR
    assert presence.out_since_ms == T0
    assert not presence.believe(LOUNGE, T0 + 35 * MINUTE_MS)  # the same PIR again is still one device
    assert presence.believe(FRIDGE, T0 + 40 * MINUTE_MS)  # a second device agrees: she is in
    assert presence.back_home() == T0
    presence.active(T0 + 40 * MINUTE_MS)
    assert not presence.is_out(T0 + 41 * MINUTE_MS)


def test_activity_soon_after_the_door_means_she_stayed_in() -> None:
    presence = Presence()
    presence.front_door(T0)
    presence.active(T0)
    presence.active(T0 + 90_000)  # the lounge a minute and a half after the door: a visitor came, she stayed
    assert not presence.is_out(T0 + 30 * MINUTE_MS)


def test_observing_out_and_back_through_the_front_door_says_since_when_she_was_out() -> None:
    """``observe`` reads a reading once and says what it was: her coming home through the door carries since when
    she was out (the routine detector once lost that time: it never asked whether the door was hers)."""
    presence = Presence()
    assert presence.observe(LOUNGE, 1.0, T0) is not None
    assert presence.observe(LOUNGE, 1.0, T0 + 30_000) is None  # a check-in
    presence.observe(DOOR, 1.0, T0 + MINUTE_MS)  # opened, going out
    presence.observe(DOOR, 0.0, T0 + MINUTE_MS + 5_000)  # closed behind her
    lone = presence.observe(LOUNGE, 0.0, T0 + 20 * MINUTE_MS)  # the PIR's "no motion" after she left: says nothing
    assert lone is not None and not lone.hers
    sun = presence.observe(LOUNGE, 1.0, T0 + HOUR_MS)  # one device alone while she is out
    assert sun is not None and not sun.hers and not sun.came_home
    back = presence.observe(DOOR, 1.0, T0 + 3 * HOUR_MS)
    assert back is not None and back.hers and back.came_home
    assert back.out_since_ms == T0 + MINUTE_MS + 5_000 and back.before_ms == T0 + MINUTE_MS + 5_000
    assert presence.last_activity_ms == T0 + 3 * HOUR_MS and not presence.is_out(T0 + 3 * HOUR_MS + 30_000)


def test_an_older_saved_picture_keeps_what_it_knew_of_her_presence() -> None:
    from anomaly.homeday import HomeTracker
    from placesense import statecodec
    from rules.home.picture import HomePicture

    picture = statecodec.encode(HomePicture(tz=__import__("zoneinfo").ZoneInfo("Europe/London")))
    fields = picture["v"]
    del fields["presence"]
    fields.update(device_state={"fridge": 1.0}, last_activity_ms=T0, last_front_door_ms=T0 - 5, out_since_ms=None)
    restored = statecodec.decode(picture)
    assert restored.presence == Presence(device_state={"fridge": 1.0}, last_activity_ms=T0, last_front_door_ms=T0 - 5)

    tracker = statecodec.encode(HomeTracker(timezone="Europe/London"))
    del tracker["v"]["presence"]
    tracker["v"].update(last_door_ms=T0, last_activity_ms=T0 + 1, last_motion_ms=T0 + 1, motion_since={"p": T0})
    again = statecodec.decode(tracker)
    assert again.presence == Presence(motion_since={"p": T0}, last_activity_ms=T0 + 1, last_front_door_ms=T0)


@pytest.mark.parametrize("key", ["kasteren/house-b", "placelab/subject-2"])
def test_the_rules_and_the_routine_detector_see_one_presence_in_a_real_home(key: str) -> None:
    """Played through both, a real home's fortnight leaves the rules' picture and the detector's with the same
    devices' states, the same last activity, front door and time out, reading after reading."""
    home = load_home(HOMES / key, HOMES)
    background = looped(home)
    registry = registry_for([home])
    clock = EventClock(background.start_ms)
    rules = RuleEngine(registry, RulesConfig(), clock)
    detector = RoutineDetector(registry, clock)
    end = background.start_ms + 14 * DAY_MS
    compared = changes = 0
    for reading in device_readings(home, background.activations, background.start_ms, end):
        clock.observe(reading.ts_ms)
        rules.process(reading)
        detector.process(reading)
        ours = rules.home._homes[home.home_id].presence
        theirs = detector._homes[home.home_id].tracker.presence
        assert ours == theirs, _at(reading)
        compared += 1
        changes += ours.last_activity_ms == reading.ts_ms
    assert compared > 1000 and changes > 100  # a fortnight of her life, not a handful of check-ins


@pytest.mark.parametrize("key", ["kasteren/house-c", "placelab/subject-1"])
def test_serve_keeps_one_presence_per_home_and_the_detector_reads_it_as_if_alone(key: str, tmp_path: Path) -> None:
    """In the evaluation core the rules and the routine detector hold the very same presence object (also after a
    save and restore), the rules observe each reading once, and the detector, reading what they saw, learns the
    same days and raises the same findings (night wandering injected after its warm-up) as a detector that kept a
    presence of its own."""
    import logging

    from placesense.evaluation_core import EvaluationCore, EvaluationSpec

    home = load_home(HOMES / key, HOMES)
    background = looped(home)
    registry = registry_for([home])
    core = EvaluationCore(EvaluationSpec(registry, RulesConfig(), "event", tmp_path, logging.WARNING))
    alone = RoutineDetector(registry_for([home]), EventClock(background.start_ms))
    done = inject(background, "night_wandering")  # after the warm-up: the detector has something to raise
    assert done is not None
    activations, injected = done
    readings = list(device_readings(home, activations, background.start_ms, injected.end_ms + DAY_MS))
    half = len(readings) // 2
    shared: list[object] = []
    ours: list[tuple[str, int, bool, str]] = []
    theirs: list[tuple[str, int, bool, str]] = []
    for n, reading in enumerate(readings):
        if n == half:  # a restart halfway: the restored parts share one presence again
            assert core.save()
            core = EvaluationCore(EvaluationSpec(registry, RulesConfig(), "event", tmp_path, logging.WARNING))
            core.restore()
        raised = core.readings([reading])
        ours += [(f.rule, f.at_ms, f.active, f.message) for f in raised if f.rule.startswith("routine_")]
        alone.clock.observe(reading.ts_ms)
        theirs += [(f.rule, f.at_ms, f.active, f.message) for f in alone.process(reading)]
        if n % 500 == 0:
            presence = core.rules.home._homes[home.home_id].presence
            assert core.routine._homes[home.home_id].tracker.presence is presence, _at(reading)
            shared.append(presence)
    from placesense.statecodec import encode

    assert encode(core.routine._homes[home.home_id]) == encode(alone._homes[home.home_id])
    assert core.routine._homes[home.home_id].days_learned >= 14  # past the warm-up: its findings are judged
    assert ours == theirs
    assert any(rule == "routine_night_wandering" for rule, *_ in ours)
    assert len({id(p) for p in shared}) == 2  # one object before the restart, one after


def test_a_device_added_while_serve_runs_keeps_the_one_presence_and_what_it_knew(tmp_path: Path) -> None:
    """Registering a device rebuilds the rules and detectors around the grown registry: the rebuilt sides share one
    presence again, holding what was observed before, and the new device's first change is read into it."""
    import logging

    from placesense.evaluation_core import EvaluationCore, EvaluationSpec

    home = load_home(HOMES / "kasteren/house-b", HOMES)
    background = looped(home)
    registry = registry_for([home])
    core = EvaluationCore(EvaluationSpec(registry, RulesConfig(), "event", tmp_path, logging.WARNING))
    readings = list(device_readings(home, background.activations, background.start_ms, background.start_ms + DAY_MS))
    core.readings(readings)
    before = core.rules.home._homes[home.home_id].presence
    assert before.last_activity_ms is not None
    kept = (dict(before.device_state), before.last_activity_ms, before.last_front_door_ms)
    toaster = DeviceSpec(id="toaster-new", domain="home", kind="plug", subject=home.home_id, room="kitchen")
    assert core.add_devices([toaster]) == 1
    presence = core.rules.home._homes[home.home_id].presence
    assert core.routine._homes[home.home_id].tracker.presence is presence
    assert (presence.device_state, presence.last_activity_ms, presence.last_front_door_ms) == kept
    at = readings[-1].ts_ms + MINUTE_MS
    core.readings([Reading("home", "toaster-new", home.home_id, "kitchen", at, {"power_w": 900.0})])
    assert presence.device_state["toaster-new"] == 1.0
    # her activity, or (she is out that evening) one device alone, noted while she is out
    assert presence.last_activity_ms == at or presence.while_out["toaster-new"] == at


def _at(reading: Reading) -> str:
    return f"after {reading.device_id} at {reading.ts_ms}: {dict(reading.metrics)}"

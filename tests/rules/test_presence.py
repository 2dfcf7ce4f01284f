"""The home's presence (``rules.presence``): one meaning of "a change", "her last activity" and "out" for the care
rules and the routine detector alike, checked on its own and on real homes' recordings replayed through both."""

from __future__ import annotations

from pathlib import Path

import pytest

from anomaly.routine import RoutineDetector
from devices.readings import Reading
from devices.registry import DeviceSpec
from placesense.basics.clock import EventClock
from placesense.basics.timeunits import DAY_MS, MINUTE_MS
from placesense.tools.evaluate.inject import looped
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


def _at(reading: Reading) -> str:
    return f"after {reading.device_id} at {reading.ts_ms}: {dict(reading.metrics)}"

"""Zigbee2MQTT state messages of the kinds of device a home has, shaped like the bridge publishes them."""

from __future__ import annotations

from typing import Any

import pytest

from placesense.basics.errors import DecodeError
from tests.devices.support import NOW_MS, decode_on, home_device

MOTION = home_device("motion", room="hallway")


def test_aqara_motion_sensor_with_last_seen() -> None:
    state = {
        "battery": 97,
        "device_temperature": 27,
        "illuminance": 23,
        "illuminance_lux": 23,
        "linkquality": 87,
        "occupancy": True,
        "power_outage_count": 12,
        "voltage": 3015,
        "last_seen": "2024-05-01T09:59:58.412Z",
    }
    reading = decode_on("zigbee2mqtt/h1-motion", state, MOTION)
    assert reading.metrics == {"motion": 1.0, "link_quality": 87.0, "battery_v": 3.015}
    assert reading.battery_pct == 97
    assert reading.ts_ms == NOW_MS - 1588
    assert reading.source == "zigbee2mqtt"
    assert reading.room == "hallway"


def test_without_last_seen_the_receive_time_is_used() -> None:
    reading = decode_on("zigbee2mqtt/h1-motion", {"occupancy": False, "linkquality": 40}, MOTION)
    assert reading.ts_ms == NOW_MS
    assert reading.metrics["motion"] == 0.0


def test_last_seen_as_epoch_milliseconds_and_local_offset() -> None:
    epoch = decode_on("zigbee2mqtt/h1-motion", {"occupancy": True, "last_seen": NOW_MS - 5000}, MOTION)
    local = decode_on("zigbee2mqtt/h1-motion", {"occupancy": True, "last_seen": "2024-05-01T10:59:55+01:00"}, MOTION)
    assert epoch.ts_ms == local.ts_ms == NOW_MS - 5000


@pytest.mark.parametrize("contact, door_open", [(True, 0.0), (False, 1.0)])
def test_contact_true_means_the_door_is_closed(contact: bool, door_open: float) -> None:
    fridge = home_device("fridge_door")
    state = {"battery": 100, "contact": contact, "device_temperature": 22, "linkquality": 132, "voltage": 3045}
    assert decode_on("zigbee2mqtt/h1-fridge-door", state, fridge).metrics["door_open"] == door_open


@pytest.mark.parametrize("kind", ["bed", "chair"])
def test_occupancy_on_a_pressure_pad_is_occupied(kind: str) -> None:
    pad = home_device(kind, room="bedroom")
    reading = decode_on(f"zigbee2mqtt/h1-{kind}", {"occupancy": True, "battery": 88}, pad)
    assert reading.metrics == {"occupied": 1.0}


def test_smart_plug_mains_voltage_is_not_a_battery() -> None:
    kettle = home_device("kettle")
    state = {
        "child_lock": "UNLOCK",
        "current": 8.61,
        "energy": 152.33,
        "indicator_mode": "off/on",
        "linkquality": 180,
        "power": 1986,
        "power_outage_memory": "restore",
        "state": "ON",
        "update": {"installed_version": 192, "latest_version": 192, "state": "idle"},
        "voltage": 239,
    }
    reading = decode_on("zigbee2mqtt/h1-kettle", state, kettle)
    assert reading.metrics == {"power_w": 1986.0, "energy_kwh": 152.33, "link_quality": 180.0}
    assert reading.battery_pct is None


def test_climate_sensor() -> None:
    climate = home_device("climate", room="living_room")
    state = {
        "battery": 86,
        "humidity": 61.48,
        "linkquality": 94,
        "pressure": 1002.1,
        "temperature": 16.72,
        "voltage": 2985,
    }
    reading = decode_on("zigbee2mqtt/h1-climate", state, climate)
    assert reading.metrics == {"temperature_c": 16.72, "humidity_pct": 61.48, "link_quality": 94.0, "battery_v": 2.985}


@pytest.mark.parametrize("action", ["single", "double", "hold"])
def test_any_help_button_action_is_a_press(action: str) -> None:
    button = home_device("help_button", room="living_room")
    state = {"action": action, "battery": 100, "linkquality": 72, "voltage": 3042}
    assert decode_on("zigbee2mqtt/h1-help-button", state, button).metrics["help_pressed"] == 1.0


def test_empty_action_and_actions_of_other_devices_are_not_presses() -> None:
    button = home_device("help_button", room="living_room")
    assert "help_pressed" not in decode_on("zigbee2mqtt/h1-help-button", {"action": "", "battery": 99}, button).metrics
    reading = decode_on("zigbee2mqtt/h1-motion", {"action": "single", "occupancy": True}, MOTION)
    assert "help_pressed" not in reading.metrics


def test_nulls_are_not_yet_reported_values() -> None:
    state = {"occupancy": True, "battery": None, "voltage": None, "temperature": None, "last_seen": None}
    reading = decode_on("zigbee2mqtt/h1-motion", state, MOTION)
    assert reading.metrics == {"motion": 1.0}
    assert reading.battery_pct is None


@pytest.mark.parametrize(
    "state, kind, words",
    [
        ({"occupancy": "true"}, "wrong_type", "'occupancy' must be true or false"),
        ({"contact": 1}, "wrong_type", "'contact' must be true or false"),
        ({"temperature": "19.5"}, "wrong_type", "'temperature' must be a number"),
        ({"temperature": 412.0}, "out_of_range", "temperature_c"),
        ({"power": -5}, "out_of_range", "power_w"),
        ({"humidity": 1e300}, "out_of_range", "humidity_pct"),
        ({"battery": 140}, "out_of_range", "battery_pct"),
        ({"occupancy": True, "last_seen": "yesterday"}, "bad_timestamp", "last_seen"),
        ({"occupancy": True, "last_seen": "2024-05-01T10:00:00"}, "bad_timestamp", "no time zone"),
        ({"occupancy": True, "last_seen": NOW_MS + 3_600_000}, "future_timestamp", "in the future"),
        ({"occupancy": True, "last_seen": "2023-01-01T00:00:00Z"}, "past_timestamp", "days old"),
        ({"update": {"state": "idle"}, "power_on_behavior": "previous"}, "empty", "no metrics"),
    ],
)
def test_bad_states_are_refused_with_a_reason(state: dict[str, Any], kind: str, words: str) -> None:
    with pytest.raises(DecodeError) as err:
        decode_on("zigbee2mqtt/h1-motion", state, MOTION)
    assert err.value.kind == kind
    assert words in err.value.reason


@pytest.mark.parametrize(
    "state, refused",
    [
        ({"occupancy": "true", "battery": 90}, "motion"),
        ({"temperature": 412.0, "occupancy": True}, "temperature_c"),
        ({"battery": 140, "occupancy": True}, "battery_pct"),
        ({"humidity": "n/a", "occupancy": True}, "humidity_pct"),
    ],
)
def test_one_bad_value_is_refused_alone(state: dict[str, Any], refused: str) -> None:
    reading = decode_on("zigbee2mqtt/h1-motion", state, MOTION)
    assert [r.metric for r in reading.refused] == [refused]
    assert reading.metrics or reading.battery_pct is not None


def test_help_button_action_must_be_text() -> None:
    button = home_device("help_button", room="living_room")
    with pytest.raises(DecodeError, match="'action' must be text"):
        decode_on("zigbee2mqtt/h1-help-button", {"action": 1}, button)

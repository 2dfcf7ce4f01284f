"""Every encoder of the simulated firmware is undone by its decoder: same metrics, same millisecond."""

from __future__ import annotations

import pytest
from firmware_sim.encoders import (
    SimMeasurement,
    encode,
    encode_chirpstack,
    encode_chirpstack_status,
    encode_ttn,
    encode_zigbee2mqtt,
    sensor_community_body,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.registry import DeviceSpec
from devices.topics import TopicInfo, classify_topic
from tests.devices.support import LIMITS, NOW_MS, air_device, decode_on, home_device, soil_device

TS = NOW_MS - 61_234
SOIL = {"soil_moisture_pct": 27.83, "soil_temperature_c": -2.4, "soil_conductivity_us_cm": 412.0}


def _check(sent: SimMeasurement, reading_metrics: dict[str, float], ts_ms: int, ts_expected: int = TS) -> None:
    assert ts_ms == ts_expected
    for name, value in sent.metrics.items():
        assert reading_metrics[name] == pytest.approx(float(value), abs=0.051), name


HOME_CASES = [
    ("motion", {"motion": True, "link_quality": 87, "battery_v": 3.015}, 97.0),
    ("bed", {"occupied": False}, 64.0),
    ("front_door", {"door_open": True, "battery_v": 2.9}, 41.5),
    ("fridge_door", {"door_open": False}, None),
    ("kettle", {"power_w": 2950.5, "energy_kwh": 18.25, "link_quality": 160}, None),
    ("climate", {"temperature_c": 15.4, "humidity_pct": 58.2}, 77.0),
    ("help_button", {"help_pressed": True}, 100.0),
]


@pytest.mark.parametrize("kind, metrics, battery", HOME_CASES, ids=[c[0] for c in HOME_CASES])
@pytest.mark.parametrize("last_seen", ["ISO_8601", "epoch"])
def test_zigbee2mqtt_round_trip(kind: str, metrics: dict[str, float], battery: float | None, last_seen: str) -> None:
    spec = home_device(kind, source_id=f"Flat 3 {kind}".replace(" ", "_"))
    sent = SimMeasurement(ts_ms=TS, metrics=metrics, battery_pct=battery)
    topic, payload = encode_zigbee2mqtt(spec, sent, "", last_seen=last_seen)
    assert topic == f"zigbee2mqtt/Flat_3_{kind}"
    reading = decode_on(topic, payload, spec)
    # "occupancy: false" lands a millisecond after its last_seen, so that it never overwrites a detection
    cleared = metrics.get("occupied") is False or metrics.get("motion") is False
    _check(sent, dict(reading.metrics), reading.ts_ms, TS + 1 if cleared else TS)
    assert reading.battery_pct == battery


def test_zigbee2mqtt_without_last_seen_takes_receive_time() -> None:
    spec = home_device("motion")
    topic, payload = encode_zigbee2mqtt(spec, SimMeasurement(ts_ms=TS, metrics={"motion": True}), "", last_seen=None)
    assert decode_on(topic, payload, spec).ts_ms == NOW_MS


def test_zigbee2mqtt_refuses_metrics_it_has_no_key_for() -> None:
    with pytest.raises(ValueError, match="pm10_ugm3"):
        encode_zigbee2mqtt(home_device("motion"), SimMeasurement(ts_ms=TS, metrics={"pm10_ugm3": 3}))


LORAWAN = [
    ("ttn", "dragino-lse01", None),
    ("ttn", "dragino-lse01", True),
    ("ttn", "dragino-se01-lb", None),
    ("ttn", "dragino-se01-lb", True),
    ("ttn", "milesight-em500-smtc", None),
    ("ttn", "milesight-em500-smtc", True),
    ("ttn", None, None),
    ("chirpstack", "dragino-se01-lb", None),
    ("chirpstack", "dragino-se01-lb", True),
    ("chirpstack", "milesight-em500-smtc", None),
    ("chirpstack", "milesight-em500-smtc", True),
    ("chirpstack", None, None),
]


@pytest.mark.parametrize("fmt, model, decoded", LORAWAN)
def test_lorawan_round_trip(fmt: str, model: str | None, decoded: bool | None) -> None:
    source = "A84041C3A1B2C3D4" if fmt == "chirpstack" else "wrexham-bed-07"
    spec = soil_device(fmt, model, source_id=source)
    sent = SimMeasurement(ts_ms=TS, metrics={**SOIL, "rssi_dbm": -101, "snr_db": -4.5}, battery_pct=81.0, seq=90_001)
    encoder = encode_ttn if fmt == "ttn" else encode_chirpstack
    topic, payload = encoder(spec, sent, "site-a/", decoded=decoded)
    info = classify_topic(topic, "site-a/")
    assert info is not None and info.source_id == spec.source_key
    reading = decode_on(topic.removeprefix("site-a/"), payload, spec)
    _check(sent, dict(reading.metrics), reading.ts_ms)
    assert reading.battery_pct == pytest.approx(81.0, abs=0.5)
    assert reading.seq == 90_001


def test_ttn_received_at_has_nanoseconds_like_the_real_server() -> None:
    topic, payload = encode_ttn(
        soil_device("ttn", "dragino-lse01"), SimMeasurement(ts_ms=TS, metrics=SOIL, battery_pct=50)
    )
    assert topic == "v3/placesense-soil@ttn/devices/bed-07/up"
    assert b'"received_at":"2024-05-01T09:58:58.766' in payload
    received_at = payload.split(b'"received_at":"')[1].split(b'"')[0]
    assert len(received_at.split(b".")[1]) == len("123456789Z")


def test_generic_encode_dispatches_on_the_registry_format() -> None:
    spec = soil_device("chirpstack", "milesight-em500-smtc", source_id="24E124126B212345")
    topic, _ = encode(spec, SimMeasurement(ts_ms=TS, metrics=SOIL, battery_pct=60))
    assert topic.endswith("/device/24e124126b212345/event/up")


def test_chirpstack_status_round_trip() -> None:
    spec = soil_device("chirpstack", "dragino-se01-lb", source_id="a84041c3a1b2c3d4")
    topic, payload = encode_chirpstack_status(spec, SimMeasurement(ts_ms=TS, metrics={}, battery_pct=63.37))
    reading = decode_on(topic, payload, spec)
    assert reading.battery_pct == 63.37
    assert reading.ts_ms == TS
    with pytest.raises(ValueError, match="battery_pct"):
        encode_chirpstack_status(spec, SimMeasurement(ts_ms=TS, metrics={}))


def test_sensor_community_round_trip() -> None:
    from devices.decode import decode_message

    spec = air_device()
    sent = SimMeasurement(
        ts_ms=NOW_MS,
        metrics={
            "pm10_ugm3": 31.27,
            "pm2_5_ugm3": 14.5,
            "temperature_c": -3.21,
            "humidity_pct": 88.0,
            "pressure_hpa": 1003.42,
        },
    )
    payload = sensor_community_body(spec, sent)
    reading = decode_message(TopicInfo("sensor_community", "up", "esp8266-1520847"), payload, spec, NOW_MS, LIMITS)
    _check(sent, dict(reading.metrics), reading.ts_ms, NOW_MS)


@settings(max_examples=60, deadline=None)
@given(
    fmt_model=st.sampled_from([(f, m) for f, m, _ in LORAWAN]),
    moisture=st.floats(0, 100),
    temperature=st.floats(-40, 85),
    conductivity=st.integers(0, 20_000),
    battery=st.floats(0, 100),
    seq=st.integers(0, 2**32 - 1),
    ts_back_ms=st.integers(0, 80 * 86_400_000),
)
def test_lorawan_round_trip_property(
    fmt_model: tuple[str, str | None],
    moisture: float,
    temperature: float,
    conductivity: int,
    battery: float,
    seq: int,
    ts_back_ms: int,
) -> None:
    fmt, model = fmt_model
    spec: DeviceSpec = soil_device(fmt, model, source_id="a84041c3a1b2c3d4")
    metrics = {
        "soil_moisture_pct": moisture,
        "soil_temperature_c": temperature,
        "soil_conductivity_us_cm": conductivity,
    }
    sent = SimMeasurement(ts_ms=NOW_MS - ts_back_ms, metrics=metrics, battery_pct=battery, seq=seq)
    topic, payload = encode(spec, sent)
    reading = decode_on(topic, payload, spec)
    _check(sent, dict(reading.metrics), reading.ts_ms, sent.ts_ms)
    assert reading.battery_pct == pytest.approx(battery, abs=0.55)
    assert reading.seq == seq

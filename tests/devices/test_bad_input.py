"""Bad input of every class, through ``decode_message``: a ``DecodeError`` with a reason, never anything else.

The hypothesis properties feed arbitrary bytes, arbitrary JSON objects and valid messages with one value
swapped for an arbitrary one to every format; the result must be a ``DecodeError`` or a ``Reading`` whose
metrics are all known, finite and in range.
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import orjson
import pytest
from firmware_sim.encoders import SimMeasurement, encode, encode_chirpstack_status, sensor_community_body
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.decode import DecodeLimits, decode_message
from devices.readings import METRIC_UNITS, Reading
from devices.registry import DeviceSpec
from devices.topics import TopicInfo, classify_topic
from placesense.basics.errors import DecodeError
from tests.devices.support import LIMITS, NOW_MS, air_device, home_device, soil_device

DEVICES: list[DeviceSpec] = [
    home_device("motion"),
    home_device("help_button"),
    home_device("kettle"),
    soil_device("ttn", "dragino-lse01"),
    soil_device("ttn", "milesight-em500-smtc"),
    soil_device("ttn", None),
    soil_device("chirpstack", "dragino-se01-lb", source_id="a84041c3a1b2c3d4"),
    soil_device("chirpstack", None, source_id="a84041c3a1b2c3d4"),
    air_device(),
    soil_device("canonical"),
]


def _info_for(spec: DeviceSpec, status: bool = False) -> TopicInfo:
    if spec.format == "sensor_community":
        return TopicInfo("sensor_community", "up", spec.source_key)
    kind = "device_status" if status else ("telemetry" if spec.format in ("canonical", "zigbee2mqtt") else "up")
    domain = spec.domain if spec.format == "canonical" else None
    return TopicInfo(spec.format, kind, spec.source_key, domain=domain, application="placesense-soil@ttn")


def _valid(spec: DeviceSpec, status: bool = False) -> bytes:
    if spec.format == "sensor_community":
        return sensor_community_body(spec, SimMeasurement(ts_ms=NOW_MS, metrics={"pm10_ugm3": 9, "pm2_5_ugm3": 4}))
    if status:
        return encode_chirpstack_status(spec, SimMeasurement(ts_ms=NOW_MS, metrics={}, battery_pct=50))[1]
    if spec.domain == "soil":
        metrics: dict[str, float | bool] = {"soil_moisture_pct": 30, "soil_temperature_c": 9}
    elif spec.kind == "kettle":
        metrics = {"power_w": 3000}
    else:
        metrics = {"motion": True} if spec.kind == "motion" else {"help_pressed": True}
    return encode(spec, SimMeasurement(ts_ms=NOW_MS - 1000, metrics=metrics, battery_pct=70, seq=5))[1]


def _assert_valid(reading: Reading, spec: DeviceSpec) -> None:
    assert reading.device_id == spec.id
    for name, value in reading.metrics.items():
        _, _, low, high = METRIC_UNITS[name]
        assert math.isfinite(value) and low <= value <= high
    if reading.battery_pct is not None:
        assert 0 <= reading.battery_pct <= 100
    assert NOW_MS - LIMITS.max_past_ms <= reading.ts_ms <= NOW_MS + LIMITS.max_future_ms


def _decode_or_refuse(info: TopicInfo, payload: bytes, spec: DeviceSpec) -> None:
    try:
        reading = decode_message(info, payload, spec, NOW_MS, LIMITS)
    except DecodeError as exc:
        assert exc.reason and exc.kind
    else:
        _assert_valid(reading, spec)


@pytest.mark.parametrize("spec", DEVICES, ids=lambda d: f"{d.format}-{d.model or d.kind}")
def test_every_valid_example_decodes(spec: DeviceSpec) -> None:
    _assert_valid(decode_message(_info_for(spec), _valid(spec), spec, NOW_MS, LIMITS), spec)


@pytest.mark.parametrize("spec", DEVICES, ids=lambda d: f"{d.format}-{d.model or d.kind}")
@pytest.mark.parametrize(
    "payload, kind",
    [
        (b"{not json", "malformed_json"),
        (b"", "malformed_json"),
        (b'{"temperature": NaN}', "not_finite"),
        (b'{"temperature": -Infinity}', "not_finite"),
        (b'{"temperature": 1e999}', "not_finite"),
        (b"\xff\xfe{}", "malformed_json"),
        (b"[1, 2, 3]", "wrong_type"),
        (b'"occupancy"', "wrong_type"),
        (b"null", "wrong_type"),
    ],
)
def test_payloads_that_are_not_json_objects(spec: DeviceSpec, payload: bytes, kind: str) -> None:
    with pytest.raises(DecodeError) as err:
        decode_message(_info_for(spec), payload, spec, NOW_MS, LIMITS)
    assert err.value.kind == kind


@pytest.mark.parametrize("spec", DEVICES, ids=lambda d: f"{d.format}-{d.model or d.kind}")
def test_oversized_payloads_are_refused_before_parsing(spec: DeviceSpec) -> None:
    padded = _valid(spec)[:-1] + b', "padding": "' + b"x" * 70_000 + b'"}'
    with pytest.raises(DecodeError, match="the limit is 65536") as err:
        decode_message(_info_for(spec), padded, spec, NOW_MS, LIMITS)
    assert err.value.kind == "oversized"
    small = DecodeLimits(max_payload_bytes=16)
    with pytest.raises(DecodeError, match="the limit is 16"):
        decode_message(_info_for(spec), _valid(spec), spec, NOW_MS, small)


def test_a_message_in_another_format_than_registered() -> None:
    spec = soil_device("ttn", "dragino-lse01")
    info = classify_topic("application/x/device/bed-07/event/up")
    assert info is not None
    with pytest.raises(DecodeError) as err:
        decode_message(info, _valid(spec), spec, NOW_MS, LIMITS)
    assert err.value.kind == "wrong_format"


@pytest.mark.parametrize("shift_ms, kind", [(3_600_000, "future_timestamp"), (-91 * 86_400_000, "past_timestamp")])
@pytest.mark.parametrize("fmt", ["zigbee2mqtt", "ttn", "chirpstack"])
def test_clock_far_off(fmt: str, shift_ms: int, kind: str) -> None:
    spec = home_device("motion") if fmt == "zigbee2mqtt" else soil_device(fmt, "dragino-se01-lb")
    metrics: dict[str, float | bool] = (
        {"motion": True} if fmt == "zigbee2mqtt" else {"soil_moisture_pct": 20, "soil_temperature_c": 5}
    )
    _, payload = encode(spec, SimMeasurement(ts_ms=NOW_MS + shift_ms, metrics=metrics, battery_pct=80))
    with pytest.raises(DecodeError) as err:
        decode_message(_info_for(spec), payload, spec, NOW_MS, LIMITS)
    assert err.value.kind == kind
    assert "check the device's clock" in err.value.reason


@pytest.mark.parametrize("huge", ["1e308", "123456789012345678901234567890", "-1e308"])
def test_huge_json_numbers_are_out_of_range_not_crashes(huge: str) -> None:
    spec = home_device("climate", room="living_room")
    with pytest.raises(DecodeError) as err:
        decode_message(_info_for(spec), f'{{"temperature": {huge}}}'.encode(), spec, NOW_MS, LIMITS)
    assert err.value.kind == "out_of_range"


# ------------------------------------------------------------------------------------------------- properties

_KEYS = st.sampled_from(
    [
        "occupancy",
        "contact",
        "power",
        "energy",
        "temperature",
        "humidity",
        "battery",
        "voltage",
        "linkquality",
        "action",
        "last_seen",
        "end_device_ids",
        "device_id",
        "application_ids",
        "application_id",
        "uplink_message",
        "decoded_payload",
        "frm_payload",
        "f_port",
        "f_cnt",
        "rx_metadata",
        "rssi",
        "snr",
        "received_at",
        "deviceInfo",
        "devEui",
        "time",
        "fCnt",
        "fPort",
        "object",
        "data",
        "rxInfo",
        "nsTime",
        "batteryLevel",
        "externalPowerSource",
        "esp8266id",
        "sensordatavalues",
        "value_type",
        "value",
        "ts",
        "metrics",
        "battery_pct",
        "seq",
        "water_SOIL",
        "moisture",
        "soil_moisture_pct",
        "SDS_P1",
    ]
) | st.text(max_size=6)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**80), 2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(
        [
            "2024-05-01T09:59:00Z",
            "2024-05-01T09:59:00.123456789+00:00",
            "12.5",
            "nan",
            "-inf",
            "1e999",
            "bed-07",
            "a84041c3a1b2c3d4",
            "esp8266-1520847",
            "1520847",
            "DV4AAAcnA2oApBA=",
            "AXVc",
            "P1",
            "SDS_P2",
            "",
            "0",
        ]
    )
)
_JSON = st.recursive(
    _SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=6), max_leaves=15
)


def _dump(value: Any) -> bytes:
    # the standard library writes integers of any size, which orjson refuses to produce
    return json.dumps(value).encode()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=st.binary(max_size=200), spec=st.sampled_from(DEVICES))
def test_arbitrary_bytes_never_escape_as_other_errors(payload: bytes, spec: DeviceSpec) -> None:
    _decode_or_refuse(_info_for(spec), payload, spec)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(obj=st.dictionaries(_KEYS, _JSON, max_size=8), spec=st.sampled_from(DEVICES), status=st.booleans())
def test_arbitrary_json_objects_never_escape_as_other_errors(
    obj: dict[str, Any], spec: DeviceSpec, status: bool
) -> None:
    _decode_or_refuse(_info_for(spec, status and spec.format == "chirpstack"), _dump(obj), spec)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, child in node.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += _paths(child, (*prefix, index))
    return found


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), spec=st.sampled_from(DEVICES), replacement=_JSON)
def test_valid_messages_with_one_value_swapped(data: st.DataObject, spec: DeviceSpec, replacement: Any) -> None:
    status = spec.format == "chirpstack" and data.draw(st.booleans())
    original = orjson.loads(_valid(spec, status))
    path = data.draw(st.sampled_from(_paths(original)))
    mutated = copy.deepcopy(original)
    node = mutated
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = replacement
    _decode_or_refuse(_info_for(spec, status), _dump(mutated), spec)

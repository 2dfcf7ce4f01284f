"""Helpers the device tests share: a fixed clock, registry entries, and decoding one message end to end.

Everything here goes through ``decode_message``, the same entry ingest uses, so the tests see the shared
checks (identity, ranges, timestamps) as well as each format's own mapping.
"""

from __future__ import annotations

from typing import Any

import orjson

from devices.decode import DecodeLimits, decode_message
from devices.readings import Reading
from devices.registry import DeviceSpec
from devices.topics import TopicInfo, classify_topic

NOW_MS = 1_714_557_600_000  # 2024-05-01T10:00:00Z, the receive time of every test message
LIMITS = DecodeLimits()


def device(**fields: Any) -> DeviceSpec:
    return DeviceSpec.model_validate(fields)


def home_device(kind: str, fmt: str = "zigbee2mqtt", room: str = "kitchen", **fields: Any) -> DeviceSpec:
    return device(
        id=f"h1-{kind}".replace("_", "-"), domain="home", subject="h1", kind=kind, room=room, format=fmt, **fields
    )


def soil_device(fmt: str, model: str | None = None, **fields: Any) -> DeviceSpec:
    return device(id="bed-07", domain="soil", subject="bed-7", kind="soil", format=fmt, model=model, **fields)


def air_device(**fields: Any) -> DeviceSpec:
    return device(
        id="air-12",
        domain="air",
        subject="mold-road",
        kind="air",
        format="sensor_community",
        source_id="esp8266-1520847",
        **fields,
    )


def body(payload: dict[str, Any] | bytes) -> bytes:
    return payload if isinstance(payload, bytes) else orjson.dumps(payload)


def decode_on(topic: str, payload: dict[str, Any] | bytes, spec: DeviceSpec, received_ms: int = NOW_MS) -> Reading:
    info = classify_topic(topic)
    assert info is not None, f"topic {topic!r} is not recognised"
    return decode_message(info, body(payload), spec, received_ms, LIMITS)


def decode_sensor_community(payload: dict[str, Any] | bytes, spec: DeviceSpec, chip: str | None = None) -> Reading:
    info = TopicInfo("sensor_community", "up", chip or spec.source_key)
    return decode_message(info, body(payload), spec, NOW_MS, LIMITS)

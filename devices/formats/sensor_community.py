"""Sensor.Community (formerly luftdaten.info) HTTP push bodies → our air metrics.

The firmware of DIY air sensors posts ``{"esp8266id": "...", "software_version": "...",
"sensordatavalues": [{"value_type": "SDS_P1", "value": "12.30"}, ...]}`` with every value as text.
``P1`` is PM10 and ``P2`` is PM2.5, bare or behind a sensor prefix (``SDS_P1``, ``PMS_P2``, ``SPS30_P1``);
temperature, humidity and pressure come with a sensor prefix too (``BME280_temperature``, or bare from a
DHT22). Pressure is sent in Pa and stored in hPa. Other value types (PM1 ``P0``, wifi ``signal``, timing
counters, noise) are ignored. If two sensors report the same quantity, the first in the list wins.

The chip id in the body (``esp8266id`` or ``esp32id``) must match the id the API puts in the ``TopicInfo``;
both ``12345`` and ``esp8266-12345`` (the form of the firmware's ``X-Sensor`` header) count as that chip.
There is no event time in the body: the API's receive time is used.

This module must not range-check values (``devices.decode.finish`` does) or know about HTTP.
"""

from __future__ import annotations

from typing import Any

from devices.codecs import vendor_number
from devices.decode import Decoded
from devices.registry import DeviceSpec
from devices.topics import TopicInfo
from placesense.errors import DecodeError

_CHIP_ID_KEYS = ("esp8266id", "esp32id", "chipid")
_MAX_VALUES = 64  # the firmware sends about a dozen; a long list is not a sensor talking


def _metric_of(value_type: str) -> tuple[str, float] | None:
    """(our metric, scale) for a Sensor.Community value type, or None if we do not store it."""
    suffix = value_type.rsplit("_", 1)[-1] if "_" in value_type else value_type
    match suffix:
        case "P1":
            return "pm10_ugm3", 1.0
        case "P2":
            return "pm2_5_ugm3", 1.0
        case "temperature":
            return "temperature_c", 1.0
        case "humidity":
            return "humidity_pct", 1.0
        case "pressure":
            return "pressure_hpa", 0.01
    return None


def _claimed_id(info: TopicInfo, payload: dict[str, Any]) -> str:
    for key in _CHIP_ID_KEYS:
        raw = payload.get(key)
        if raw is None:
            continue
        if isinstance(raw, bool) or not isinstance(raw, str | int):
            raise DecodeError(f"'{key}' must be the chip id as text or a number", kind="wrong_type")
        chip = str(raw).strip()
        forms = {chip.lower(), f"esp8266-{chip}".lower(), f"esp32-{chip}".lower()}
        return info.source_id if info.source_id.lower() in forms else chip
    raise DecodeError("missing the chip id ('esp8266id' or 'esp32id')", kind="missing_field")


def decode(info: TopicInfo, payload: dict[str, Any], device: DeviceSpec) -> Decoded:
    claimed = _claimed_id(info, payload)
    values = payload.get("sensordatavalues")
    if not isinstance(values, list):
        raise DecodeError("'sensordatavalues' must be a list of {value_type, value}", kind="wrong_type")
    if len(values) > _MAX_VALUES:
        raise DecodeError(
            f"'sensordatavalues' has {len(values)} entries; a sensor sends at most {_MAX_VALUES}", kind="oversized"
        )
    metrics: dict[str, float] = {}
    for index, entry in enumerate(values):
        if not isinstance(entry, dict) or not isinstance(entry.get("value_type"), str):
            raise DecodeError(
                f"sensordatavalues[{index}] must be an object with a text 'value_type'", kind="wrong_type"
            )
        value_type: str = entry["value_type"]
        target = _metric_of(value_type)
        if target is None or target[0] in metrics:
            continue
        if "value" not in entry:
            raise DecodeError(f"sensordatavalues {value_type} has no 'value'", kind="missing_field")
        name, scale = target
        metrics[name] = vendor_number(entry["value"], f"sensordatavalues {value_type}") * scale
    return Decoded(metrics=metrics, ts_ms=None, source_device_id=claimed)

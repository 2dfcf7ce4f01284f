"""Sensor.Community (formerly luftdaten.info) uploads of the airrohr firmware → our air metrics.

The firmware sends the same readings in two forms (airrohr-firmware.ino, ``sendSensorCommunity`` and the
"send to own API" branch of ``sendData``):

- **to Sensor.Community itself**: one POST per sensor, ``{"software_version": "...", "sensordatavalues":
  [{"value_type": "P1", "value": "12.30"}, ...]}``. The chip id is only in the ``X-Sensor: esp8266-<chip>``
  header, the sensor is named by the ``X-PIN`` header (1 particulate matter, 3 BMP180/BMP280, 5 PPD42NS, 7 DHT22,
  HTU21D or SHT3x, 9 GPS, 11 BME280, 13 DS18B20, 15 DNMS noise, 17 SCD30) and the sensor prefix is stripped from
  the value types (``SDS_P1`` → ``P1``, ``BME280_pressure`` → ``pressure``).
- **to an own API** (placesense): one POST with every sensor, ``{"esp8266id": "<chip>", "software_version":
  ..., "sensordatavalues": [...]}`` with the prefixes kept (``SDS_P1``, ``BME280_temperature``; the DHT22's and
  the PPD42NS's are bare) and the firmware's own counters (``samples``, ``signal``...).

Mapping: ``P1`` is PM10 and ``P2`` is PM2.5 (µg/m³, from SDS011, PMS, HPM, NextPM, IPS and SPS30 alike);
``temperature``, ``humidity``, ``pressure`` (sent in Pa, stored in hPa) and the SCD30's ``co2_ppm``. Not stored,
by design: PM1 and PM4 (``P0``, ``P4``), particle number counts (``N1``...), typical particle size, GPS, noise
and the firmware's counters. If two sensors report the same quantity, the first in the list wins.

The PPD42NS is the exception: its ``P1`` and ``P2`` are particle counts (particles per litre, from the pulse
ratio), not µg/m³, and stored as PM they would read as a "Very High" band. They are recognised by ``X-PIN: 5`` or
by the ``durP1``/``ratioP1`` values the firmware sends with them, and refused with that reason.

The chip id in the body, when there is one (``esp8266id``, also sent by ESP32 boards, or ``esp32id``), must
match the id the API puts in the ``TopicInfo``; both ``12345`` and ``esp8266-12345`` count as that chip. There is
no event time in either form: the API's receive time is used.

This module must not range-check values (``devices.decode.finish`` does) or know about HTTP.
"""

from __future__ import annotations

from typing import Any

from devices.codecs import vendor_number
from devices.formats.base import Decoded
from devices.readings import RefusedMetric
from devices.registry import DeviceSpec
from devices.topics import TopicInfo
from placesense.basics.errors import DecodeError

_CHIP_ID_KEYS = ("esp8266id", "esp32id", "chipid")
_MAX_VALUES = 64  # the firmware sends about a dozen; a long list is not a sensor talking
PPD42NS_PIN = 5
_PPD42NS_COMPANIONS = frozenset({"durP1", "ratioP1", "durP2", "ratioP2"})
PPD42NS_COUNTS = (
    "the PPD42NS reports {value_type} as a particle count (particles per litre), not a mass concentration in "
    "µg/m³; placesense cannot turn one into the other, so it is not stored as PM. Fit a sensor that measures "
    "µg/m³ (SDS011, SPS30, PMS) for air-quality bands"
)


def _metric_of(value_type: str) -> tuple[str, float] | None:
    """(our metric, scale) for a Sensor.Community value type, or None if we do not store it."""
    match value_type.rsplit("_", 1)[-1] if "_" in value_type else value_type:
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
        case "ppm" if value_type.endswith("co2_ppm"):
            return "co2_ppm", 1.0
    return None


def _claimed_id(info: TopicInfo, payload: dict[str, Any]) -> str | None:
    for key in _CHIP_ID_KEYS:
        raw = payload.get(key)
        if raw is None:
            continue
        if isinstance(raw, bool) or not isinstance(raw, str | int):
            raise DecodeError(f"'{key}' must be the chip id as text or a number", kind="wrong_type")
        chip = str(raw).strip()
        forms = {chip.lower(), f"esp8266-{chip}".lower(), f"esp32-{chip}".lower()}
        return info.source_id if info.source_id.lower() in forms else chip
    if info.sensor_pin is None:
        raise DecodeError(
            "missing the chip id: the body has no 'esp8266id' and no X-PIN header says it is an upload in "
            "Sensor.Community's own form",
            kind="missing_field",
        )
    return None  # Sensor.Community's form: the chip is only in the X-Sensor header, which the API checked


def decode(info: TopicInfo, payload: dict[str, Any], device: DeviceSpec) -> Decoded:
    claimed = _claimed_id(info, payload)
    values = payload.get("sensordatavalues")
    if not isinstance(values, list):
        raise DecodeError("'sensordatavalues' must be a list of {value_type, value}", kind="wrong_type")
    if len(values) > _MAX_VALUES:
        raise DecodeError(
            f"'sensordatavalues' has {len(values)} entries; a sensor sends at most {_MAX_VALUES}", kind="oversized"
        )
    for index, entry in enumerate(values):
        if not isinstance(entry, dict) or not isinstance(entry.get("value_type"), str):
            raise DecodeError(
                f"sensordatavalues[{index}] must be an object with a text 'value_type'", kind="wrong_type"
            )
    types = {entry["value_type"] for entry in values}
    ppd42ns = info.sensor_pin == PPD42NS_PIN or bool(types & _PPD42NS_COMPANIONS)
    metrics: dict[str, object] = {}
    refused: list[RefusedMetric] = []
    for entry in values:
        value_type: str = entry["value_type"]
        target = _metric_of(value_type)
        if target is None or target[0] in metrics:
            continue  # a PPD42NS's refused count does not stop another sensor's concentration from being stored
        name, scale = target
        if ppd42ns and value_type in ("P1", "P2"):
            refused.append(RefusedMetric(name, PPD42NS_COUNTS.format(value_type=value_type), "not_a_concentration"))
            continue
        what = f"sensordatavalues {value_type}"
        try:
            if "value" not in entry:
                raise DecodeError(f"{what} has no 'value'", kind="missing_field")
            metrics[name] = vendor_number(entry["value"], what) * scale
        except DecodeError as exc:
            refused.append(RefusedMetric(name, exc.reason, exc.kind))
    return Decoded(metrics=metrics, ts_ms=None, source_device_id=claimed, refused=tuple(refused))

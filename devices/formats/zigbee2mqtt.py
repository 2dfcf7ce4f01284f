"""Zigbee2MQTT device state (``zigbee2mqtt/{friendly_name}``) → our metrics.

Zigbee2MQTT publishes the whole known state of a device on every change, with many keys we do not use
(illuminance, update status, power-on behaviour...); those are ignored. ``null`` means "not reported yet" and
is skipped too. Mapping:

- ``occupancy`` → ``occupied`` on bed/chair pads, else ``motion``
- ``contact`` → ``door_open = not contact`` (Zigbee2MQTT's ``contact: true`` means the magnet is near: closed)
- ``power`` → ``power_w``, ``energy`` → ``energy_kwh``, ``temperature`` → ``temperature_c``,
  ``humidity`` → ``humidity_pct``, ``linkquality`` → ``link_quality``
- ``battery`` (%) → the reading's battery; ``voltage`` (mV on battery devices) → ``battery_v``. On plugs and
  kettles ``voltage`` is the mains voltage in volts, not a battery, so it is ignored there.
- ``action`` (any non-empty text) on a help button → ``help_pressed = 1``

The payload names no device, so the identity check cannot apply. Event time is ``last_seen`` (ISO 8601 or
epoch ms) when the bridge's ``last_seen`` option is on; otherwise ``None`` and the receive time is used, so a
redelivered message may be stored a second time a few milliseconds later (see DESIGN.md, storage).

This module must not range-check values or fill in receive time: ``devices.decode.finish`` does both.
"""

from __future__ import annotations

from typing import Any

from devices.decode import Decoded, number, parse_timestamp
from devices.registry import DeviceSpec
from devices.topics import TopicInfo
from placesense.errors import DecodeError

_NUMERIC = {
    "power": "power_w",
    "energy": "energy_kwh",
    "temperature": "temperature_c",
    "humidity": "humidity_pct",
    "linkquality": "link_quality",
}
_MAINS_KINDS = frozenset({"plug", "kettle"})
_PAD_KINDS = frozenset({"bed", "chair"})


def _flag(value: object, key: str) -> bool:
    if isinstance(value, bool):
        return value
    raise DecodeError(f"'{key}' must be true or false, got {type(value).__name__}", kind="wrong_type")


def decode(info: TopicInfo, payload: dict[str, Any], device: DeviceSpec) -> Decoded:
    metrics: dict[str, float | bool] = {}
    occupancy = payload.get("occupancy")
    if occupancy is not None:
        metrics["occupied" if device.kind in _PAD_KINDS else "motion"] = _flag(occupancy, "occupancy")
    contact = payload.get("contact")
    if contact is not None:
        metrics["door_open"] = not _flag(contact, "contact")
    for key, name in _NUMERIC.items():
        value = payload.get(key)
        if value is not None:
            metrics[name] = number(value, f"'{key}'")
    voltage = payload.get("voltage")
    if voltage is not None and device.kind not in _MAINS_KINDS:
        metrics["battery_v"] = number(voltage, "'voltage' (millivolts)") / 1000
    action = payload.get("action")
    if action is not None and device.kind == "help_button":
        if not isinstance(action, str):
            raise DecodeError(f"'action' must be text, got {type(action).__name__}", kind="wrong_type")
        if action:
            metrics["help_pressed"] = 1.0
    battery = payload.get("battery")
    last_seen = payload.get("last_seen")
    return Decoded(
        metrics=metrics,
        ts_ms=None if last_seen is None else parse_timestamp(last_seen, "last_seen"),
        battery_pct=None if battery is None else number(battery, "'battery'"),
    )

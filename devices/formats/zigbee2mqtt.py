"""Zigbee2MQTT device state (``zigbee2mqtt/{friendly_name}``, the name may contain ``/``) → our metrics.

Zigbee2MQTT publishes the whole known state of a device on every change, with many keys we do not use
(illuminance, update status, power-on behaviour...); those are ignored. ``null`` is Zigbee2MQTT's "no value
known" (never reported since pairing, or the device said unknown, as the Aqara FP1's presence 255 does); it is
skipped, not dead-lettered: it is no measurement, and Zigbee2MQTT repeats its cached state with every message,
so a dead letter per null would bury real faults. Mapping:

- ``occupancy`` → ``occupied`` on bed/chair pads, else ``motion``
- ``presence`` (mmWave radar presence sensors such as the Aqara FP1 or Tuya's) → ``presence``, a metric of its
  own: a radar keeps seeing a person who sits or lies still, so its "yes" is no movement and must not feed the
  motion-based rules (a fall would look like activity)
- ``contact`` → ``door_open = not contact`` (Zigbee2MQTT's ``contact: true`` means the magnet is near: closed)
- ``power`` → ``power_w``, ``energy`` → ``energy_kwh``, ``temperature`` → ``temperature_c``,
  ``humidity`` → ``humidity_pct``, ``co2`` → ``co2_ppm``, ``linkquality`` → ``link_quality``
- ``battery`` (%) → the reading's battery; ``voltage`` (mV on battery devices) → ``battery_v``. On plugs and
  kettles ``voltage`` is the mains voltage in volts, not a battery, so it is ignored there.
- ``action`` (any non-empty text) on a help button → ``help_pressed = 1``

A value of the wrong type (text where a number belongs) is refused alone; the other values are stored.

The payload names no device, so the identity check cannot apply. Event time is ``last_seen`` (ISO 8601 or
epoch ms) when the bridge's ``last_seen`` option is on; otherwise ``None`` and the receive time is used, so a
redelivered message may be stored a second time a few milliseconds later (see DESIGN.md, storage).

``last_seen`` is when the *device* last spoke. Many motion sensors (Aqara's among them) report only "motion";
Zigbee2MQTT itself publishes ``occupancy: false`` when its ``occupancy_timeout`` runs out, and that message
carries the ``last_seen`` of the motion it ends. Stored at that time it would overwrite the motion (same series,
same timestamp) and the motion would be lost. So a message with ``occupancy: false`` is stamped one millisecond
after its ``last_seen``: the motion survives, a redelivered message still lands on the same point (nothing
doubled), and a device that reports the end of motion itself (fresh ``last_seen``) moves by one millisecond.
What is lost is only the true time the motion ended, which Zigbee2MQTT does not send.

This module must not range-check values or fill in receive time: ``devices.decode.finish`` does both.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from devices.formats.base import Decoded, number, parse_timestamp
from devices.readings import RefusedMetric
from devices.registry import DeviceSpec
from devices.topics import TopicInfo
from placesense.basics.errors import DecodeError

_NUMERIC = {
    "power": "power_w",
    "energy": "energy_kwh",
    "temperature": "temperature_c",
    "humidity": "humidity_pct",
    "co2": "co2_ppm",
    "linkquality": "link_quality",
}
_MAINS_KINDS = frozenset({"plug", "kettle"})
_PAD_KINDS = frozenset({"bed", "chair"})
OCCUPANCY_CLEARED_OFFSET_MS = 1


def _flag(value: object, key: str) -> bool:
    if isinstance(value, bool):
        return value
    raise DecodeError(f"'{key}' must be true or false, got {type(value).__name__}", kind="wrong_type")


def decode(info: TopicInfo, payload: dict[str, Any], device: DeviceSpec) -> Decoded:
    metrics: dict[str, object] = {}
    refused: list[RefusedMetric] = []

    def take(metric: str, read: Callable[[], object]) -> None:
        try:
            metrics[metric] = read()
        except DecodeError as exc:
            refused.append(RefusedMetric(metric, exc.reason, exc.kind))

    occupancy = payload.get("occupancy")
    if occupancy is not None:
        take("occupied" if device.kind in _PAD_KINDS else "motion", lambda: _flag(occupancy, "occupancy"))
    presence = payload.get("presence")
    if presence is not None:
        take("presence", lambda: _flag(presence, "presence"))
    contact = payload.get("contact")
    if contact is not None:
        take("door_open", lambda: not _flag(contact, "contact"))
    for key, name in _NUMERIC.items():
        value = payload.get(key)
        if value is not None:
            take(name, partial(number, value, f"'{key}'"))
    voltage = payload.get("voltage")
    if voltage is not None and device.kind not in _MAINS_KINDS:
        take("battery_v", lambda: number(voltage, "'voltage' (millivolts)") / 1000)
    action = payload.get("action")
    if action is not None and device.kind == "help_button":
        if not isinstance(action, str):
            refused.append(RefusedMetric(
                "help_pressed", f"'action' must be text, got {type(action).__name__}", "wrong_type"
            ))
        elif action:
            metrics["help_pressed"] = 1.0
    last_seen = payload.get("last_seen")
    ts_ms = None if last_seen is None else parse_timestamp(last_seen, "last_seen")
    if ts_ms is not None and occupancy is False:
        ts_ms += OCCUPANCY_CLEARED_OFFSET_MS
    return Decoded(metrics=metrics, ts_ms=ts_ms, battery_pct=payload.get("battery"), refused=tuple(refused))

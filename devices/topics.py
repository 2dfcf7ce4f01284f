"""MQTT topics of every source format we decode, parsed into a ``TopicInfo``.

A topic we do not recognise cannot become a ``TopicInfo``; ``classify_topic`` returns ``None`` for it.

Zigbee2MQTT allows ``/`` in friendly names (``bedroom/motion``), so ingest subscribes to ``zigbee2mqtt/#`` and
everything below the base topic is a device's friendly name, except Zigbee2MQTT's own topics: ``bridge/...``
(the bridge's state, logs and requests) and a device's sub-topics ``/set``, ``/get`` (commands to it, with an
optional attribute after them) and ``/availability``. Those are classified as ``housekeeping``: ingest reads
past them without a dead letter, as they carry no measurement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

SourceFormat = Literal["canonical", "zigbee2mqtt", "ttn", "chirpstack", "sensor_community"]
SOURCE_FORMATS: tuple[SourceFormat, ...] = ("canonical", "zigbee2mqtt", "ttn", "chirpstack", "sensor_community")
MessageKind = Literal["telemetry", "status", "up", "device_status", "housekeeping"]

DEVICE_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")

# The subscriptions ingest makes, relative to the configured topic prefix.
SUBSCRIPTIONS: tuple[str, ...] = (
    "placesense/v1/+/+/telemetry",
    "placesense/v1/+/+/status",
    "zigbee2mqtt/#",
    "v3/+/devices/+/up",
    "application/+/device/+/event/up",
    "application/+/device/+/event/status",
)

# Zigbee2MQTT's own topics: the bridge's, and a device's command and availability sub-topics.
_Z2M_BRIDGE = "bridge"
_Z2M_COMMANDS = frozenset({"set", "get"})
_Z2M_AVAILABILITY = "availability"


@dataclass(frozen=True, slots=True)
class TopicInfo:
    """What a topic tells us before we read the payload."""

    format: SourceFormat
    kind: MessageKind
    source_id: str
    domain: str | None = None
    application: str | None = None
    sensor_pin: int | None = None  # Sensor.Community uploads: the X-PIN header, which says which sensor sent them

    def __post_init__(self) -> None:
        slash_allowed = self.format == "zigbee2mqtt"  # friendly names may be paths; no other source id may
        if (
            not self.source_id
            or ("/" in self.source_id and not slash_allowed)
            or any(not part for part in self.source_id.split("/"))
            or "+" in self.source_id
            or "#" in self.source_id
        ):
            raise ValueError(f"invalid source id in topic: {self.source_id!r}")


def canonical_topic(domain: str, device_id: str, kind: str = "telemetry", prefix: str = "") -> str:
    """The topic a placesense-native device publishes on."""
    if not DEVICE_ID_RE.fullmatch(device_id):
        raise ValueError(f"invalid device id {device_id!r}: use a-z, 0-9, '.', '_', '-' (at most 64)")
    return f"{prefix}placesense/v1/{domain}/{device_id}/{kind}"


def classify_topic(topic: str, prefix: str = "") -> TopicInfo | None:
    """Parse a topic into its source format and the device's id in that format, or ``None``."""
    if prefix:
        if not topic.startswith(prefix):
            return None
        topic = topic[len(prefix) :]
    parts = topic.split("/")
    try:
        if len(parts) == 5 and parts[0] == "placesense" and parts[1] == "v1" and parts[4] in ("telemetry", "status"):
            kind: MessageKind = "telemetry" if parts[4] == "telemetry" else "status"
            return TopicInfo("canonical", kind, parts[3], domain=parts[2])
        if len(parts) >= 2 and parts[0] == "zigbee2mqtt":
            return _zigbee2mqtt(parts[1:])
        if len(parts) == 5 and parts[0] == "v3" and parts[2] == "devices" and parts[4] == "up":
            return TopicInfo("ttn", "up", parts[3], application=parts[1])
        if (
            len(parts) == 6
            and parts[0] == "application"
            and parts[2] == "device"
            and parts[4] == "event"
            and parts[5] in ("up", "status")
        ):
            kind = "up" if parts[5] == "up" else "device_status"
            return TopicInfo("chirpstack", kind, parts[3].lower(), application=parts[1])
    except ValueError:
        return None
    return None


def _zigbee2mqtt(name: list[str]) -> TopicInfo:
    """A Zigbee2MQTT topic below the base: a device's state, or the bridge's and the devices' own sub-topics."""
    if name[0] == _Z2M_BRIDGE:
        return TopicInfo("zigbee2mqtt", "housekeeping", "/".join(name))
    if name[-1] == _Z2M_AVAILABILITY and len(name) > 1:
        return TopicInfo("zigbee2mqtt", "housekeeping", "/".join(name[:-1]))
    for depth in (1, 2):  # "<name>/set" and "<name>/set/<attribute>"
        if len(name) > depth and name[-depth] in _Z2M_COMMANDS:
            return TopicInfo("zigbee2mqtt", "housekeeping", "/".join(name[:-depth]))
    return TopicInfo("zigbee2mqtt", "telemetry", "/".join(name))

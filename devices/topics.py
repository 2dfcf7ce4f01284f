"""MQTT topics of every source format we decode, parsed into a ``TopicInfo``.

A topic we do not recognise cannot become a ``TopicInfo``; ``classify_topic`` returns ``None`` for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

SourceFormat = Literal["canonical", "zigbee2mqtt", "ttn", "chirpstack", "sensor_community"]
SOURCE_FORMATS: tuple[SourceFormat, ...] = ("canonical", "zigbee2mqtt", "ttn", "chirpstack", "sensor_community")
MessageKind = Literal["telemetry", "status", "up", "device_status"]

DEVICE_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")

# The subscriptions ingest makes, relative to the configured topic prefix.
SUBSCRIPTIONS: tuple[str, ...] = (
    "placesense/v1/+/+/telemetry",
    "placesense/v1/+/+/status",
    "zigbee2mqtt/+",
    "v3/+/devices/+/up",
    "application/+/device/+/event/up",
    "application/+/device/+/event/status",
)

# Zigbee2MQTT publishes its own housekeeping under these names; they are not devices.
_Z2M_RESERVED = frozenset({"bridge"})


@dataclass(frozen=True, slots=True)
class TopicInfo:
    """What a topic tells us before we read the payload."""

    format: SourceFormat
    kind: MessageKind
    source_id: str
    domain: str | None = None
    application: str | None = None

    def __post_init__(self) -> None:
        if not self.source_id or "/" in self.source_id or "+" in self.source_id or "#" in self.source_id:
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
        if len(parts) == 2 and parts[0] == "zigbee2mqtt" and parts[1] not in _Z2M_RESERVED:
            return TopicInfo("zigbee2mqtt", "telemetry", parts[1])
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

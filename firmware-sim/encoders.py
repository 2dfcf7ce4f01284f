"""What simulated firmware puts on the wire: a reading encoded in the device's source format.

Each format's encoder is the mirror of its decoder in ``devices/formats``: given a device from the registry and
a simulated measurement, it returns the MQTT topic and payload bytes a real device (or its network server)
would publish.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from devices.registry import DeviceSpec
from devices.topics import canonical_topic


@dataclass(frozen=True, slots=True)
class SimMeasurement:
    """One simulated measurement in placesense's own metric names and units."""

    ts_ms: int
    metrics: Mapping[str, float | bool]
    battery_pct: float | None = None
    seq: int | None = None


def rfc3339(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode_canonical(device: DeviceSpec, m: SimMeasurement, prefix: str = "") -> tuple[str, bytes]:
    body: dict[str, object] = {"ts": m.ts_ms, "metrics": dict(m.metrics)}
    if m.battery_pct is not None:
        body["battery_pct"] = round(m.battery_pct, 1)
    if m.seq is not None:
        body["seq"] = m.seq
    return canonical_topic(device.domain, device.id, "telemetry", prefix), orjson.dumps(body)


Encoder = Callable[[DeviceSpec, SimMeasurement, str], tuple[str, bytes]]

ENCODERS: dict[str, Encoder] = {
    "canonical": encode_canonical,
}


def encode(device: DeviceSpec, m: SimMeasurement, prefix: str = "") -> tuple[str, bytes]:
    """Topic and payload for ``m`` in ``device``'s source format."""
    return ENCODERS[device.format](device, m, prefix)

"""The placesense-native payload (DESIGN.md contract).

``{"ts": <RFC 3339 string or epoch ms>, "metrics": {"<name>": <number|bool>}, "battery_pct": <0-100>,
"seq": <int>}``. An optional ``device_id`` lets ingest catch a device publishing on another device's topic.
Unknown top-level fields are ignored so that firmware can add fields before ingest learns them. A metric that
is null, a "no data" marker (-200, -999), out of range, not a number or unknown, and a bad ``battery_pct``, is
refused alone by ``devices.decode.finish``: the message's other metrics are stored (an air station whose NO2
channel reads -200 keeps its PM channels).
"""

from __future__ import annotations

from typing import Any

from devices.formats.base import Decoded, parse_timestamp
from devices.registry import DeviceSpec
from devices.topics import TopicInfo
from placesense.basics.errors import DecodeError


def decode(info: TopicInfo, payload: dict[str, Any], device: DeviceSpec) -> Decoded:
    if "ts" not in payload:
        raise DecodeError("missing 'ts' (RFC 3339 string or epoch milliseconds)", kind="missing_field")
    metrics = payload.get("metrics")
    if not isinstance(metrics, dict):
        raise DecodeError("'metrics' must be an object of name: number", kind="wrong_type")
    battery = payload.get("battery_pct")
    seq = payload.get("seq")
    if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int)):
        raise DecodeError("'seq' must be an integer", kind="wrong_type")
    claimed = payload.get("device_id")
    if claimed is not None and not isinstance(claimed, str):
        raise DecodeError("'device_id' must be a string", kind="wrong_type")
    return Decoded(
        metrics=metrics,
        ts_ms=parse_timestamp(payload["ts"]),
        battery_pct=battery,
        seq=seq,
        source_device_id=claimed,
    )

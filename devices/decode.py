"""Turn one MQTT message into a ``Reading``: parse, pick the format's decoder, validate, normalise.

Each format module in ``devices.formats`` (``canonical``, ``zigbee2mqtt``, ``ttn``, ``chirpstack``,
``sensor_community``) maps its vendor JSON to a ``Decoded`` (``devices.formats.base``: event time, metrics in
our names and units, battery, sequence, and the values it already knows it cannot store). Everything that is
the same for every format — JSON parsing, size limits, the device-identity check, finite numbers, metric ranges,
timestamps too far ahead or behind — happens here once.

Two levels of failure (DESIGN.md, bad input): a fault of the envelope (not JSON, wrong device, bad timestamp)
is a ``DecodeError`` and the whole message becomes a dead letter; a fault of one value (null, a sentinel, out of
range, not a number, unknown name) is a ``RefusedMetric`` on the ``Reading`` and the other values are stored.
A message left with nothing to store is a ``DecodeError`` that names every refused value. Nothing here raises
anything else for bad input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from devices.formats import FORMAT_DECODERS
from devices.formats.base import Decoded, number
from devices.readings import METRIC_UNITS, Reading, RefusedMetric
from devices.registry import DeviceSpec
from devices.topics import TopicInfo
from placesense.basics.errors import DecodeError


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    max_payload_bytes: int = 64 * 1024
    max_future_ms: int = 600_000
    max_past_ms: int = 90 * 86_400_000


# Values that data loggers and air stations write for "no measurement" (DESIGN.md: -200, -999). They are refused
# as missing rather than as impossible only when they fall outside the metric's range (-200 dBm is a real RSSI).
NO_DATA_MARKERS = frozenset({-200.0, -999.0, -9999.0})


def parse_json_object(payload: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        # JSON has no NaN or infinity; firmware that prints them sends text no parser accepts. Say so plainly.
        head = payload[exc.pos : exc.pos + 9].lstrip(b"-")
        if "infinity" in exc.msg or head.startswith((b"NaN", b"nan", b"Infinity", b"inf")):
            raise DecodeError(
                f"a number at character {exc.pos} is NaN or infinite; send finite numbers or leave the metric out",
                kind="not_finite",
            ) from exc
        raise DecodeError(f"malformed JSON: {exc.args[0]}", kind="malformed_json") from exc
    if not isinstance(data, dict):
        raise DecodeError(f"expected a JSON object, got {type(data).__name__}", kind="wrong_type")
    return data


def finish(
    decoded: Decoded,
    info: TopicInfo,
    device: DeviceSpec,
    received_ms: int,
    limits: DecodeLimits,
) -> Reading:
    """Apply the checks every format shares and build the ``Reading``."""
    if decoded.source_device_id is not None and decoded.source_device_id.lower() != info.source_id.lower():
        raise DecodeError(
            f"payload says it is from device {decoded.source_device_id!r} but was published on the topic of "
            f"{info.source_id!r}",
            kind="wrong_device",
        )
    metrics: dict[str, float] = {}
    refused = list(decoded.refused)
    for name, raw in decoded.metrics.items():
        try:
            metrics[name] = checked_metric(name, raw)
        except DecodeError as exc:
            refused.append(RefusedMetric(name, exc.reason, exc.kind))
    battery = None
    if decoded.battery_pct is not None:
        try:
            battery = number(decoded.battery_pct, "battery_pct")
            if not 0 <= battery <= 100:
                raise DecodeError(f"battery_pct = {battery:g} is outside 0..100", kind="out_of_range")
        except DecodeError as exc:
            battery = None
            refused.append(RefusedMetric("battery_pct", exc.reason, exc.kind))
    if not metrics and battery is None:
        if refused:
            reasons = "; ".join(r.reason for r in refused)
            raise DecodeError(f"nothing in the message could be stored: {reasons}", kind=refused[0].kind)
        raise DecodeError("the message carries no metrics", kind="empty")
    ts_ms = received_ms if decoded.ts_ms is None else decoded.ts_ms
    if ts_ms > received_ms + limits.max_future_ms:
        ahead = (ts_ms - received_ms) / 1000
        raise DecodeError(
            f"timestamp is {ahead:.0f} s in the future (limit {limits.max_future_ms // 1000} s); "
            "check the device's clock",
            kind="future_timestamp",
        )
    if ts_ms < received_ms - limits.max_past_ms:
        days = (received_ms - ts_ms) / 86_400_000
        raise DecodeError(
            f"timestamp is {days:.1f} days old (limit {limits.max_past_ms // 86_400_000} days); "
            "check the device's clock",
            kind="past_timestamp",
        )
    seq = decoded.seq
    if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < 2**63):
        raise DecodeError("seq must be a non-negative integer", kind="wrong_type")
    # In field order, without keywords: a named tuple built positionally costs half as much, once per message.
    return Reading(device.domain, device.id, device.subject, device.room, ts_ms, metrics, battery, seq, device.format,
                   received_ms, tuple(refused) if refused else ())


def checked_metric(name: str, raw: object) -> float:
    """One metric's value as a finite float within its possible range, or a ``DecodeError`` saying why not."""
    spec = METRIC_UNITS.get(name)
    if spec is None:
        known = ", ".join(sorted(METRIC_UNITS))
        raise DecodeError(f"unknown metric {name!r}; known metrics: {known}", kind="unknown_metric")
    if raw is None:
        raise DecodeError(f"metric {name!r} is null: the device sent no value", kind="no_value")
    value = number(raw, "metric", name)
    unit, _, low, high = spec
    if not low <= value <= high:
        if value in NO_DATA_MARKERS:
            raise DecodeError(
                f"metric {name!r} = {value:g}, the usual 'no data' marker: the sensor had no value", kind="no_value"
            )
        raise DecodeError(
            f"metric {name!r} = {value:g} {unit} is outside the possible range {low:g}..{high:g}",
            kind="out_of_range",
        )
    return value


def decode_message(
    info: TopicInfo,
    payload: bytes,
    device: DeviceSpec,
    received_ms: int,
    limits: DecodeLimits,
) -> Reading:
    """Decode one message from a registered device, or raise ``DecodeError`` with the reason."""
    if len(payload) > limits.max_payload_bytes:
        raise DecodeError(
            f"payload is {len(payload)} bytes; the limit is {limits.max_payload_bytes}", kind="oversized"
        )
    if info.format != device.format:
        raise DecodeError(
            f"device {device.id!r} is registered as {device.format} but published in {info.format} format",
            kind="wrong_format",
        )
    if info.domain is not None and info.domain != device.domain:
        raise DecodeError(
            f"device {device.id!r} is a {device.domain} device but published under {info.domain!r}",
            kind="wrong_domain",
        )
    decoder = FORMAT_DECODERS.get(info.format)
    if decoder is None:
        raise DecodeError(f"no decoder for format {info.format!r}", kind="wrong_format")
    decoded = decoder(info, parse_json_object(payload), device)
    return finish(decoded, info, device, received_ms, limits)

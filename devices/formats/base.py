"""What every source-format decoder shares: the ``Decoded`` record it returns, the ``FormatDecoder`` signature,
and the parsing of the values all formats carry (timestamps, numbers, the gateways' radio metadata).

The format modules import this; ``devices.decode`` imports the formats and applies the checks every format
shares (``finish``). This module must not range-check metrics or know MQTT or topics beyond ``TopicInfo``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from devices.readings import RefusedMetric
from devices.registry import DeviceSpec
from devices.topics import TopicInfo
from placesense.basics.errors import DecodeError


@dataclass(frozen=True, slots=True)
class Decoded:
    """What a format decoder extracts before the shared validation."""

    metrics: Mapping[str, object]  # our metric name -> number or bool; anything else is refused by ``finish``
    ts_ms: int | None = None  # None: the source has no clock of its own; receive time is used
    battery_pct: object = None
    seq: int | None = None
    source_device_id: str | None = None  # the device id the payload claims, checked against the topic
    refused: tuple[RefusedMetric, ...] = ()  # values the format decoder or codec already refused


FormatDecoder = Callable[[TopicInfo, dict[str, Any], DeviceSpec], Decoded]


def parse_timestamp(value: object, what: str = "ts") -> int:
    """RFC 3339 string or epoch milliseconds -> epoch milliseconds."""
    if isinstance(value, bool):
        raise DecodeError(f"{what} must be an RFC 3339 string or epoch milliseconds, got a boolean", kind="wrong_type")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise DecodeError(f"{what} is not a finite number", kind="not_finite")
        return int(value)
    if isinstance(value, str):
        try:  # as LoRaWAN servers send it ("Z", nanoseconds), Python's parser takes it whole
            stamp = datetime.fromisoformat(value)
        except ValueError:
            stamp = _lenient_rfc3339(value, what)
        if stamp.tzinfo is None:
            raise DecodeError(f"{what} {value!r} has no time zone; add Z or an offset", kind="bad_timestamp")
        return int(stamp.timestamp() * 1000)
    raise DecodeError(f"{what} must be an RFC 3339 string or epoch milliseconds", kind="wrong_type")


def _lenient_rfc3339(value: str, what: str) -> datetime:
    """RFC 3339 with what Python's own parser refuses: spaces around it, a lower-case "z", or fractional seconds
    with more than six digits before an offset."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    if "." in text:
        head, _, rest = text.partition(".")
        digits = len(rest) - len(rest.lstrip("0123456789"))
        tail = rest[digits:]
        text = f"{head}.{rest[:min(digits, 6)]}{tail}"
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise DecodeError(f"{what} {value!r} is not an RFC 3339 timestamp", kind="bad_timestamp") from exc


def number(value: object, what: str, name: str | None = None) -> float:
    """A JSON number (or boolean) as a finite float, or a ``DecodeError`` naming the field: ``what``, followed by
    ``name`` quoted when given (apart, so that a caller on the hot path builds no text unless there is an error)."""
    if type(value) is float and value - value == 0.0:  # the common case first: finite (inf - inf and NaN are NaN)
        return value
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    label = what if name is None else f"{what} {name!r}"
    if isinstance(value, int | float):
        result = float(value)
        if not math.isfinite(result):
            raise DecodeError(f"{label} is not a finite number", kind="not_finite")
        return result
    raise DecodeError(f"{label} must be a number, got {type(value).__name__}", kind="wrong_type")


def radio_metrics(rx: object, what: str, rssi_keys: tuple[str, ...]) -> dict[str, float]:
    """rssi_dbm and snr_db from the first gateway that heard the uplink (TTN's ``rx_metadata``, ChirpStack's
    ``rxInfo``)."""
    if rx is None:
        return {}
    if not isinstance(rx, list):
        raise DecodeError(f"'{what}' must be a list of gateways", kind="wrong_type")
    if not rx:
        return {}
    first = rx[0]
    if not isinstance(first, dict):
        raise DecodeError(f"'{what}[0]' must be an object", kind="wrong_type")
    metrics: dict[str, float] = {}
    for key in rssi_keys:
        if first.get(key) is not None:
            metrics["rssi_dbm"] = number(first[key], f"'{what}[0].{key}'")
            break
    if first.get("snr") is not None:
        metrics["snr_db"] = number(first["snr"], f"'{what}[0].snr'")
    return metrics

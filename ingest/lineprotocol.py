"""InfluxDB line protocol for readings: one point per reading, escaped exactly as the protocol requires.

Measurement = domain; tags = identity (device, subject, room, source); fields = metrics (floats), battery_pct
(float) and seq (integer); timestamp = event time in milliseconds. The same reading always encodes to the same
series and timestamp, so a redelivered message overwrites itself instead of doubling.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from math import isfinite

from devices.readings import Reading

PRECISION = "ms"

_MEASUREMENT_ESCAPES = str.maketrans({",": r"\,", " ": r"\ "})
_KEY_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _no_control(text: str) -> str:
    # Line protocol has no escape for newlines or other control characters in names and tags: refuse them
    # rather than store something other than what was meant. The registry's id rules keep them out anyway.
    if _CONTROL.search(text):
        raise ValueError(f"line protocol cannot carry a control character in {text!r}")
    return text


def escape_measurement(name: str) -> str:
    return _escape_backslash_tail(_no_control(name).translate(_MEASUREMENT_ESCAPES))


def escape_key(text: str) -> str:
    """Escape a tag key, tag value or field key."""
    return _escape_backslash_tail(_no_control(text).translate(_KEY_ESCAPES))


def _escape_backslash_tail(text: str) -> str:
    # A trailing backslash escapes the separator after it, and InfluxDB has no way to say "a literal backslash
    # at the end" (checked against 1.6: doubling it does not help). Refuse rather than store something else.
    if text.endswith("\\"):
        raise ValueError(f"line protocol cannot carry a name or tag ending in a backslash: {text!r}")
    return text


def escape_string_field(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def format_float(value: float) -> str:
    if not isfinite(value):
        raise ValueError("line protocol cannot carry NaN or infinity")
    return repr(float(value))


def series_key(reading: Reading) -> str:
    """``measurement,tag=value,…`` of the reading's series (tags sorted by key, as InfluxDB prefers)."""
    tags = [f"device={escape_key(reading.device_id)}", f"subject={escape_key(reading.subject)}"]
    if reading.room:
        tags.append(f"room={escape_key(reading.room)}")
    tags.append(f"source={escape_key(reading.source)}")
    return f"{escape_measurement(reading.domain)},{','.join(sorted(tags))}"


class LineEncoder:
    """Encodes readings, remembering each device's escaped series key: a device's identity rarely changes,
    so escaping it once instead of on every message saves a good part of the encoding work."""

    def __init__(self, max_series: int = 200_000) -> None:
        self._series: dict[tuple[str, str, str, str | None, str], str] = {}
        self._max_series = max_series

    def encode(self, reading: Reading) -> str:
        identity = (reading.domain, reading.device_id, reading.subject, reading.room, reading.source)
        key = self._series.get(identity)
        if key is None:
            key = series_key(reading)
            if len(self._series) >= self._max_series:
                self._series.clear()  # a registry far larger than expected: stay bounded, rebuild as needed
            self._series[identity] = key
        return f"{key} {_fields(reading)} {reading.ts_ms}"


# Field keys are metric names, a few dozen in all: each is escaped once. Bounded in case a caller invents more.
_FIELD_PREFIXES: dict[str, str] = {}
_MAX_FIELD_PREFIXES = 10_000


def _field_prefix(name: str) -> str:
    prefix = _FIELD_PREFIXES.get(name)
    if prefix is None:
        prefix = escape_key(name) + "="
        if len(_FIELD_PREFIXES) < _MAX_FIELD_PREFIXES:
            _FIELD_PREFIXES[name] = prefix
    return prefix


def _fields(reading: Reading) -> str:
    fields = [_field_prefix(name) + format_float(value) for name, value in sorted(reading.metrics.items())]
    if reading.battery_pct is not None:
        fields.append(f"battery_pct={format_float(reading.battery_pct)}")
    if reading.seq is not None:
        fields.append(f"seq={int(reading.seq)}i")
    return ",".join(fields)


def encode_reading(reading: Reading) -> str:
    """One line (without the trailing newline) for ``reading``."""
    return f"{series_key(reading)} {_fields(reading)} {reading.ts_ms}"


def encode_batch(readings: Iterable[Reading]) -> bytes:
    """The request body for a batch of readings."""
    return "\n".join(encode_reading(r) for r in readings).encode("utf-8")


def series_tags(line: str) -> dict[str, str]:
    """The tags of one line of line protocol, unescaped (``{}`` for a line without any): what a spooled line that
    InfluxDB later refused tells about whose reading it was."""
    tags: dict[str, str] = {}
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for char in line:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in ", ":
            parts.append("".join(current))
            current = []
            if char == " ":
                break  # the series key ends at the first unescaped space
        else:
            current.append(char)
    else:
        parts.append("".join(current))
    for part in parts[1:]:  # the first part is the measurement
        key, sep, value = part.partition("=")
        if sep:
            tags[key] = value
    return tags

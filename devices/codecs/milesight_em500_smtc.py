"""Milesight EM500-SMTC soil sensor frames: a run of channel/type/value records (fPort 85, little-endian).

=========== ====== ====== ============================================================
channel     type   bytes  meaning
=========== ====== ====== ============================================================
0x01        0x75   1      battery, %
0x03        0x67   2      soil temperature, i16, 0.1 °C
0x04        0x68   1      soil moisture, u8, 0.5 % (older firmware)
0x04        0xCA   2      soil moisture, u16, 0.01 % (newer firmware)
0x05        0x7F   2      soil conductivity, u16, µS/cm
0x83        0xD7   5      temperature alarm: i16 0.1 °C, i16 change, u8 alarm type
0x20        0xCE   10     a stored (history) record re-sent later: skipped
0xFF        various       device information (versions, serial, class): skipped
=========== ====== ====== ============================================================

A moisture or conductivity value of 0xFFFF ("collection failed") or 0xFFFD ("out of range") means the probe
could not measure: that metric is left out rather than stored as a number. Temperature has no such marker we
can trust: read as signed, those words are -0.1 °C and -0.3 °C, which frosty soil really reads. Battery comes
only as a percentage.

This module only converts bytes; it must not check ranges (``devices.decode.finish`` does) or know topics.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

from devices.codecs.base import Codec
from placesense.errors import DecodeError

F_PORT = 85
_PROBE_FAILED = frozenset({0xFFFF, 0xFFFD})
# Device-information records (channel 0xFF) and their value lengths.
_INFO_LENGTHS = {0x01: 1, 0x09: 2, 0x0A: 2, 0xFF: 2, 0x16: 8, 0x0F: 1, 0xFE: 1, 0x0B: 1}
_HISTORY_LENGTH = 10
CARRIES = frozenset({"soil_moisture_pct", "soil_temperature_c", "soil_conductivity_us_cm", "battery_pct"})


def decode(data: bytes) -> dict[str, float]:
    """A frame → battery_pct, soil_temperature_c, soil_moisture_pct, soil_conductivity_us_cm (those present)."""
    if not data:
        raise DecodeError("the Milesight frame is empty", kind="bad_bytes")
    metrics: dict[str, float] = {}
    history_only = False
    pos = 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise DecodeError(f"the Milesight frame ends inside a record header at byte {pos}", kind="bad_bytes")
        channel, kind = data[pos], data[pos + 1]
        pos += 2
        length = _record_length(channel, kind, pos)
        value = data[pos : pos + length]
        if len(value) < length:
            raise DecodeError(
                f"the Milesight record {channel:#04x}/{kind:#04x} needs {length} bytes but the frame has "
                f"{len(value)} left",
                kind="bad_bytes",
            )
        pos += length
        if (channel, kind) == (0x01, 0x75):
            metrics["battery_pct"] = float(value[0])
        elif (channel, kind) in ((0x03, 0x67), (0x83, 0xD7)):
            # No failure markers here: as a signed value 0xFFFF/0xFFFD are -0.1/-0.3 °C, real winter soil.
            metrics["soil_temperature_c"] = int.from_bytes(value[0:2], "little", signed=True) / 10
        elif (channel, kind) == (0x04, 0x68):
            metrics["soil_moisture_pct"] = value[0] / 2
        elif (channel, kind) == (0x04, 0xCA):
            raw = int.from_bytes(value, "little")
            if raw not in _PROBE_FAILED:
                metrics["soil_moisture_pct"] = raw / 100
        elif (channel, kind) == (0x05, 0x7F):
            raw = int.from_bytes(value, "little")
            if raw not in _PROBE_FAILED:
                metrics["soil_conductivity_us_cm"] = float(raw)
        elif channel == 0x20:
            history_only = True
    if not metrics and history_only:
        raise DecodeError(
            "the Milesight frame holds only stored history records, which are not ingested", kind="bad_bytes"
        )
    return metrics


def _record_length(channel: int, kind: int, pos: int) -> int:
    lengths = {
        (0x01, 0x75): 1,
        (0x03, 0x67): 2,
        (0x04, 0x68): 1,
        (0x04, 0xCA): 2,
        (0x05, 0x7F): 2,
        (0x83, 0xD7): 5,
        (0x20, 0xCE): _HISTORY_LENGTH,
    }
    if (channel, kind) in lengths:
        return lengths[(channel, kind)]
    if channel == 0xFF and kind in _INFO_LENGTHS:
        return _INFO_LENGTHS[kind]
    raise DecodeError(
        f"unknown Milesight record {channel:#04x}/{kind:#04x} at byte {pos - 2}; is this an EM500-SMTC?",
        kind="bad_bytes",
    )


def encode(metrics: Mapping[str, float]) -> bytes:
    """The frame a current-firmware EM500-SMTC sends for ``metrics`` (simulator side); absent ones are left out."""
    extra = set(metrics) - CARRIES
    if extra:
        raise ValueError(f"an EM500-SMTC frame cannot carry {', '.join(sorted(extra))} (battery is in percent)")
    frame = bytearray()
    try:
        if "battery_pct" in metrics:
            frame += struct.pack("<BBB", 0x01, 0x75, round(metrics["battery_pct"]))
        if "soil_temperature_c" in metrics:
            frame += struct.pack("<BBh", 0x03, 0x67, round(metrics["soil_temperature_c"] * 10))
        if "soil_moisture_pct" in metrics:
            frame += struct.pack("<BBH", 0x04, 0xCA, round(metrics["soil_moisture_pct"] * 100))
        if "soil_conductivity_us_cm" in metrics:
            frame += struct.pack("<BBH", 0x05, 0x7F, round(metrics["soil_conductivity_us_cm"]))
    except struct.error as exc:
        raise ValueError(f"value does not fit an EM500-SMTC frame: {exc}") from exc
    return bytes(frame)


def _vendor_object(metrics: Mapping[str, float]) -> dict[str, object]:
    """What Milesight's own network-server decoder outputs for the frame."""
    names = {
        "battery_pct": "battery",
        "soil_temperature_c": "temperature",
        "soil_moisture_pct": "moisture",
        "soil_conductivity_us_cm": "ec",
    }
    whole = {"battery_pct", "soil_conductivity_us_cm"}  # the vendor decoder gives these as integers
    return {names[key]: int(value) if key in whole else value for key, value in decode(encode(metrics)).items()}


EM500_SMTC = Codec(
    "milesight-em500-smtc",
    F_PORT,
    decode,
    encode,
    {
        "battery": "battery_pct",
        "temperature": "soil_temperature_c",
        "moisture": "soil_moisture_pct",
        "ec": "soil_conductivity_us_cm",
        "electricity": "soil_conductivity_us_cm",  # what newer releases of Milesight's decoder call EC
    },
    _vendor_object,
)

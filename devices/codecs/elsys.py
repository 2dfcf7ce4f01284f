"""Elsys ERS room sensors (ERS, ERS Lite, ERS CO2, ERS Eye): a run of (type, value) records, big-endian.

Elsys publishes one payload format for all its sensors (the "ELSYS simple payload decoder" in The Things
Network's device repository, vendor/elsys/elsys.js, lists every type and its length). The ERS family sends:

====== ====== ================================================================================
type   bytes  meaning
====== ====== ================================================================================
0x01   2      temperature, i16, 0.1 °C
0x02   1      relative humidity, %
0x04   2      light, lux (not stored)
0x05   1      PIR motion: triggers counted since the last uplink (0-255)
0x06   2      CO2, ppm (ERS CO2)
0x07   2      battery (VDD), mV
0x11   1      occupancy (ERS Eye): 0 vacant, 1 pending, 2 occupied
====== ====== ================================================================================

Motion is stored as ``motion`` = 1 when the count is above zero and 0 when it is zero: our metric is "was there
movement", and a count over a reporting period of several minutes says exactly that. The ERS Eye's occupancy
(2) is stored as ``presence`` (it is a heat-sensor array that sees people sitting still). The other types
(acceleration, GPS, pulses, analog inputs, sound...) belong to other Elsys models: read past, not stored.
Battery stays in volts: Elsys fits different cells in different models, so no percentage is guessed.
Elsys devices use fPort 5 by default but the port is configurable, so any port is read.

This module only converts bytes; it must not check ranges (``devices.decode.finish`` does) or know topics.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

from devices.codecs.base import Codec, FrameValues, vendor_object_of
from placesense.basics.errors import DecodeError

F_PORT = 5
# type -> value length, for every type the vendor's decoder knows (so that a frame can be read past them)
LENGTHS = {
    0x01: 2, 0x02: 1, 0x03: 3, 0x04: 2, 0x05: 1, 0x06: 2, 0x07: 2, 0x08: 2, 0x09: 6, 0x0A: 2, 0x0B: 4, 0x0C: 2,
    0x0D: 1, 0x0E: 2, 0x0F: 1, 0x10: 4, 0x11: 1, 0x12: 1, 0x13: 65, 0x14: 4, 0x15: 2, 0x16: 2, 0x17: 4, 0x18: 2,
    0x19: 2, 0x1A: 1, 0x1B: 4, 0x1C: 2, 0x3D: 4,
}
CARRIES = frozenset({"temperature_c", "humidity_pct", "motion", "co2_ppm", "battery_v", "presence"})


def decode(data: bytes, f_port: int | None = None) -> FrameValues:
    """An Elsys frame → temperature_c, humidity_pct, motion, co2_ppm, presence, battery_v (those present)."""
    if not data:
        raise DecodeError("the Elsys frame is empty", kind="bad_bytes")
    values = FrameValues()
    pos = 0
    while pos < len(data):
        kind = data[pos]
        length = LENGTHS.get(kind)
        if length is None:
            raise DecodeError(f"unknown Elsys data type {kind:#04x} at byte {pos}; is this an Elsys sensor?",
                              kind="bad_bytes")
        value = data[pos + 1 : pos + 1 + length]
        if len(value) < length:
            raise DecodeError(f"the Elsys value of type {kind:#04x} needs {length} bytes but the frame has "
                              f"{len(value)} left", kind="bad_bytes")
        pos += 1 + length
        if kind == 0x01:
            values.metrics["temperature_c"] = int.from_bytes(value, "big", signed=True) / 10
        elif kind == 0x02:
            values.metrics["humidity_pct"] = float(value[0])
        elif kind == 0x05:
            values.metrics["motion"] = 1.0 if value[0] else 0.0
        elif kind == 0x06:
            values.metrics["co2_ppm"] = float(int.from_bytes(value, "big"))
        elif kind == 0x07:
            values.metrics["battery_v"] = int.from_bytes(value, "big") / 1000
        elif kind == 0x11:
            values.metrics["presence"] = 1.0 if value[0] == 2 else 0.0
    return values


def encode(metrics: Mapping[str, float]) -> bytes:
    """The frame an ERS sends for ``metrics`` (simulator side); absent ones are left out."""
    extra = set(metrics) - CARRIES
    if extra:
        raise ValueError(f"an Elsys ERS frame cannot carry {', '.join(sorted(extra))}")
    frame = bytearray()
    try:
        if "temperature_c" in metrics:
            frame += struct.pack(">Bh", 0x01, round(metrics["temperature_c"] * 10))
        if "humidity_pct" in metrics:
            frame += struct.pack(">BB", 0x02, round(metrics["humidity_pct"]))
        if "motion" in metrics:
            frame += struct.pack(">BB", 0x05, 1 if metrics["motion"] else 0)
        if "co2_ppm" in metrics:
            frame += struct.pack(">BH", 0x06, round(metrics["co2_ppm"]))
        if "battery_v" in metrics:
            frame += struct.pack(">BH", 0x07, round(metrics["battery_v"] * 1000))
        if "presence" in metrics:
            frame += struct.pack(">BB", 0x11, 2 if metrics["presence"] else 0)
    except struct.error as exc:
        raise ValueError(f"value does not fit an Elsys frame: {exc}") from exc
    return bytes(frame)


# The field names of Elsys's decoder, which gives the battery in millivolts and motion as the count of triggers.
_VENDOR_FIELDS = {
    "temperature": "temperature_c",
    "humidity": "humidity_pct",
    "motion": "motion",
    "co2": "co2_ppm",
    "vdd": "battery_v",
}
_IGNORED = frozenset({
    "light", "x", "y", "z", "accMotion", "occupancy", "irInternalTemperature", "irExternalTemperature", "pressure",
    "soundPeak", "soundAvg", "tvoc", "externalTemperature", "digital", "waterleak", "analog1", "analog2", "pulse1",
    "pulseAbs", "pulse2", "pulseAbs2", "lat", "long", "distance", "grideye",
})


def _mirror(metrics: Mapping[str, float]) -> dict[str, object]:
    obj = vendor_object_of(decode, encode, {v: k for k, v in _VENDOR_FIELDS.items()})(metrics)
    if "vdd" in obj:
        obj["vdd"] = round(float(str(obj["vdd"])) * 1000)  # Elsys's decoder gives millivolts
    return obj


ERS = Codec(
    "elsys-ers",
    F_PORT,
    decode,
    encode,
    _VENDOR_FIELDS,
    _mirror,
    ignored_fields=_IGNORED,
    vendor_conversions={"vdd": lambda millivolts: millivolts / 1000, "motion": lambda count: 1.0 if count else 0.0},
)

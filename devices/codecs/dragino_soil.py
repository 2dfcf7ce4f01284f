"""Dragino's soil moisture / temperature / conductivity frame (LSE01 and SE01-LB share it).

Measurement frames arrive on fPort 2 and are 11 bytes, big-endian:

====== ====== =================================================================
bytes  type   meaning
====== ====== =================================================================
0-1    u16    battery in mV; the top two bits are flags, so only the low 14 count
2-3    i16    optional external DS18B20 probe, 0.1 °C (not a soil value: ignored)
4-5    u16    volumetric soil moisture, 0.01 %
6-7    i16    soil temperature, 0.01 °C (two's complement below zero)
8-9    u16    soil conductivity, µS/cm
10     u8     bit 7 MOD (0 calibrated values, 1 raw dielectric/ADC values),
              bit 4 soil probe detected, bits 0-3 interrupt flag
====== ====== =================================================================

A frame whose probe is not detected, or that is in raw mode (MOD=1), carries no trustworthy soil values:
only the battery is kept, so a missing probe never looks like bone-dry soil (which would send a crew out
with water). Battery percent comes from ``battery_pct_from_volts`` (a rough linear Li-SOCl2 curve).

This module only converts bytes; it must not check ranges (``devices.decode.finish`` does) or know topics.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

from devices.codecs.base import Codec, battery_pct_from_volts, volts_from_battery_pct
from placesense.errors import DecodeError

FRAME = struct.Struct(">HhHhHB")
F_PORT = 2
_MOD_RAW = 0x80
_PROBE_FOUND = 0x10
CARRIES = frozenset({"soil_moisture_pct", "soil_temperature_c", "soil_conductivity_us_cm", "battery_v", "battery_pct"})


def decode(data: bytes) -> dict[str, float]:
    """An 11-byte fPort 2 frame → battery_v, battery_pct and (probe present, calibrated mode) soil metrics."""
    if len(data) != FRAME.size:
        raise DecodeError(
            f"a Dragino soil sensor frame (fPort {F_PORT}) is {FRAME.size} bytes; this one is {len(data)}",
            kind="bad_bytes",
        )
    battery_mv, _probe_temp, moisture, soil_temp, conductivity, flags = FRAME.unpack(data)
    battery_v = (battery_mv & 0x3FFF) / 1000
    metrics = {"battery_v": battery_v, "battery_pct": battery_pct_from_volts(battery_v)}
    if flags & _PROBE_FOUND and not flags & _MOD_RAW:
        metrics["soil_moisture_pct"] = moisture / 100
        metrics["soil_temperature_c"] = soil_temp / 100
        metrics["soil_conductivity_us_cm"] = float(conductivity)
    return metrics


def encode(metrics: Mapping[str, float]) -> bytes:
    """The frame a healthy sensor in calibrated mode sends for ``metrics`` (simulator side).

    Needs soil_moisture_pct, soil_temperature_c and battery_v or battery_pct; conductivity defaults to 0,
    as a probe in dry air reads.
    """
    extra = set(metrics) - CARRIES
    if extra:
        raise ValueError(f"a Dragino soil frame cannot carry {', '.join(sorted(extra))}")
    missing = {"soil_moisture_pct", "soil_temperature_c"} - set(metrics)
    if missing:
        raise ValueError(f"a Dragino soil frame needs {', '.join(sorted(missing))}")
    if "battery_v" in metrics:
        battery_v = float(metrics["battery_v"])
    elif "battery_pct" in metrics:
        battery_v = volts_from_battery_pct(float(metrics["battery_pct"]))
    else:
        raise ValueError("a Dragino soil frame needs battery_v or battery_pct")
    try:
        return FRAME.pack(
            round(battery_v * 1000),
            0,
            round(metrics["soil_moisture_pct"] * 100),
            round(metrics["soil_temperature_c"] * 100),
            round(metrics.get("soil_conductivity_us_cm", 0.0)),
            _PROBE_FOUND,
        )
    except struct.error as exc:
        raise ValueError(f"value does not fit a Dragino soil frame: {exc}") from exc


def _lse01_object(metrics: Mapping[str, float]) -> dict[str, object]:
    """What Dragino's LSE01 network-server decoder outputs (numbers as text, as its ``toFixed`` makes)."""
    fields = decode(encode(metrics))
    return {
        "Bat": fields["battery_v"],
        "TempC_DS18B20": "0.0",
        "water_SOIL": f"{fields['soil_moisture_pct']:.2f}",
        "temp_SOIL": f"{fields['soil_temperature_c']:.2f}",
        "conduct_SOIL": int(fields["soil_conductivity_us_cm"]),
    }


def _se01_object(metrics: Mapping[str, float]) -> dict[str, object]:
    """What Dragino's SE01-LB network-server decoder outputs (lower-case names, flags alongside)."""
    fields = decode(encode(metrics))
    return {
        "battery": fields["battery_v"],
        "temperature_pro": "0.00",
        "moisture_soil": f"{fields['soil_moisture_pct']:.2f}",
        "temp_soil": f"{fields['soil_temperature_c']:.2f}",
        "conduct_soil": int(fields["soil_conductivity_us_cm"]),
        "s_flag": 1,
        "i_flag": 0,
        "Mod": 0,
    }


# Dragino renamed the keys between decoder releases of the same family, so each model accepts both spellings.
_DECODED_FIELDS: dict[str, str] = {
    "Bat": "battery_v",
    "BatV": "battery_v",
    "battery": "battery_v",
    "water_SOIL": "soil_moisture_pct",
    "moisture_soil": "soil_moisture_pct",
    "temp_SOIL": "soil_temperature_c",
    "temp_soil": "soil_temperature_c",
    "conduct_SOIL": "soil_conductivity_us_cm",
    "conduct_soil": "soil_conductivity_us_cm",
}

LSE01 = Codec("dragino-lse01", F_PORT, decode, encode, _DECODED_FIELDS, _lse01_object)
SE01_LB = Codec("dragino-se01-lb", F_PORT, decode, encode, _DECODED_FIELDS, _se01_object)

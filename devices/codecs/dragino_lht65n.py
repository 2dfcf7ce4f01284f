"""Dragino LHT65N temperature and humidity sensor (indoor climate: cold and damp homes).

Measurement frames arrive on fPort 2 and are 11 bytes, big-endian (Dragino's LHT65N manual and decoders):

====== ====== =====================================================================================
bytes  type   meaning
====== ====== =====================================================================================
0-1    u16    battery mV in the low 14 bits; the top two bits are its status (3 good ... 0 ultra low)
2-3    i16    built-in SHT temperature, 0.01 °C
4-5    u16    built-in SHT relative humidity, 0.1 % (low 12 bits)
6      u8     external sensor type in the low bits (0 none, 1 DS18B20, ...); bit 7 "not connected"
7-10          the external sensor's value (not stored: a probe on a lead, not the room's air)
====== ====== =====================================================================================

In the timestamp modes (external type 9 and 10) bytes 0-1 hold the external probe's temperature instead of the
battery, so no battery is read from those frames. fPort 5 is the status frame (model, firmware, band, sub-band,
battery mV): its battery is stored. fPort 3 carries datalog records (stored readings re-sent on request with
their own timestamps), which placesense does not backfill: refused with that reason.

The LHT65N runs on a built-in 2400 mAh Li-MnO2 cell (CR17450); its battery status bits mark ultra low at or below
2.50 V, low up to 2.55 V, OK up to 2.65 V and good above. ``LHT65N_LI_MNO2`` puts ultra low at the battery rule's
critical edge (10 %) and low at its warning edge (20 %).

This module only converts bytes; it must not check ranges (``devices.decode.finish`` does) or know topics.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

from devices.codecs.base import BatteryCurve, Codec, FrameValues, vendor_object_of
from placesense.basics.errors import DecodeError

F_PORT = 2
STATUS_PORT = 5
DATALOG_PORT = 3
FRAME = struct.Struct(">HhHB4s")
STATUS = struct.Struct(">BBBBBH")
_TIMESTAMP_MODES = frozenset({0x09, 0x0A})
LHT65N_LI_MNO2 = BatteryCurve(((2.4, 0.0), (2.5, 10.0), (2.55, 20.0), (3.0, 90.0), (3.1, 100.0)))
CARRIES = frozenset({"temperature_c", "humidity_pct", "battery_v", "battery_pct"})


def _battery(values: FrameValues, millivolts: int) -> None:
    volts = millivolts / 1000
    values.metrics["battery_v"] = volts
    values.metrics["battery_pct"] = LHT65N_LI_MNO2.pct(volts)


def decode(data: bytes, f_port: int | None = F_PORT) -> FrameValues:
    """An fPort 2 measurement frame or an fPort 5 status frame → temperature_c, humidity_pct and battery."""
    if f_port == STATUS_PORT:
        if len(data) != STATUS.size:
            raise DecodeError(f"an LHT65N status frame (fPort 5) is {STATUS.size} bytes; this one is {len(data)}",
                              kind="bad_bytes")
        values = FrameValues()
        _battery(values, STATUS.unpack(data)[5])
        return values
    if f_port == DATALOG_PORT:
        raise DecodeError(
            "LHT65N datalog frame (fPort 3): stored readings re-sent on request with their own timestamps; "
            "placesense stores live readings only and does not backfill them",
            kind="history_record",
        )
    if f_port not in (None, F_PORT):
        raise DecodeError(f"fPort {f_port} is not a frame of an LHT65N (measurements come on fPort {F_PORT})",
                          kind="unsupported_port")
    if len(data) != FRAME.size:
        raise DecodeError(f"an LHT65N frame (fPort {F_PORT}) is {FRAME.size} bytes; this one is {len(data)}",
                          kind="bad_bytes")
    first, temperature, humidity, external, _ = FRAME.unpack(data)
    values = FrameValues()
    if external & 0x7F not in _TIMESTAMP_MODES:
        _battery(values, first & 0x3FFF)
    values.metrics["temperature_c"] = temperature / 100
    values.metrics["humidity_pct"] = (humidity & 0x0FFF) / 10
    return values


def encode(metrics: Mapping[str, float]) -> bytes:
    """The frame an LHT65N without an external probe sends for ``metrics`` (simulator side)."""
    extra = set(metrics) - CARRIES
    if extra:
        raise ValueError(f"an LHT65N frame cannot carry {', '.join(sorted(extra))}")
    if "battery_v" in metrics:
        volts = float(metrics["battery_v"])
    else:
        volts = LHT65N_LI_MNO2.volts(float(metrics.get("battery_pct", 100.0)))
    try:
        return FRAME.pack(
            0xC000 | round(volts * 1000),
            round(metrics.get("temperature_c", 0.0) * 100),
            round(metrics.get("humidity_pct", 0.0) * 10),
            0x00,
            b"\x7f\xff\x7f\xff",
        )
    except struct.error as exc:
        raise ValueError(f"value does not fit an LHT65N frame: {exc}") from exc


# Dragino's LHT65N decoders (TTN and ChirpStack, v1.3 to v1.5.6) and their fPort 5 status object.
_VENDOR_FIELDS = {
    "TempC_SHT": "temperature_c",
    "Hum_SHT": "humidity_pct",
    "BatV": "battery_v",
    "BAT": "battery_v",
}
_IGNORED = frozenset({
    "Bat_status", "Ext_sensor", "TempC_DS", "TempC_TMP117", "Ext_TempC_SHT", "Ext_Hum_SHT", "No_connect",
    "Work_mode", "Exti_pin_level", "Exti_status", "ILL_lx", "ADC_V", "Exit_count", "Systimestamp", "ID",
    "Node_type", "SENSOR_MODEL", "FIRMWARE_VERSION", "FREQUENCY_BAND", "SUB_BAND", "DATALOG", "retransmission_Status",
    "bat", "sensor", "Temp",
})

LHT65N = Codec(
    "dragino-lht65n",
    F_PORT,
    decode,
    encode,
    _VENDOR_FIELDS,
    vendor_object_of(decode, encode, {"temperature_c": "TempC_SHT", "humidity_pct": "Hum_SHT", "battery_v": "BatV"}),
    ignored_fields=_IGNORED,
    battery=LHT65N_LI_MNO2,
)

"""Dragino's soil moisture / temperature / conductivity frames (LSE01 and SE01-LB share them).

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

A frame whose probe is not detected, or that is in raw mode (MOD=1), carries no trustworthy soil values: only
the battery is stored and each soil metric is refused with the reason, so a missing probe never looks like
bone-dry soil (which would send a crew out with water) and never vanishes without a word either.

fPort 5 is the device status frame (sent after joining and on request), 7 bytes: model code, firmware version
(2), frequency band, sub-band, battery mV (u16): the battery is stored. fPort 3 carries datalog records (stored
readings re-sent on request with their own timestamps): placesense does not backfill them, so such a frame is
refused whole with that reason.

Battery percent comes from ``DRAGINO_LI_SOCL2`` (Dragino: replace below 2.7 V). Where Dragino's own decoders and
ours differ: their soil temperature below zero subtracts 0xFFFF instead of 0x10000, so it reads 0.01 °C high
(their manual's FF7E is "-1.29 °C"; the sensor meant -1.30 °C).

This module only converts bytes; it must not check ranges (``devices.decode.finish`` does) or know topics.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping

from devices.codecs.base import DRAGINO_LI_SOCL2, Codec, FrameValues
from placesense.basics.errors import DecodeError

FRAME = struct.Struct(">HhHhHB")
STATUS = struct.Struct(">BBBBBH")
F_PORT = 2
STATUS_PORT = 5
DATALOG_PORT = 3
_MOD_RAW = 0x80
_PROBE_FOUND = 0x10
SOIL_METRICS = ("soil_moisture_pct", "soil_temperature_c", "soil_conductivity_us_cm")
CARRIES = frozenset({*SOIL_METRICS, "battery_v", "battery_pct"})
PROBE_ABSENT = "the soil probe is not detected (the frame's probe flag is 0): no soil value was measured"
RAW_MODE = (
    "the sensor is in raw mode (MOD=1) and sends uncalibrated dielectric and ADC values, not soil moisture, "
    "temperature and conductivity; set it back to calibrated mode (AT+MOD=0)"
)


def _battery(values: FrameValues, millivolts: int) -> None:
    volts = millivolts / 1000
    values.metrics["battery_v"] = volts
    values.metrics["battery_pct"] = DRAGINO_LI_SOCL2.pct(volts)


def decode(data: bytes, f_port: int | None = F_PORT) -> FrameValues:
    """An fPort 2 measurement frame or an fPort 5 status frame → our metrics and refused values."""
    if f_port == STATUS_PORT:
        return _status(data)
    if f_port == DATALOG_PORT:
        raise DecodeError(
            "Dragino datalog frame (fPort 3): stored readings re-sent on request with their own timestamps; "
            "placesense stores live readings only and does not backfill them",
            kind="history_record",
        )
    if f_port not in (None, F_PORT):
        raise DecodeError(
            f"fPort {f_port} is not a frame of a Dragino soil sensor (measurements come on fPort {F_PORT}, "
            f"status on fPort {STATUS_PORT})",
            kind="unsupported_port",
        )
    if len(data) != FRAME.size:
        raise DecodeError(
            f"a Dragino soil sensor frame (fPort {F_PORT}) is {FRAME.size} bytes; this one is {len(data)}",
            kind="bad_bytes",
        )
    battery_mv, _probe_temp, moisture, soil_temp, conductivity, flags = FRAME.unpack(data)
    values = FrameValues()
    _battery(values, battery_mv & 0x3FFF)
    if not flags & _PROBE_FOUND:
        for metric in SOIL_METRICS:
            values.refuse(metric, PROBE_ABSENT, "probe_absent")
    elif flags & _MOD_RAW:
        for metric in SOIL_METRICS:
            values.refuse(metric, RAW_MODE, "raw_mode")
    else:
        values.metrics["soil_moisture_pct"] = moisture / 100
        values.metrics["soil_temperature_c"] = soil_temp / 100
        values.metrics["soil_conductivity_us_cm"] = float(conductivity)
    return values


def _status(data: bytes) -> FrameValues:
    if len(data) != STATUS.size:
        raise DecodeError(
            f"a Dragino status frame (fPort {STATUS_PORT}) is {STATUS.size} bytes; this one is {len(data)}",
            kind="bad_bytes",
        )
    values = FrameValues()
    _battery(values, STATUS.unpack(data)[5])
    return values


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
        battery_v = DRAGINO_LI_SOCL2.volts(float(metrics["battery_pct"]))
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
    fields = decode(encode(metrics)).metrics
    return {
        "Bat": fields["battery_v"],
        "TempC_DS18B20": "0.0",
        "water_SOIL": f"{fields['soil_moisture_pct']:.2f}",
        "temp_SOIL": f"{fields['soil_temperature_c']:.2f}",
        "conduct_SOIL": int(fields["soil_conductivity_us_cm"]),
    }


def _se01_object(metrics: Mapping[str, float]) -> dict[str, object]:
    """What Dragino's SE01-LB network-server decoder outputs (lower-case names, flags alongside)."""
    fields = decode(encode(metrics)).metrics
    return {
        "BatV": fields["battery_v"],
        "temp_DS18B20": "0.00",
        "water_SOIL": f"{fields['soil_moisture_pct']:.2f}",
        "temp_SOIL": f"{fields['soil_temperature_c']:.2f}",
        "conduct_SOIL": int(fields["soil_conductivity_us_cm"]),
        "s_flag": 1,
        "i_flag": 0,
        "Mod": 0,
        "Node_type": "SE01-LB",
    }


def check_vendor_object(obj: Mapping[str, object], values: FrameValues, what: str) -> None:
    """Honour the flags of Dragino's decoders: no probe (``s_flag``, or ``Sensor_flag`` in V1.1.4, is 0) or raw mode
    (``Mod`` 1) means no soil value.

    Dragino's decoders print the soil fields whatever the flags say, so without this a missing probe reads as
    0 % moisture: bone dry.
    """
    flag = next((key for key in ("s_flag", "Sensor_flag") if obj.get(key) in (0, "0")), None)
    if flag is not None:
        for metric in SOIL_METRICS:
            values.refuse(metric, f"{what}.{flag} is 0: {PROBE_ABSENT}", "probe_absent")
    elif obj.get("Mod") in (1, "1") or obj.get("MOD") in (1, "1"):
        for metric in SOIL_METRICS:
            values.refuse(metric, f"{what}.Mod is 1: {RAW_MODE}", "raw_mode")


# The spellings of Dragino's decoders: its GitHub decoders for TTN and ChirpStack (LSE01 V1.1.4/V1.2.1, the
# SE01-LB decoder), the older LSE01 decoder that appends units ("Bat": "3.6 V"), and the fPort 5 status object.
_VENDOR_FIELDS: dict[str, str] = {
    "Bat": "battery_v",
    "BatV": "battery_v",
    "BAT": "battery_v",
    "battery": "battery_v",
    "water_SOIL": "soil_moisture_pct",
    "moisture_soil": "soil_moisture_pct",
    "temp_SOIL": "soil_temperature_c",
    "temp_soil": "soil_temperature_c",
    "conduct_SOIL": "soil_conductivity_us_cm",
    "conduct_soil": "soil_conductivity_us_cm",
}
# Known and not stored: the optional DS18B20 probe (air or pipe temperature, not soil), raw-mode values (not
# calibrated: refused through ``Mod``), the calibration decoder's soil-specific recalculations (placesense stores
# the sensor's own values; thresholds are per bed instead), flags, datalog text and the status frame's fields.
_IGNORED_FIELDS = frozenset({
    "TempC_DS18B20", "temp_DS18B20", "temperature_pro", "Soil_dielectric_constant", "Raw_water_SOIL",
    "Raw_conduct_SOIL", "s_flag", "i_flag", "Mod", "MOD", "Sensor_flag", "Interrupt_flag", "Node_type",
    "SENSOR_MODEL", "FIRMWARE_VERSION", "FREQUENCY_BAND", "SUB_BAND", "Moisture_After_Cal", "EC_After_Cal",
    "DATALOG", "PNACKMD",
})


def _codec(model: str, mirror: Callable[[Mapping[str, float]], dict[str, object]]) -> Codec:
    return Codec(
        model,
        F_PORT,
        decode,
        encode,
        _VENDOR_FIELDS,
        mirror,
        ignored_fields=_IGNORED_FIELDS,
        check_vendor_object=check_vendor_object,
        battery=DRAGINO_LI_SOCL2,
    )


LSE01 = _codec("dragino-lse01", _lse01_object)
SE01_LB = _codec("dragino-se01-lb", _se01_object)

"""Milesight's LoRaWAN frames: a run of (channel, type, value) records on fPort 85, little-endian.

One walker reads every Milesight model; each model has a table of the records it sends (Milesight's
SensorDecoders repository documents them per model). The models placesense reads:

- **EM500-SMTC** soil sensor: battery % (0x01/0x75), soil temperature i16 0.1 °C (0x03/0x67), soil moisture
  u8 0.5 % (0x04/0x68, older firmware) or u16 0.01 % (0x04/0xCA), conductivity u16 µS/cm (0x05/0x7F), the
  temperature alarm (0x83/0xD7: i16 0.1 °C, i16 change, u8 alarm type).
- **AM103 / AM307** indoor ambience sensors: battery, temperature (0x03/0x67), humidity u8 0.5 % (0x04/0x68),
  PIR 0/1 (0x05/0x00, AM307), CO2 u16 ppm (0x07/0x7D), pressure u16 0.1 hPa (0x09/0x73); light level, TVOC and
  the buzzer are read past and not stored. The older AM100-series activity count (0x05/0x6A) counts as motion
  when above zero.
- **WS301** door/window contact: battery, magnet 0 closed / 1 open (0x03/0x00), tamper (0x04/0x00, not stored).

Device-information records (channel 0xFF: versions, serial number, class, reset, status) are read past.
History records (0x20/0xCE, 0x21/0xCE) are readings the device stored while it could not reach the network and
re-sends later, each with its own timestamp. placesense stores one reading per uplink at the uplink's time and
does not backfill, so they are refused with that reason (a dead letter keeps the frame).

A moisture or conductivity word of 0xFFFF ("collection failed") or 0xFFFD ("out of range") means the probe
could not measure: that metric is refused as "no value". Read as signed, those words are also -0.1 °C and
-0.3 °C, which frosty soil really reads, so a soil temperature with that word is refused only when the same
frame's moisture or conductivity failed too (the probe is out), and kept otherwise.

This module only converts bytes; it must not check ranges (``devices.decode.finish`` does) or know topics.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from devices.codecs.base import Codec, FrameValues, vendor_object_of
from devices.readings import RefusedMetric
from placesense.basics.errors import DecodeError

F_PORT = 85
FAILED_MARKERS = frozenset({0xFFFF, 0xFFFD})
_MARKER_MEANING = {0xFFFF: "collection failed", 0xFFFD: "out of range"}
HISTORY = (
    "history records: readings the device stored while offline and re-sends with their own timestamps; "
    "placesense stores live readings only and does not backfill them"
)


@dataclass(frozen=True, slots=True)
class Channel:
    """One record type: its value length, our metric (None: known, not stored) and how to read the value."""

    length: int
    metric: str | None = None
    read: Callable[[bytes], float] | None = None
    failed: frozenset[int] = frozenset()  # raw words meaning "no measurement"
    failed_if_probe_out: frozenset[int] = frozenset()  # ... only when another value of the frame failed
    history: bool = False


def _u8(value: bytes) -> int:
    return value[0]


def _u16(value: bytes) -> int:
    return int.from_bytes(value[0:2], "little")


def _i16(value: bytes) -> int:
    return int.from_bytes(value[0:2], "little", signed=True)


_INFO = {
    (0xFF, 0x01): Channel(1), (0xFF, 0x09): Channel(2), (0xFF, 0x0A): Channel(2), (0xFF, 0xFF): Channel(2),
    (0xFF, 0x16): Channel(8), (0xFF, 0x0F): Channel(1), (0xFF, 0xFE): Channel(1), (0xFF, 0x0B): Channel(1),
}
_BATTERY = Channel(1, "battery_pct", lambda v: float(_u8(v)))

EM500_SMTC_RECORDS: dict[tuple[int, int], Channel] = {
    **_INFO,
    (0x01, 0x75): _BATTERY,
    (0x03, 0x67): Channel(2, "soil_temperature_c", lambda v: _i16(v) / 10, failed_if_probe_out=FAILED_MARKERS),
    (0x04, 0x68): Channel(1, "soil_moisture_pct", lambda v: _u8(v) / 2),
    (0x04, 0xCA): Channel(2, "soil_moisture_pct", lambda v: _u16(v) / 100, failed=FAILED_MARKERS),
    (0x05, 0x7F): Channel(2, "soil_conductivity_us_cm", lambda v: float(_u16(v)), failed=FAILED_MARKERS),
    (0x83, 0xD7): Channel(5, "soil_temperature_c", lambda v: _i16(v) / 10),
    (0x20, 0xCE): Channel(10, history=True),
}

_AMBIENCE_COMMON: dict[tuple[int, int], Channel] = {
    **_INFO,
    (0x01, 0x75): _BATTERY,
    (0x03, 0x67): Channel(2, "temperature_c", lambda v: _i16(v) / 10),
    (0x04, 0x68): Channel(1, "humidity_pct", lambda v: _u8(v) / 2),
    (0x05, 0x00): Channel(1, "motion", lambda v: 1.0 if _u8(v) else 0.0),
    (0x05, 0x6A): Channel(2, "motion", lambda v: 1.0 if _u16(v) else 0.0),  # AM100 series: PIR activity count
    (0x06, 0x65): Channel(6),  # AM100 series: illumination, visible+infrared, infrared
    (0x06, 0xCB): Channel(1),  # light level 0-5
    (0x07, 0x7D): Channel(2, "co2_ppm", lambda v: float(_u16(v))),
    (0x08, 0x7D): Channel(2),  # TVOC, IAQ index
    (0x08, 0xE6): Channel(2),  # TVOC, µg/m³
    (0x09, 0x73): Channel(2, "pressure_hpa", lambda v: _u16(v) / 10),
    (0x0E, 0x01): Channel(1),  # buzzer
}
AM103_RECORDS = {**_AMBIENCE_COMMON, (0x20, 0xCE): Channel(9, history=True)}
AM307_RECORDS = {**_AMBIENCE_COMMON, (0x20, 0xCE): Channel(16, history=True), (0x21, 0xCE): Channel(16, history=True)}

WS301_RECORDS: dict[tuple[int, int], Channel] = {
    **_INFO,
    (0x01, 0x75): _BATTERY,
    (0x03, 0x00): Channel(1, "door_open", lambda v: 1.0 if _u8(v) else 0.0),
    (0x04, 0x00): Channel(1),  # tamper: installed / removed from its mount
}


def walk(data: bytes, records: Mapping[tuple[int, int], Channel], model: str) -> FrameValues:
    """Read every record of a frame with ``records``; unknown records end it with a ``DecodeError``."""
    if not data:
        raise DecodeError("the Milesight frame is empty", kind="bad_bytes")
    values = FrameValues()
    suspects: list[tuple[str, int]] = []
    failed: list[str] = []
    history = False
    pos = 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise DecodeError(f"the Milesight frame ends inside a record header at byte {pos}", kind="bad_bytes")
        key = (data[pos], data[pos + 1])
        channel = records.get(key)
        if channel is None:
            raise DecodeError(
                f"unknown Milesight record {key[0]:#04x}/{key[1]:#04x} at byte {pos}; is this an {model}?",
                kind="bad_bytes",
            )
        pos += 2
        value = data[pos : pos + channel.length]
        if len(value) < channel.length:
            raise DecodeError(
                f"the Milesight record {key[0]:#04x}/{key[1]:#04x} needs {channel.length} bytes but the frame has "
                f"{len(value)} left",
                kind="bad_bytes",
            )
        pos += channel.length
        history = history or channel.history
        if channel.metric is None or channel.read is None:
            continue
        raw = _u16(value) if channel.length >= 2 else value[0]
        if raw in channel.failed:
            values.refuse(
                channel.metric,
                f"the {model} reports {_MARKER_MEANING[raw]} ({raw:#06x}) for {channel.metric}: no value",
                "no_value",
            )
            failed.append(channel.metric)
            continue
        if raw in channel.failed_if_probe_out:
            suspects.append((channel.metric, raw))
        values.metrics[channel.metric] = channel.read(value)
    if failed:
        for metric, raw in suspects:
            values.refuse(
                metric,
                f"the {model} reports {_MARKER_MEANING[raw]} ({raw:#06x}) for {metric}, and its "
                f"{' and '.join(failed)} failed in the same frame: no value",
                "no_value",
            )
    if history:
        values.refused.append(RefusedMetric("history", f"the {model} frame carries {HISTORY}", "history_record"))
    return values


def _decoder(records: Mapping[tuple[int, int], Channel], model: str) -> Callable[[bytes, int | None], FrameValues]:
    def decode(data: bytes, f_port: int | None = F_PORT) -> FrameValues:
        if f_port not in (None, F_PORT):
            raise DecodeError(
                f"fPort {f_port} is not a frame of a Milesight {model} (they come on fPort {F_PORT})",
                kind="unsupported_port",
            )
        return walk(data, records, model)

    return decode


def _encoder(records: Mapping[tuple[int, int], Channel], model: str) -> Callable[[Mapping[str, float]], bytes]:
    """The frame a current-firmware device sends for ``metrics`` (simulator side); absent ones are left out."""
    layout = {
        "battery_pct": (0x01, 0x75, "<B", 1),
        "temperature_c": (0x03, 0x67, "<h", 10),
        "soil_temperature_c": (0x03, 0x67, "<h", 10),
        "humidity_pct": (0x04, 0x68, "<B", 2),
        "soil_moisture_pct": (0x04, 0xCA, "<H", 100),
        "soil_conductivity_us_cm": (0x05, 0x7F, "<H", 1),
        "motion": (0x05, 0x00, "<B", 1),
        "co2_ppm": (0x07, 0x7D, "<H", 1),
        "pressure_hpa": (0x09, 0x73, "<H", 10),
        "door_open": (0x03, 0x00, "<B", 1),
    }
    carries = {
        channel.metric for key, channel in records.items() if channel.metric is not None and key != (0x83, 0xD7)
    }

    def encode(metrics: Mapping[str, float]) -> bytes:
        extra = set(metrics) - carries
        if extra:
            raise ValueError(f"a {model} frame cannot carry {', '.join(sorted(extra))} (battery is in percent)")
        frame = bytearray()
        try:
            for name, (channel, kind, fmt, scale) in layout.items():
                if name in metrics:
                    frame += bytes((channel, kind)) + struct.pack(fmt, round(metrics[name] * scale))
        except struct.error as exc:
            raise ValueError(f"value does not fit a {model} frame: {exc}") from exc
        return bytes(frame)

    return encode


def check_em500_object(obj: Mapping[str, object], values: FrameValues, what: str) -> None:
    """Milesight's decoders and their "no value" forms: the 2024 decoder passes the sensor's markers through as
    numbers (``"ec": 65533``, ``"moisture": 655.33``); the 2025 decoder reports ``moisture_error``,
    ``electricity_error`` or ``temperature_error`` instead of the value."""
    markers = {"soil_conductivity_us_cm": (65535.0, 65533.0), "soil_moisture_pct": (655.35, 655.33)}
    for metric, marked in markers.items():
        value = values.metrics.get(metric)
        if value is not None and value in marked:
            values.refuse(metric, f"{what}: the EM500-SMTC reports {value:g}, its 'no value' marker", "no_value")
    errors = {
        "moisture_error": "soil_moisture_pct",
        "electricity_error": "soil_conductivity_us_cm",
        "ec_error": "soil_conductivity_us_cm",
        "temperature_error": "soil_temperature_c",
    }
    for key, metric in errors.items():
        if obj.get(key) is not None:
            values.refuse(metric, f"{what}.{key} = {str(obj[key])[:40]!r}: the sensor had no value", "no_value")


_MILESIGHT_INFO_FIELDS = frozenset({
    "ipso_version", "hardware_version", "firmware_version", "tsl_version", "sn", "lorawan_class", "reset_event",
    "device_status",
})


def _codec(
    model: str,
    records: Mapping[tuple[int, int], Channel],
    vendor_fields: Mapping[str, str],
    ignored: frozenset[str],
    check: Callable[[Mapping[str, object], FrameValues, str], None] | None = None,
) -> Codec:
    label = model.removeprefix("milesight-").upper()
    decode = _decoder(records, label)
    encode = _encoder(records, label)
    mirror_names: dict[str, str] = {}
    for vendor, ours in vendor_fields.items():
        mirror_names.setdefault(ours, vendor)  # the first spelling listed is the current decoder's
    return Codec(
        model,
        F_PORT,
        decode,
        encode,
        vendor_fields,
        vendor_object_of(decode, encode, mirror_names),
        ignored_fields=_MILESIGHT_INFO_FIELDS | ignored,
        check_vendor_object=check,
    )


# Field names: Milesight's SensorDecoders (2024: "ec"; 2025: "electricity") and the older decoder in The Things
# Network's device repository ("humidity" for moisture, "conductivity").
EM500_SMTC = _codec(
    "milesight-em500-smtc",
    EM500_SMTC_RECORDS,
    {
        "battery": "battery_pct",
        "temperature": "soil_temperature_c",
        "moisture": "soil_moisture_pct",
        "humidity": "soil_moisture_pct",
        "ec": "soil_conductivity_us_cm",
        "electricity": "soil_conductivity_us_cm",
        "conductivity": "soil_conductivity_us_cm",
    },
    frozenset({
        "temperature_change", "temperature_mutation", "temperature_alarm", "moisture_error", "electricity_error",
        "ec_error", "temperature_error",
    }),
    check_em500_object,
)
_AMBIENCE_FIELDS = {
    "battery": "battery_pct",
    "temperature": "temperature_c",
    "humidity": "humidity_pct",
    "pir": "motion",
    "co2": "co2_ppm",
    "pressure": "pressure_hpa",
}
_AMBIENCE_IGNORED = frozenset({
    "light_level", "tvoc", "buzzer_status", "illumination", "infrared", "infrared_and_visible", "activity",
})
AM103 = _codec("milesight-am103", AM103_RECORDS, _AMBIENCE_FIELDS, _AMBIENCE_IGNORED)
AM307 = _codec("milesight-am307", AM307_RECORDS, _AMBIENCE_FIELDS, _AMBIENCE_IGNORED)
# SensorDecoders: "magnet_status" open/close; the device repository's decoder: "door" open/close.
WS301 = _codec(
    "milesight-ws301",
    WS301_RECORDS,
    {"battery": "battery_pct", "magnet_status": "door_open", "door": "door_open"},
    frozenset({"tamper_status", "install"}),
)

"""Payload codecs of raw LoRaWAN frames, chosen by the registry's ``model`` field, and the reading of vendors'
decoded objects.

Network servers (TTN, ChirpStack) hand us the raw frame (base64), the output of a vendor's JavaScript decoder,
or both. The raw frame decoded by our own codec is the most trustworthy of them: vendor decoders differ by
repository and release (field names, numbers as text with units, "no value" markers passed through as numbers,
status flags beside values they contradict). So ``uplink_values`` decodes the frame whenever the model has a
codec and uses the decoded object only to fill metrics the frame does not carry, or on its own when there is
no frame. Reading an object alone, each model knows its vendors' spellings, honours their flags and markers,
reads numbers with units, and reports any other numeric field rather than dropping it. Our own metric names are
always accepted in a decoded object too, so a council-written payload formatter can emit them directly.

This package must not know topics or envelope formats; the format decoders in ``devices.formats`` do.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from devices.codecs import dragino_lht65n, dragino_soil, elsys, milesight
from devices.codecs.base import (
    DRAGINO_LI_SOCL2,
    BatteryCurve,
    Codec,
    FrameValues,
    battery_pct_from_volts,
    vendor_number,
    vendor_value,
    volts_from_battery_pct,
)
from devices.readings import METRIC_UNITS, RefusedMetric
from placesense.basics.errors import DecodeError

CODECS: dict[str, Codec] = {
    codec.model: codec
    for codec in (
        dragino_soil.LSE01,
        dragino_soil.SE01_LB,
        dragino_lht65n.LHT65N,
        milesight.EM500_SMTC,
        milesight.AM103,
        milesight.AM307,
        milesight.WS301,
        elsys.ERS,
    )
}


def codec_for(model: str | None) -> Codec | None:
    """The codec of a registry model name (case-insensitive), or ``None``."""
    return None if model is None else CODECS.get(model.strip().lower())


def split_battery(metrics: Mapping[str, float]) -> tuple[dict[str, float], float | None]:
    """Take ``battery_pct`` out of a codec's output: a ``Reading`` keeps it beside the metrics, not among them."""
    rest = dict(metrics)
    return rest, rest.pop("battery_pct", None)


def metrics_from_frame(model: str | None, frame: bytes, f_port: int | None) -> FrameValues:
    """Decode raw frame bytes with the codec of ``model``; a clear ``DecodeError`` if there is none."""
    codec = codec_for(model)
    if codec is None:
        known = ", ".join(sorted(CODECS))
        raise DecodeError(
            f"the uplink carries raw bytes only, and the registry model {model!r} has no payload codec "
            f"(codecs exist for: {known}); set the device's model or decode the payload on the network server",
            kind="no_codec",
        )
    return codec.decode(frame, f_port)


def _looks_numeric(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    if isinstance(value, str):
        try:
            vendor_number(value, "")
        except DecodeError:
            return False
        return True
    return False


def metrics_from_vendor_object(model: str | None, decoded: Mapping[str, object], what: str) -> FrameValues:
    """Our metrics (and ``battery_pct``) from a network server's decoded object, with the values it refuses.

    Keys the model's vendor decoders use are renamed, our own metric names pass as they are, and keys the model
    knows it does not store (flags, versions, probes we do not read) are skipped. A value that is null, not a
    number, in the wrong unit or a "no value" marker is refused with its reason; so is any other numeric field
    of a model we have a codec for, and stored history records, so that nothing is dropped without a word.
    """
    codec = codec_for(model)
    renames: Mapping[str, str] = codec.vendor_fields if codec is not None else {}
    ignored = codec.ignored_fields if codec is not None else frozenset()
    conversions = codec.vendor_conversions if codec is not None else {}
    values = FrameValues()
    for key, value in decoded.items():
        name = renames.get(key)
        if name is None and (key in METRIC_UNITS or key == "battery_pct"):
            name = key
        if name is None:
            if key == "history":
                values.refused.append(RefusedMetric(
                    "history",
                    f"{what}.history: readings the device stored while offline and re-sent with their own "
                    "timestamps; placesense stores live readings only and does not backfill them",
                    "history_record",
                ))
            elif codec is not None and key not in ignored and _looks_numeric(value):
                values.refused.append(RefusedMetric(
                    key,
                    f"{what}.{key} = {str(value)[:40]!r} is a field placesense does not know for model "
                    f"{codec.model}; it was not stored",
                    "unknown_field",
                ))
            continue
        if name in values.metrics:
            continue  # two spellings of one value (an old and a new decoder's): the first wins
        label = f"{what}.{key}"
        convert = conversions.get(key)
        try:
            if convert is None or value is None:
                values.metrics[name] = vendor_value(name, value, label)
            else:
                values.metrics[name] = convert(vendor_number(value, label))
        except DecodeError as exc:
            values.refuse(name, exc.reason, exc.kind)
    if codec is not None and codec.check_vendor_object is not None:
        codec.check_vendor_object(decoded, values, what)
    # A model whose vendor reports volts gets the same rough percentage as its raw frames would give;
    # a device of unknown chemistry keeps volts only.
    if codec is not None and codec.battery is not None and "battery_v" in values.metrics:
        values.metrics.setdefault("battery_pct", codec.battery.pct(values.metrics["battery_v"]))
    return values


def uplink_values(
    model: str | None,
    decoded: object,
    frame_b64: object,
    f_port: object,
    names: tuple[str, str],
) -> FrameValues:
    """Metrics and refused values of one LoRaWAN uplink, as a network server hands it over.

    ``decoded`` is the server's decoded object (TTN ``decoded_payload``, ChirpStack ``object``) and
    ``frame_b64`` the raw frame; ``names`` are their field names in that envelope, for the reasons. The frame
    wins whenever the model has a codec; the object fills what the frame lacks, or stands alone without a frame.
    """
    decoded_name, frame_name = names
    if decoded is not None and not isinstance(decoded, dict):
        raise DecodeError(f"'{decoded_name}' must be an object", kind="wrong_type")
    if f_port is not None and (isinstance(f_port, bool) or not isinstance(f_port, int)):
        raise DecodeError("the fPort must be an integer", kind="wrong_type")
    frame: bytes | None = None
    if frame_b64 is not None:
        if not isinstance(frame_b64, str):
            raise DecodeError(f"'{frame_name}' must be base64 text", kind="wrong_type")
        try:
            frame = base64.b64decode(frame_b64, validate=True)
        except (binascii.Error, ValueError):
            raise DecodeError(f"'{frame_name}' is not valid base64", kind="bad_bytes") from None
    if frame is not None and codec_for(model) is not None:
        values = metrics_from_frame(model, frame, f_port)
        if decoded:
            _fill_from_object(values, metrics_from_vendor_object(model, decoded, decoded_name))
        return values
    if decoded:
        values = metrics_from_vendor_object(model, decoded, decoded_name)
        if values.metrics or values.refused:
            return values
    if frame is not None:
        return metrics_from_frame(model, frame, f_port)  # no codec: a clear error naming the models we know
    if decoded:
        keys = ", ".join(sorted(str(k) for k in decoded)[:10])
        raise DecodeError(
            f"'{decoded_name}' has no field placesense knows for model {model!r} (it has: {keys})",
            kind="empty",
        )
    raise DecodeError(f"the uplink has neither '{decoded_name}' nor '{frame_name}'", kind="missing_field")


def _fill_from_object(values: FrameValues, from_object: FrameValues) -> None:
    """Add the object's metrics the frame lacks; the frame's own values and refusals stand."""
    settled = set(values.metrics) | {r.metric for r in values.refused}
    if "battery_v" in settled:
        settled.add("battery_pct")  # the object's percentage of the same cell may come from another curve
    for name, value in from_object.metrics.items():
        if name not in settled:
            values.metrics[name] = value


__all__ = [
    "CODECS",
    "DRAGINO_LI_SOCL2",
    "BatteryCurve",
    "Codec",
    "FrameValues",
    "battery_pct_from_volts",
    "codec_for",
    "metrics_from_frame",
    "metrics_from_vendor_object",
    "split_battery",
    "uplink_values",
    "vendor_number",
    "vendor_value",
    "volts_from_battery_pct",
]

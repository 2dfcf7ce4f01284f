"""Payload codecs of raw LoRaWAN frames, chosen by the registry's ``model`` field.

Network servers (TTN, ChirpStack) hand us either the raw frame (base64) or the output of the vendor's own
JavaScript decoder. Both roads end here, so a soil sensor reads the same whichever way its network server is
set up: ``metrics_from_frame`` runs our codec over the bytes, ``metrics_from_vendor_object`` renames the
vendor decoder's fields. Our own metric names are always accepted in a decoded object too, so a council-written
payload formatter can emit them directly.

This package must not know topics or envelope formats; the format decoders in ``devices.formats`` do.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from devices.codecs import dragino_soil, milesight_em500_smtc
from devices.codecs.base import Codec, battery_pct_from_volts, vendor_number, volts_from_battery_pct
from devices.readings import METRIC_UNITS
from placesense.errors import DecodeError

CODECS: dict[str, Codec] = {
    codec.model: codec for codec in (dragino_soil.LSE01, dragino_soil.SE01_LB, milesight_em500_smtc.EM500_SMTC)
}


def codec_for(model: str | None) -> Codec | None:
    """The codec of a registry model name (case-insensitive), or ``None``."""
    return None if model is None else CODECS.get(model.strip().lower())


def split_battery(metrics: Mapping[str, float]) -> tuple[dict[str, float], float | None]:
    """Take ``battery_pct`` out of a codec's output: a ``Reading`` keeps it beside the metrics, not among them."""
    rest = dict(metrics)
    return rest, rest.pop("battery_pct", None)


def metrics_from_frame(model: str | None, frame: bytes, f_port: int | None) -> dict[str, float]:
    """Decode raw frame bytes with the codec of ``model``; a clear ``DecodeError`` if there is none."""
    codec = codec_for(model)
    if codec is None:
        known = ", ".join(sorted(CODECS))
        raise DecodeError(
            f"the uplink carries raw bytes only, and the registry model {model!r} has no payload codec "
            f"(codecs exist for: {known}); set the device's model or decode the payload on the network server",
            kind="no_codec",
        )
    if f_port is not None and f_port != codec.f_port:
        raise DecodeError(
            f"fPort {f_port} is not a measurement frame of a {codec.model} (those come on fPort {codec.f_port})",
            kind="unsupported_port",
        )
    return codec.decode(frame)


def metrics_from_vendor_object(model: str | None, decoded: Mapping[str, object], what: str) -> dict[str, float]:
    """Our metrics (and ``battery_pct``) from a network server's decoded object.

    Keys the model's vendor decoder uses are renamed; our own metric names pass as they are; anything else
    (flags, firmware versions, history) is ignored. ``null`` values mean "not measured" and are skipped.
    """
    codec = codec_for(model)
    renames: Mapping[str, str] = codec.decoded_fields if codec is not None else {}
    metrics: dict[str, float] = {}
    for key, value in decoded.items():
        name = renames.get(key)
        if name is None and (key in METRIC_UNITS or key == "battery_pct"):
            name = key
        if name is None or value is None:
            continue
        if isinstance(value, bool) and METRIC_UNITS.get(name, ("",))[0] == "bool":
            metrics[name] = 1.0 if value else 0.0
            continue
        metrics[name] = vendor_number(value, f"{what}.{key}")
    # A model whose vendor reports volts gets the same rough percentage as its raw frames would give;
    # a device of unknown chemistry keeps volts only.
    volts_model = codec is not None and "battery_v" in codec.decoded_fields.values()
    if volts_model and "battery_v" in metrics and "battery_pct" not in metrics:
        metrics["battery_pct"] = battery_pct_from_volts(metrics["battery_v"])
    return metrics


def uplink_metrics(
    model: str | None,
    decoded: object,
    frame_b64: object,
    f_port: object,
    names: tuple[str, str],
) -> tuple[dict[str, float], float | None]:
    """Metrics and battery percent of one LoRaWAN uplink, as a network server hands it over.

    ``decoded`` is the server's decoded object (TTN ``decoded_payload``, ChirpStack ``object``) and
    ``frame_b64`` the raw frame; ``names`` are their field names in that envelope, for the reasons. The
    decoded object wins when it yields anything we know, else the frame goes through our codec.
    """
    decoded_name, frame_name = names
    if decoded is not None and not isinstance(decoded, dict):
        raise DecodeError(f"'{decoded_name}' must be an object", kind="wrong_type")
    if f_port is not None and (isinstance(f_port, bool) or not isinstance(f_port, int)):
        raise DecodeError("the fPort must be an integer", kind="wrong_type")
    if decoded:
        metrics = metrics_from_vendor_object(model, decoded, decoded_name)
        if metrics:
            return split_battery(metrics)
    if frame_b64 is not None:
        if not isinstance(frame_b64, str):
            raise DecodeError(f"'{frame_name}' must be base64 text", kind="wrong_type")
        try:
            frame = base64.b64decode(frame_b64, validate=True)
        except (binascii.Error, ValueError):
            raise DecodeError(f"'{frame_name}' is not valid base64", kind="bad_bytes") from None
        return split_battery(metrics_from_frame(model, frame, f_port))
    if decoded:
        keys = ", ".join(sorted(str(k) for k in decoded)[:10])
        raise DecodeError(
            f"'{decoded_name}' has no field placesense knows for model {model!r} (it has: {keys})",
            kind="empty",
        )
    raise DecodeError(f"the uplink has neither '{decoded_name}' nor '{frame_name}'", kind="missing_field")


__all__ = [
    "CODECS",
    "Codec",
    "battery_pct_from_volts",
    "codec_for",
    "metrics_from_frame",
    "metrics_from_vendor_object",
    "split_battery",
    "uplink_metrics",
    "vendor_number",
    "volts_from_battery_pct",
]

"""The Things Stack (TTN v3) uplink messages (``v3/{application}@{tenant}/devices/{device_id}/up``).

Reads ``end_device_ids.device_id`` (checked against the topic's device by ``finish``), the event time
(``uplink_message.received_at``, else the top-level ``received_at``: the network server's clock, so a
redelivered message keeps its time), ``f_cnt`` as the sequence number, the first gateway's RSSI and SNR, and
the measurements: the raw ``frm_payload`` through our codec for the registry model whenever there is one, with
``decoded_payload`` (TTN's payload formatter) filling what the frame lacks or standing alone without a frame
(see ``devices.codecs``).

Simulated uplinks (the console's "simulate uplink", ``"simulated": true``) carry the zero time
``0001-01-01T00:00:00Z`` as ``uplink_message.received_at`` and no radio metadata: a zero time is no time, so the
top-level ``received_at`` (when the Application Server handled it) is used, else the receive time. They are
stored like any uplink.

This module must not range-check values (``devices.decode.finish`` does) or know MQTT.
"""

from __future__ import annotations

from typing import Any

from devices.codecs import split_battery, uplink_values
from devices.formats.base import Decoded, parse_timestamp, radio_metrics
from devices.registry import DeviceSpec
from devices.topics import TopicInfo
from placesense.basics.errors import DecodeError


def _object(parent: dict[str, Any], key: str, what: str, required: bool = True) -> dict[str, Any]:
    value = parent.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        problem = "missing" if value is None else f"must be an object, got {type(value).__name__}"
        raise DecodeError(f"'{what}' {problem}", kind="missing_field" if value is None else "wrong_type")
    return value


def decode(info: TopicInfo, payload: dict[str, Any], device: DeviceSpec) -> Decoded:
    ids = _object(payload, "end_device_ids", "end_device_ids")
    claimed = ids.get("device_id")
    if not isinstance(claimed, str):
        raise DecodeError("'end_device_ids.device_id' must be the device id as text", kind="missing_field")
    app = _object(ids, "application_ids", "end_device_ids.application_ids", required=False).get("application_id")
    if isinstance(app, str) and info.application and app != info.application.split("@", 1)[0]:
        raise DecodeError(
            f"payload says it is from application {app!r} but was published under {info.application!r}",
            kind="wrong_device",
        )
    uplink = _object(payload, "uplink_message", "uplink_message")
    values = uplink_values(
        device.model,
        uplink.get("decoded_payload"),
        uplink.get("frm_payload"),
        uplink.get("f_port"),
        ("uplink_message.decoded_payload", "uplink_message.frm_payload"),
    )
    metrics, battery = split_battery(values.metrics)
    if not metrics and battery is None and not values.refused:
        raise DecodeError("the uplink carries no measurements", kind="empty")
    metrics.update(radio_metrics(uplink.get("rx_metadata"), "uplink_message.rx_metadata", ("rssi", "channel_rssi")))
    ts_ms = _event_time(uplink, "uplink_message.received_at")
    if ts_ms is None:
        ts_ms = _event_time(payload, "received_at")
    f_cnt = uplink.get("f_cnt")
    if f_cnt is not None and (isinstance(f_cnt, bool) or not isinstance(f_cnt, int)):
        raise DecodeError("'uplink_message.f_cnt' must be an integer", kind="wrong_type")
    return Decoded(
        metrics=metrics,
        ts_ms=ts_ms,
        battery_pct=battery,
        seq=f_cnt,
        source_device_id=claimed,
        refused=tuple(values.refused),
    )


# The Things Stack writes an unset timestamp as the zero time of Go and protobuf (year 1), as in simulated uplinks;
# nothing before 1900 is a real receive time.
_ZERO_TIME_BEFORE_MS = -2_208_988_800_000


def _event_time(parent: dict[str, Any], what: str) -> int | None:
    """``received_at`` of ``parent`` in epoch ms, or ``None`` if it is absent or the zero time (unset)."""
    key = what.rsplit(".", 1)[-1]
    if parent.get(key) is None:
        return None
    ts_ms = parse_timestamp(parent[key], what)
    return None if ts_ms < _ZERO_TIME_BEFORE_MS else ts_ms

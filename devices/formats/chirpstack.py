"""ChirpStack v4 integration events: ``application/{application_id}/device/{dev_eui}/event/up`` and ``/status``.

``up``: ``deviceInfo.devEui`` is checked against the topic's DevEUI by ``finish``; event time is ``time``
(else the first gateway's ``nsTime``); ``fCnt`` is the sequence number; measurements come from ``data`` (base64
frame) through our codec for the registry model whenever there is one, with ``object`` (the device profile's
codec ran) filling what the frame lacks or standing alone without a frame; the first ``rxInfo`` entry gives
RSSI and SNR.

``status`` (TopicInfo kind ``device_status``): only ``batteryLevel`` (percent) is read. A device on mains
power, or one whose level is unavailable, has nothing to store and is reported as such.

This module must not range-check values (``devices.decode.finish`` does) or know MQTT.
"""

from __future__ import annotations

from typing import Any

from devices.codecs import split_battery, uplink_values
from devices.formats.base import Decoded, number, parse_timestamp, radio_metrics
from devices.registry import DeviceSpec
from devices.topics import TopicInfo
from placesense.basics.errors import DecodeError


def _claimed_dev_eui(payload: dict[str, Any]) -> str:
    info = payload.get("deviceInfo")
    if not isinstance(info, dict):
        kind = "missing_field" if info is None else "wrong_type"
        raise DecodeError("'deviceInfo' must be an object with the device's devEui", kind=kind)
    dev_eui = info.get("devEui")
    if not isinstance(dev_eui, str):
        raise DecodeError("'deviceInfo.devEui' must be the DevEUI as hex text", kind="missing_field")
    return dev_eui


def _event_time(payload: dict[str, Any]) -> int | None:
    if payload.get("time") is not None:
        return parse_timestamp(payload["time"], "time")
    rx = payload.get("rxInfo")
    if isinstance(rx, list) and rx and isinstance(rx[0], dict) and rx[0].get("nsTime") is not None:
        return parse_timestamp(rx[0]["nsTime"], "rxInfo[0].nsTime")
    return None


def _status(payload: dict[str, Any], claimed: str) -> Decoded:
    if payload.get("externalPowerSource") is True:
        raise DecodeError("status event: the device is on external power and reports no battery", kind="empty")
    level = payload.get("batteryLevel")
    if level is None or payload.get("batteryLevelUnavailable") is True:
        raise DecodeError("status event carries no 'batteryLevel'", kind="empty")
    return Decoded(
        metrics={},
        ts_ms=_event_time(payload),
        battery_pct=number(level, "'batteryLevel'"),
        source_device_id=claimed,
    )


def decode(info: TopicInfo, payload: dict[str, Any], device: DeviceSpec) -> Decoded:
    claimed = _claimed_dev_eui(payload)
    if info.kind == "device_status":
        return _status(payload, claimed)
    values = uplink_values(
        device.model, payload.get("object"), payload.get("data"), payload.get("fPort"), ("object", "data")
    )
    metrics, battery = split_battery(values.metrics)
    if not metrics and battery is None and not values.refused:
        raise DecodeError("the uplink carries no measurements", kind="empty")
    metrics.update(radio_metrics(payload.get("rxInfo"), "rxInfo", ("rssi",)))
    f_cnt = payload.get("fCnt")
    if f_cnt is not None and (isinstance(f_cnt, bool) or not isinstance(f_cnt, int)):
        raise DecodeError("'fCnt' must be an integer", kind="wrong_type")
    return Decoded(
        metrics=metrics,
        ts_ms=_event_time(payload),
        battery_pct=battery,
        seq=f_cnt,
        source_device_id=claimed,
        refused=tuple(values.refused),
    )

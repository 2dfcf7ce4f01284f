"""TTN v3 uplinks and ChirpStack v4 events, shaped like the network servers publish them."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from placesense.basics.errors import DecodeError
from tests.devices.support import NOW_MS, decode_on, soil_device

LSE01_TTN = soil_device("ttn", "dragino-lse01", source_id="wrexham-bed-07")
EM500_TTN = soil_device("ttn", "milesight-em500-smtc", source_id="wrexham-bed-07")
TTN_TOPIC = "v3/wrexham-soil@ttn/devices/wrexham-bed-07/up"


def ttn_uplink(**uplink: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "f_port": 2,
        "f_cnt": 1187,
        "rx_metadata": [
            {
                "gateway_ids": {"gateway_id": "wxm-guildhall-roof", "eui": "A840411D2F084150"},
                "time": "2024-05-01T09:59:59.871201011Z",
                "timestamp": 2739158251,
                "rssi": -104,
                "channel_rssi": -104,
                "snr": -3.25,
                "uplink_token": "ChsKGQoOd3htLWd1aWxkaGFsbA==",
                "received_at": "2024-05-01T09:59:59.893001245Z",
            },
            {"gateway_ids": {"gateway_id": "wxm-library"}, "rssi": -118, "snr": -11.5},
        ],
        "settings": {
            "data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 10, "coding_rate": "4/5"}},
            "frequency": "867500000",
        },
        "received_at": "2024-05-01T09:59:59.912345678Z",
        "consumed_airtime": "0.370688s",
    }
    message.update(uplink)
    return {
        "end_device_ids": {
            "device_id": "wrexham-bed-07",
            "application_ids": {"application_id": "wrexham-soil"},
            "dev_eui": "A84041000181C4E1",
            "join_eui": "A840410000000101",
            "dev_addr": "260B5C12",
        },
        "correlation_ids": ["as:up:01HWQZ3J7S1R2QH1CE8V4X9N5T"],
        "received_at": "2024-05-01T09:59:59.915876001Z",
        "uplink_message": message,
    }


def test_ttn_raw_frame_wins_over_the_vendor_object() -> None:
    # the object rounds the battery to 3.42 V (and could carry any vendor decoder's quirks): our codec reads 3.422
    decoded = {"Bat": 3.42, "TempC_DS18B20": "0.0", "water_SOIL": "18.31", "temp_SOIL": "8.74", "conduct_SOIL": 164}
    reading = decode_on(TTN_TOPIC, ttn_uplink(decoded_payload=decoded, frm_payload="DV4AAAcnA2oApBA="), LSE01_TTN)
    assert reading.metrics == {
        "battery_v": 3.422,
        "soil_moisture_pct": 18.31,
        "soil_temperature_c": 8.74,
        "soil_conductivity_us_cm": 164.0,
        "rssi_dbm": -104.0,
        "snr_db": -3.25,
    }
    assert reading.battery_pct == 82.2
    assert reading.seq == 1187
    assert reading.ts_ms == NOW_MS - 88  # uplink_message.received_at, to the millisecond
    assert reading.device_id == "bed-07"


def test_ttn_raw_frame_through_the_codec() -> None:
    frame = bytes.fromhex("0d5e 0000 0727 036a 00a4 10")
    uplink = ttn_uplink(frm_payload=base64.b64encode(frame).decode())
    reading = decode_on(TTN_TOPIC, uplink, LSE01_TTN)
    assert reading.metrics["soil_moisture_pct"] == 18.31
    assert reading.metrics["soil_temperature_c"] == 8.74
    assert reading.metrics["battery_v"] == 3.422


def test_ttn_milesight_decoded_payload_battery_is_percent() -> None:
    decoded = {"battery": 92, "temperature": 7.9, "moisture": 41.25, "electricity": 512}
    reading = decode_on(TTN_TOPIC, ttn_uplink(f_port=85, decoded_payload=decoded), EM500_TTN)
    assert reading.battery_pct == 92
    assert "battery_v" not in reading.metrics
    assert reading.metrics["soil_conductivity_us_cm"] == 512


def test_ttn_unknown_decoded_fields_fall_back_to_the_frame() -> None:
    frame = base64.b64encode(bytes.fromhex("01755c 0367f6ff 046873")).decode()
    uplink = ttn_uplink(f_port=85, decoded_payload={"sensor": "ok"}, frm_payload=frame)
    assert decode_on(TTN_TOPIC, uplink, EM500_TTN).metrics["soil_moisture_pct"] == 57.5


def test_ttn_falls_back_to_top_level_received_at_and_no_f_cnt() -> None:
    payload = ttn_uplink(decoded_payload={"water_SOIL": "20.00"})
    del payload["uplink_message"]["received_at"], payload["uplink_message"]["f_cnt"]
    reading = decode_on(TTN_TOPIC, payload, LSE01_TTN)
    assert reading.ts_ms == NOW_MS - 85
    assert reading.seq is None


def test_ttn_without_any_time_uses_receive_time_and_without_gateways_has_no_radio_metrics() -> None:
    payload = ttn_uplink(decoded_payload={"water_SOIL": "20.00"}, rx_metadata=[])
    del payload["uplink_message"]["received_at"], payload["received_at"]
    reading = decode_on(TTN_TOPIC, payload, LSE01_TTN)
    assert reading.ts_ms == NOW_MS
    assert reading.metrics == {"soil_moisture_pct": 20.0}


def test_ttn_our_own_names_work_for_any_model() -> None:
    plain = soil_device("ttn", None, source_id="wrexham-bed-07")
    decoded = {"soil_moisture_pct": 33.3, "battery_pct": 71, "note": "council formatter v2"}
    reading = decode_on(TTN_TOPIC, ttn_uplink(decoded_payload=decoded), plain)
    assert reading.metrics["soil_moisture_pct"] == 33.3
    assert reading.battery_pct == 71


def _mutated(path: tuple[str | int, ...], value: Any, base: dict[str, Any] | None = None) -> dict[str, Any]:
    payload = copy.deepcopy(base or ttn_uplink(decoded_payload={"water_SOIL": "20.00"}))
    node: Any = payload
    for part in path[:-1]:
        node = node[part]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return payload


@pytest.mark.parametrize(
    "payload, kind, words",
    [
        (_mutated(("end_device_ids", "device_id"), "wrexham-bed-08"), "wrong_device", "'wrexham-bed-08'"),
        (_mutated(("end_device_ids", "application_ids", "application_id"), "other-app"), "wrong_device", "application"),
        (_mutated(("end_device_ids",), KeyError), "missing_field", "end_device_ids"),
        (_mutated(("end_device_ids",), ["wrexham-bed-07"]), "wrong_type", "end_device_ids"),
        (_mutated(("end_device_ids", "device_id"), 7), "missing_field", "device_id"),
        (_mutated(("uplink_message",), KeyError), "missing_field", "uplink_message"),
        (_mutated(("uplink_message", "decoded_payload"), KeyError), "missing_field", "neither"),
        (_mutated(("uplink_message", "decoded_payload"), "20.0"), "wrong_type", "decoded_payload"),
        (_mutated(("uplink_message", "f_cnt"), "12"), "wrong_type", "f_cnt"),
        (_mutated(("uplink_message", "f_cnt"), -1), "wrong_type", "seq"),
        (_mutated(("uplink_message", "f_port"), 2.5), "wrong_type", "fPort"),
        (_mutated(("uplink_message", "rx_metadata"), {"rssi": -90}), "wrong_type", "rx_metadata"),
        (_mutated(("uplink_message", "rx_metadata", 0, "rssi"), "-90"), "wrong_type", "rssi"),
        (_mutated(("uplink_message", "received_at"), "2031-01-01T00:00:00Z"), "future_timestamp", "future"),
        (_mutated(("uplink_message", "received_at"), "1970-01-01T00:00:00Z"), "past_timestamp", "days old"),
        (_mutated(("uplink_message", "received_at"), "01/05/2024 10:00"), "bad_timestamp", "RFC 3339"),
    ],
)
def test_ttn_bad_uplinks(payload: dict[str, Any], kind: str, words: str) -> None:
    with pytest.raises(DecodeError) as err:
        decode_on(TTN_TOPIC, payload, LSE01_TTN)
    assert err.value.kind == kind
    assert words in err.value.reason


@pytest.mark.parametrize(
    "payload, metric, kind",
    [
        (_mutated(("uplink_message", "decoded_payload"), {"water_SOIL": 250}), "soil_moisture_pct", "out_of_range"),
        (_mutated(("uplink_message", "decoded_payload"), {"water_SOIL": "wet"}), "soil_moisture_pct", "wrong_type"),
        (_mutated(("uplink_message", "rx_metadata", 0, "snr"), 99), "snr_db", "out_of_range"),
    ],
)
def test_ttn_one_bad_value_is_refused_alone(payload: dict[str, Any], metric: str, kind: str) -> None:
    reading = decode_on(TTN_TOPIC, payload, LSE01_TTN)
    assert [(r.metric, r.kind) for r in reading.refused] == [(metric, kind)]
    assert metric not in reading.metrics
    assert reading.metrics["rssi_dbm"] == -104  # the rest of the uplink is stored


def test_ttn_simulated_uplink_takes_the_application_server_time() -> None:
    # as lorawan-stack issue #3818 shows one: zero uplink time, no radio metadata, "simulated": true
    payload = ttn_uplink(decoded_payload={"water_SOIL": "20.00"}, received_at="0001-01-01T00:00:00Z")
    del payload["uplink_message"]["rx_metadata"], payload["uplink_message"]["f_cnt"]
    payload["simulated"] = True
    reading = decode_on(TTN_TOPIC, payload, LSE01_TTN)
    assert reading.ts_ms == NOW_MS - 85  # the top-level received_at
    del payload["received_at"]
    assert decode_on(TTN_TOPIC, payload, LSE01_TTN).ts_ms == NOW_MS  # else the receive time


@pytest.mark.parametrize(
    "device, uplink, kind, words",
    [
        (soil_device("ttn", "acme-9", source_id="wrexham-bed-07"), {"frm_payload": "AQI="}, "no_codec", "acme-9"),
        (soil_device("ttn", None, source_id="wrexham-bed-07"), {"frm_payload": "AQI="}, "no_codec", "None"),
        (LSE01_TTN, {"frm_payload": "not base64!"}, "bad_bytes", "base64"),
        (LSE01_TTN, {"frm_payload": 12}, "wrong_type", "base64"),
        (LSE01_TTN, {"frm_payload": "AQID"}, "bad_bytes", "11 bytes"),
        (LSE01_TTN, {"frm_payload": "JgEAAQH/DmA=", "f_port": 42}, "unsupported_port", "fPort 42"),
        (LSE01_TTN, {"frm_payload": "JgEAAQH/DmA=", "f_port": 5}, "bad_bytes", "status frame (fPort 5) is 7 bytes"),
    ],
)
def test_ttn_raw_frames_that_cannot_be_read(device: Any, uplink: dict[str, Any], kind: str, words: str) -> None:
    with pytest.raises(DecodeError) as err:
        decode_on(TTN_TOPIC, ttn_uplink(**uplink), device)
    assert err.value.kind == kind
    assert words in err.value.reason


# ------------------------------------------------------------------------------------------------- ChirpStack

SE01_CS = soil_device("chirpstack", "dragino-se01-lb", source_id="A84041C3A1B2C3D4")
EM500_CS = soil_device("chirpstack", "milesight-em500-smtc", source_id="24e124126b212345")
APP = "8c5d1fc7-3b4f-4a5e-9c1d-2b7f6e0a9d13"


def cs_up(dev_eui: str = "a84041c3a1b2c3d4", **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "deduplicationId": "3f0a2c1e-77b9-4d2e-b5a8-0c9e1f2d3b4a",
        "time": "2024-05-01T09:59:58.250117203+00:00",
        "deviceInfo": {
            "tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242",
            "tenantName": "Wrexham County Borough Council",
            "applicationId": APP,
            "applicationName": "flowerbeds",
            "deviceProfileId": "a1b2c3d4-0000-4000-8000-000000000001",
            "deviceProfileName": "Dragino SE01-LB EU868",
            "deviceName": "bed-07 Queens Square",
            "devEui": dev_eui,
            "deviceClassEnabled": "CLASS_A",
            "tags": {"ward": "offa"},
        },
        "devAddr": "01f3a9c2",
        "adr": True,
        "dr": 5,
        "fCnt": 412,
        "fPort": 2,
        "confirmed": False,
        "rxInfo": [
            {
                "gatewayId": "a840411d2f084150",
                "uplinkId": 51342,
                "nsTime": "2024-05-01T09:59:58.291450020+00:00",
                "rssi": -97,
                "snr": 6.2,
                "channel": 4,
                "location": {"latitude": 53.046, "longitude": -2.993},
                "context": "7M7K1w==",
                "metadata": {"region_config_id": "eu868", "region_common_name": "EU868"},
                "crcStatus": "CRC_OK",
            }
        ],
        "txInfo": {
            "frequency": 867300000,
            "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": 7, "codeRate": "CR_4_5"}},
        },
    }
    event.update(fields)
    return event


def cs_topic(dev_eui: str = "a84041c3a1b2c3d4", event: str = "up") -> str:
    return f"application/{APP}/device/{dev_eui}/event/{event}"


def test_chirpstack_raw_data_through_the_codec() -> None:
    frame = base64.b64encode(bytes.fromhex("0cf0 0000 0bb8 02d5 0190 10")).decode()
    reading = decode_on(cs_topic(), cs_up(data=frame), SE01_CS)
    assert reading.metrics == {
        "battery_v": 3.312,
        "soil_moisture_pct": 30.0,
        "soil_temperature_c": 7.25,
        "soil_conductivity_us_cm": 400.0,
        "rssi_dbm": -97.0,
        "snr_db": 6.2,
    }
    assert reading.battery_pct == 71.2
    assert reading.seq == 412
    assert reading.ts_ms == NOW_MS - 1750


def test_chirpstack_object_from_the_vendor_codec() -> None:
    obj = {
        "battery": 3.31,
        "temperature_pro": "0.00",
        "moisture_soil": "30.00",
        "temp_soil": "7.25",
        "conduct_soil": 400,
        "s_flag": 1,
        "i_flag": 0,
        "Mod": 0,
    }
    reading = decode_on(cs_topic(), cs_up(object=obj, data="DPAAAAu4AtUBkBA="), SE01_CS)
    assert reading.metrics["soil_moisture_pct"] == 30.0
    assert reading.metrics["battery_v"] == 3.312  # the frame's own reading, not the object's rounded one
    del obj["battery"]
    reading = decode_on(cs_topic(), cs_up(object=obj), SE01_CS)  # without a frame the object stands alone
    assert reading.metrics["soil_temperature_c"] == 7.25
    assert "battery_v" not in reading.metrics


def test_chirpstack_dev_eui_case_does_not_matter() -> None:
    reading = decode_on(cs_topic(), cs_up(dev_eui="A84041C3A1B2C3D4", object={"moisture_soil": "30"}), SE01_CS)
    assert reading.device_id == "bed-07"


def test_chirpstack_without_time_takes_the_network_server_time() -> None:
    event = cs_up(object={"moisture_soil": "30"})
    del event["time"]
    assert decode_on(cs_topic(), event, SE01_CS).ts_ms == NOW_MS - 1709


def test_chirpstack_status_event_gives_battery_only() -> None:
    status = {
        "deduplicationId": "9b1e2f3a-1111-4c4c-9d9d-5e5e5e5e5e5e",
        "time": "2024-05-01T09:30:00.000000000+00:00",
        "deviceInfo": cs_up(dev_eui="24e124126b212345")["deviceInfo"],
        "margin": 9,
        "externalPowerSource": False,
        "batteryLevelUnavailable": False,
        "batteryLevel": 84.65,
    }
    reading = decode_on(cs_topic("24e124126b212345", "status"), status, EM500_CS)
    assert reading.battery_pct == 84.65
    assert reading.metrics == {}
    assert reading.ts_ms == NOW_MS - 1_800_000


@pytest.mark.parametrize(
    "fields, words",
    [
        ({"externalPowerSource": True, "batteryLevel": 0}, "external power"),
        ({"batteryLevelUnavailable": True, "batteryLevel": 0}, "no 'batteryLevel'"),
        ({}, "no 'batteryLevel'"),
    ],
)
def test_chirpstack_status_without_a_battery_level(fields: dict[str, Any], words: str) -> None:
    status = {"time": "2024-05-01T09:30:00+00:00", "deviceInfo": {"devEui": "a84041c3a1b2c3d4"}, **fields}
    with pytest.raises(DecodeError, match=words) as err:
        decode_on(cs_topic(event="status"), status, SE01_CS)
    assert err.value.kind == "empty"


@pytest.mark.parametrize(
    "event, kind, words",
    [
        (cs_up(dev_eui="a84041c3a1b2ffff", object={"moisture_soil": "30"}), "wrong_device", "'a84041c3a1b2ffff'"),
        ({**cs_up(object={"moisture_soil": "30"}), "deviceInfo": None}, "missing_field", "deviceInfo"),
        ({**cs_up(object={"moisture_soil": "30"}), "deviceInfo": "a84041c3a1b2c3d4"}, "wrong_type", "deviceInfo"),
        ({**cs_up(object={"moisture_soil": "30"}), "deviceInfo": {"devEUI": "x"}}, "missing_field", "devEui"),
        (cs_up(), "missing_field", "neither 'object' nor 'data'"),
        (cs_up(object={"moisture_soil": "30"}, fCnt="412"), "wrong_type", "fCnt"),
        (cs_up(object={"moisture_soil": "30"}, rxInfo="gw"), "wrong_type", "rxInfo"),
        (cs_up(object={"moisture_soil": "30"}, rxInfo=["gw"]), "wrong_type", "rxInfo[0]"),
        (cs_up(object={"moisture_soil": "30"}, time=1e18), "future_timestamp", "future"),
        (cs_up(object={"moisture_soil": "30"}, time=True), "wrong_type", "time"),
        (cs_up(data="DPAAAAu4AtUBkBA=", fPort=3), "history_record", "fPort 3"),
    ],
)
def test_chirpstack_bad_events(event: dict[str, Any], kind: str, words: str) -> None:
    with pytest.raises(DecodeError) as err:
        decode_on(cs_topic(), event, SE01_CS)
    assert err.value.kind == kind
    assert words in err.value.reason

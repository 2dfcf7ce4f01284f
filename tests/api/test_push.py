"""The Sensor.Community push: a registered DIY sensor's upload is stored and readable; bad ones are dead-lettered."""

from __future__ import annotations

import base64

import orjson

from tests.api.conftest import Stack
from tests.helpers import eventually

PUSH = "/api/v1/push/sensor-community"
BODY = orjson.dumps({
    "esp8266id": "1520847",
    "software_version": "NRZ-2024-135",
    "sensordatavalues": [
        {"value_type": "SDS_P1", "value": "21.40"},
        {"value_type": "SDS_P2", "value": "9.80"},
        {"value_type": "BME280_temperature", "value": "14.2"},
        {"value_type": "BME280_pressure", "value": "101325.00"},
        {"value_type": "signal", "value": "-71"},
    ],
})


def _basic(token: str) -> str:
    return "Basic " + base64.b64encode(f"airrohr:{token}".encode()).decode()


def test_push_is_stored_and_readable(stack: Stack) -> None:
    resp = stack.client.post(PUSH, content=BODY, headers={"X-Sensor": "esp8266-1520847",
                                                           "Authorization": _basic(stack.tokens["sensor"])})
    assert resp.status_code == 201, resp.text
    assert resp.json() == {"device": "air-01-diy", "stored": 1, "refused": [],
                           "metrics": ["pm10_ugm3", "pm2_5_ugm3", "pressure_hpa", "temperature_c"]}

    def pm25() -> list[float]:
        points = stack.get("/api/v1/readings?device=air-01-diy&metric=pm2_5_ugm3", "street").json()["points"]
        return [p["value"] for p in points]

    assert eventually(pm25, what="the pushed PM2.5 via the readings API") == [9.8]
    state = stack.service.device_states.get("air-01-diy")
    assert state is not None and state.last_seen_ms


def test_a_sensor_token_pushes_only_for_its_own_chips(stack: Stack) -> None:
    # A token that fitted every chip let one leaked firmware image write any registered air sensor's readings.
    before = stack.service.metrics.value("placesense_readings_stored_total")
    other = stack.client.post(PUSH, content=BODY, headers={"X-Sensor": "esp8266-1520847",
                                                            "Authorization": _basic(stack.tokens["sensor2"])})
    assert other.status_code == 403 and "esp8266-1520847" in other.json()["detail"]
    assert stack.service.metrics.value("placesense_readings_stored_total") == before
    refused = stack.get("/api/v1/audit?limit=5", "admin").json()["entries"]
    assert any(e["token_name"] == "other-sensor" and e["action"] == "refused.chip" for e in refused)


def test_push_refusals(stack: Stack) -> None:
    sensor = {"Authorization": f"Bearer {stack.tokens['sensor']}"}
    before = stack.service.dead_letters.count()
    admin = {"Authorization": f"Bearer {stack.tokens['admin']}"}  # may push for any chip, registered or not
    unknown = stack.client.post(PUSH, content=BODY, headers={**admin, "X-Sensor": "esp8266-999"})
    assert unknown.status_code == 404 and "register" in unknown.json()["detail"]
    bad = stack.client.post(PUSH, content=b'{"esp8266id": "1520847", "sensordatavalues": [{"value_type": "SDS_P1",'
                            b' "value": "lots"}]}', headers={**sensor, "X-Sensor": "esp8266-1520847"})
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    assert stack.service.dead_letters.count() == before + 2
    kinds = {d["kind"] for d in stack.service.dead_letters.recent(limit=2)}
    assert "unknown_device" in kinds
    assert stack.client.post(PUSH, content=BODY, headers={**sensor, "X-Sensor": "nonsense"}).status_code == 422
    assert stack.client.post(PUSH, content=b"x" * 70_000,
                             headers={**sensor, "X-Sensor": "esp8266-1520847"}).status_code == 413
    for who in ("street", "display", "care"):
        resp = stack.client.post(PUSH, content=BODY, headers={**stack.auth(who), "X-Sensor": "esp8266-1520847"})
        assert resp.status_code == 403, who
    assert stack.client.post(PUSH, content=BODY, headers={"X-Sensor": "esp8266-1520847"}).status_code == 401


def test_push_in_sensor_community_form_and_ppd42ns_counts_are_refused(stack: Stack) -> None:
    # what the airrohr firmware sends to Sensor.Community itself: the chip only in X-Sensor, the sensor in X-PIN,
    # the sensor prefix stripped (sendSensorCommunity in airrohr-firmware.ino)
    sensor = {"Authorization": _basic(stack.tokens["sensor"]), "X-Sensor": "esp8266-1520847"}
    pm = orjson.dumps({"software_version": "NRZ-2024-135", "sensordatavalues": [
        {"value_type": "P1", "value": "12.30"}, {"value_type": "P2", "value": "5.80"}]})
    resp = stack.client.post(PUSH, content=pm, headers={**sensor, "X-PIN": "1"})
    assert resp.status_code == 201, resp.text
    assert resp.json()["metrics"] == ["pm10_ugm3", "pm2_5_ugm3"]

    # own-API form with a PPD42NS (counts, bare P1/P2 with durP1/ratioP1) beside an SDS011 (µg/m³)
    both = orjson.dumps({"esp8266id": "1520847", "software_version": "NRZ-2024-135", "sensordatavalues": [
        {"value_type": "durP1", "value": "385236"}, {"value_type": "ratioP1", "value": "1.28"},
        {"value_type": "P1", "value": "666.20"}, {"value_type": "SDS_P1", "value": "12.30"}]})
    before = stack.service.dead_letters.count()
    resp = stack.client.post(PUSH, content=both, headers=sensor)
    assert resp.status_code == 201, resp.text
    assert resp.json()["metrics"] == ["pm10_ugm3"] and resp.json()["refused"] == ["pm10_ugm3"]
    assert stack.service.dead_letters.count() == before + 1
    [letter] = stack.service.dead_letters.recent(limit=1)
    assert letter["kind"] == "not_a_concentration" and "particle count" in letter["reason"]

    counts = orjson.dumps({"software_version": "NRZ-2024-135", "sensordatavalues": [
        {"value_type": "P1", "value": "666.20"}, {"value_type": "P2", "value": "1977.74"}]})
    resp = stack.client.post(PUSH, content=counts, headers={**sensor, "X-PIN": "5"})
    assert resp.status_code == 422 and "particle count" in resp.json()["detail"]
    assert stack.client.post(PUSH, content=pm, headers={**sensor, "X-PIN": "one"}).status_code == 422

"""The rest of the paths: operations, dead letters, devices, watering, air, homes, pages and the OpenAPI schema."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from api.flowerbeds import walking_order
from api.timefmt import rfc3339
from tests.api.conftest import Stack, now_ms, telemetry
from tests.helpers import eventually

MINUTE = 60_000

CONTRACT_PATHS = {
    "/healthz", "/metrics", "/api/v1/readings", "/api/v1/alerts", "/api/v1/alerts/{alert_id}/ack",
    "/api/v1/alerts/{alert_id}/resolve", "/api/v1/alerts/stream", "/api/v1/homes/{home}/routine",
    "/api/v1/flowerbeds/watering", "/api/v1/air/sites", "/api/v1/devices", "/api/v1/dead-letters",
    "/api/v1/push/sensor-community",
}


def test_openapi_lists_every_contract_path_with_bearer_auth(stack: Stack) -> None:
    schema = stack.client.get("/openapi.json").json()
    assert set(schema["paths"]) >= CONTRACT_PATHS
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert stack.client.get("/docs").status_code == 200


def test_healthz_and_metrics(stack: Stack) -> None:
    health = stack.get("/healthz", None).json()
    assert health["status"] == "ok" and health["mqtt_connected"] is True
    metrics = stack.get("/metrics", "admin")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "placesense_spool_segments" in metrics.text


def test_dead_letters_show_payload_as_text_or_base64(stack: Stack, publish: Callable[[str, bytes], None]) -> None:
    prefix = stack.prefix
    publish(f"{prefix}placesense/v1/home/h-0001-kitchen-pir/telemetry", b'{"ts": 1, "metrics": {')
    publish(f"{prefix}placesense/v1/soil/bed-01-soil/telemetry", b"\xff\xfe\x00binary")
    eventually(lambda: stack.get("/api/v1/dead-letters?kind=malformed_json", "admin").json()["total"] >= 2,
               what="two malformed messages dead-lettered")
    page = stack.get("/api/v1/dead-letters?kind=malformed_json&limit=1", "admin").json()
    assert page["limit"] == 1 and len(page["dead_letters"]) == 1 and page["total"] >= 2
    letters = stack.get("/api/v1/dead-letters?kind=malformed_json&limit=50", "admin").json()["dead_letters"]
    by_encoding = {d["payload_encoding"]: d for d in letters}
    assert by_encoding["utf-8"]["payload"] == '{"ts": 1, "metrics": {'
    assert by_encoding["base64"]["payload"] == "//4AYmluYXJ5"
    assert stack.get("/api/v1/dead-letters?kind=DROP TABLE", "admin").status_code == 422
    assert stack.get("/api/v1/dead-letters?limit=100000", "admin").status_code == 422


def test_devices_show_last_seen_battery_and_online(stack: Stack, publish: Callable[[str, bytes], None]) -> None:
    now = int(time.time() * 1000)
    publish(f"{stack.prefix}placesense/v1/air/air-01-aq/telemetry",
            orjson.dumps({"ts": now, "metrics": {"pressure_hpa": 1013}, "battery_pct": 77, "seq": 1}))

    def air() -> dict[str, object] | None:
        devices = stack.get("/api/v1/devices?domain=air", "street").json()["devices"]
        found = {d["id"]: d for d in devices}.get("air-01-aq")
        return found if found and found["battery_pct"] == 77 else None

    device = eventually(air, what="air device state")
    assert device["last_seen"] and device["lat"] == 53.05
    publish(f"{stack.prefix}placesense/v1/air/air-01-aq/status", b"offline")
    eventually(lambda: "air-01-aq" in {d["id"] for d in stack.get("/api/v1/devices?online=false", "display")
                                       .json()["devices"]}, what="device shown offline")
    publish(f"{stack.prefix}placesense/v1/home/h-7777-ghost/telemetry", b'{"ts": 1, "metrics": {"motion": 1}}')
    eventually(lambda: any(d["source_id"] == "h-7777-ghost" for d in
                           stack.get("/api/v1/devices/discovered", "admin").json()), what="discovered device")


def test_watering_list_is_the_rules_verdict_on_beds_dried_over_mqtt(
    stack: Stack, publish: Callable[[str, bytes], None]
) -> None:
    now = now_ms()
    # bed-01 and bed-03 are below their 25 % threshold; bed-02 is above it but has dried steadily for 14 hours,
    # so the rules predict it will cross the threshold in about two hours.
    for device, levels in (("bed-01-soil", (19.0, 18.5, 18.0)), ("bed-03-soil", (22.5, 22.2, 22.0))):
        for seq, moisture in enumerate(levels):  # 10, 5 and 0 minutes ago
            ts = now - (2 - seq) * 5 * MINUTE
            publish(stack.topic("soil", device), telemetry(ts, seq, soil_moisture_pct=moisture))
    for step in range(29):  # every 30 min, 40 % down to 27 %
        ts = now - (28 - step) * 30 * MINUTE
        publish(stack.topic("soil", "bed-02-soil"), telemetry(ts, step, soil_moisture_pct=40.0 - step * 13 / 28))

    def listed() -> dict[str, Any] | None:
        body: dict[str, Any] = stack.get("/api/v1/flowerbeds/watering", "street").json()
        beds = [b["bed_id"] for b in body["beds"]]
        return body if beds == ["bed-01", "bed-03", "bed-02"] else None  # most urgent first

    body = eventually(listed, what="three beds on the watering list")
    rose, _, near = body["beds"]
    # Moisture is the median of the bed's last hour (19.0, 18.5, 18.0), not one reading.
    assert (rose["status"], rose["moisture_pct"], rose["dry_below_pct"]) == ("now", 18.5, 25.0)
    assert rose["last_reading"] == rfc3339(now)
    assert near["status"] == "soon" and 1.5 < near["hours_to_threshold"] < 3
    assert 0.8 < near["drying_pct_per_hour"] < 1.1 and near["predicted_dry"] is not None
    # Walk from the most urgent bed to its near neighbour before the far one.
    assert body["walking_order"] == ["bed-01", "bed-02", "bed-03"]
    assert [b["walk_position"] for b in body["beds"]] == [1, 3, 2]
    assert 1000 < body["walking_distance_m"] < 1200
    # The same verdict raised street alerts, which the parks team sees.

    def alerted() -> dict[str, dict[str, Any]] | None:
        alerts = stack.get("/api/v1/alerts?state=active", "street").json()["alerts"]
        water = {a["subject"]: a for a in alerts if a["rule"] == "needs_water" and a["device_id"]}
        return water if len(water) == 3 else None

    water = eventually(alerted, what="needs_water alerts for the three beds")
    assert "needs water now" in water["bed-01"]["message"] and "needs water by about" in water["bed-02"]["message"]
    assert water["bed-01"]["severity"] != "info" and water["bed-02"]["severity"] == "info"


def test_walking_order_edge_cases() -> None:
    assert walking_order([]) == ([], 0.0)
    assert walking_order([("a", 53.0, -3.0)]) == (["a"], 0.0)


def test_air_sites_show_the_band_of_readings_sent_over_mqtt(
    stack: Stack, publish: Callable[[str, bytes], None]
) -> None:
    now = now_ms()
    # NO2 at 210 µg/m³ every 5 min for 45 minutes: the 1-hour mean is index 4, Moderate; its 10 readings of 5 min
    # each cover 50 of its 60 minutes, more than the 75 % it needs.
    for seq, minutes_ago in enumerate(range(45, -1, -5)):
        publish(stack.topic("air", "air-01-aq"), telemetry(now - minutes_ago * MINUTE, 100 + seq, no2_ugm3=210))

    def banded() -> dict[str, Any] | None:
        sites = {s["site_id"]: s for s in stack.get("/api/v1/air/sites", "display").json()["sites"]}
        site: dict[str, Any] = sites["air-01"]
        return site if site["band"] == "Moderate" and site["updated"] == rfc3339(now) else None

    site = eventually(banded, what="air-01 banded Moderate")
    assert site["index"] == 4 and site["name"] == "High Street" and (site["lat"], site["lon"]) == (53.05, -2.99)
    no2 = {p["label"]: p for p in site["pollutants"]}["NO2"]
    assert no2 == {"metric": "no2_ugm3", "label": "NO2", "averaging_hours": 1, "mean_ugm3": 210.0, "index": 4,
                   "band": "Moderate", "complete": True, "status": "current", "coverage": 0.833,
                   "no_data_since": None}
    daqi = eventually(lambda: [a for a in stack.get("/api/v1/alerts?subject=air-01&state=active", "street")
                               .json()["alerts"] if a["rule"] == "daqi"], what="the DAQI alert")
    assert daqi[0]["evidence"]["band"] == "Moderate" and "Moderate" in daqi[0]["message"]


def test_routine_is_the_detectors_view_of_the_home(stack: Stack, publish: Callable[[str, bytes], None]) -> None:
    quiet = stack.get("/api/v1/homes/h-0002/routine", "care2").json()
    assert quiet == {"home": "h-0002", "routine": stack.service.routine.routine_today("h-0002")}
    assert quiet["routine"]["warm_up"] == {"days_learned": 0, "days_needed": 14, "ready": False}

    now = now_ms()
    for i in range(3):
        publish(stack.topic("home", "h-0001-kitchen-pir"), telemetry(now - 60_000 * (2 - i), i, motion=1))

    def learning() -> dict[str, Any] | None:
        body: dict[str, Any] = stack.get("/api/v1/homes/h-0001/routine", "care").json()
        return body if body["routine"]["state"] is not None else None

    body = eventually(learning, what="the detector tracking h-0001")
    assert body["home"] == "h-0001"
    direct = stack.service.routine.routine_today("h-0001")
    assert body["routine"] == orjson.loads(orjson.dumps(direct))
    assert body["routine"]["warm_up"] == {"days_learned": 0, "days_needed": 14, "ready": False}
    audit = stack.get("/api/v1/audit?home=h-0001", "admin").json()["entries"]
    assert audit[0]["action"] == "routine" and audit[0]["token_name"] == "north-care"


def test_activity_timeline_counts_events_per_room(stack: Stack, publish: Callable[[str, bytes], None]) -> None:
    now = now_ms()
    for i in range(3):
        publish(stack.topic("home", "h-0001-kitchen-pir"), telemetry(now - 60_000 * i, 10 + i, motion=1))

    def kitchen_motion() -> float:
        hours = stack.get("/api/v1/homes/h-0001/activity", "care").json()["hours"]
        return sum(h["events"].get("motion", 0) for h in hours if h["room"] == "kitchen")

    assert eventually(lambda: kitchen_motion() >= 3, what="three kitchen motions in the timeline")
    homes = stack.get("/api/v1/homes", "care").json()["homes"]
    assert [(h["id"], h["name"], h["devices"]) for h in homes] == [("h-0001", "Test Resident One", 2)]


@pytest.mark.parametrize("page", ["/display", "/street", "/care", "/devices"])
def test_pages_are_served_with_a_strict_policy(stack: Stack, page: str) -> None:
    resp = stack.client.get(page)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in resp.headers["content-security-policy"]
    for asset in ("/pages/common.css", "/pages/common.js", f"/pages{page}.js"):
        assert asset in resp.text
        assert stack.client.get(asset).status_code == 200


def test_metrics_are_the_prometheus_clients_with_both_processes(stack: Stack, publish: Callable[[str, bytes], None]
                                                                 ) -> None:
    """/metrics is prometheus-client's exposition: this process's CPU and memory, the evaluation child's own (its
    pid's), and what the child recorded in multiprocess mode (time per batch) — after it has evaluated a reading."""
    evaluated = stack.service.metrics.value("placesense_readings_evaluated_total")
    publish(stack.topic("home", "h-0002-kitchen-pir"), telemetry(now_ms(), 1, motion=1))
    eventually(lambda: stack.service.metrics.value("placesense_readings_evaluated_total") > evaluated,
               what="the reading evaluated")
    text = stack.get("/metrics", "admin").text
    families = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes", "python_info",
            "placesense_evaluation_process_resident_memory_bytes", "placesense_evaluation_batch_seconds",
            "placesense_messages_received_total", "placesense_spool_segments"} <= families
    batches = [line for line in text.splitlines() if line.startswith("placesense_evaluation_batch_seconds_count")]
    assert batches and float(batches[0].split()[-1]) >= 1

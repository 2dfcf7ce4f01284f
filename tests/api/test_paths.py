"""The rest of the paths: operations, dead letters, devices, watering, air, homes, pages and the OpenAPI schema."""

from __future__ import annotations

import time
import types
from collections.abc import Callable

import httpx
import orjson
import pytest

from api.app import create_app
from api.flowerbeds import walking_order
from tests.api.conftest import Stack, make_tokens, serve
from tests.helpers import eventually

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
            orjson.dumps({"ts": now, "metrics": {"no2_ugm3": 31}, "battery_pct": 77, "seq": 1}))

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


def test_watering_has_urgency_and_walking_order(stack: Stack) -> None:
    body = stack.get("/api/v1/flowerbeds/watering", "street").json()
    assert [b["bed_id"] for b in body["beds"]] == ["bed-01", "bed-03", "bed-02"]  # most urgent first
    # Walk from the most urgent bed to its near neighbour before the far one.
    assert body["walking_order"] == ["bed-01", "bed-02", "bed-03"]
    assert [b["walk_position"] for b in body["beds"]] == [1, 3, 2]
    assert 1000 < body["walking_distance_m"] < 1200


def test_walking_order_edge_cases() -> None:
    assert walking_order([]) == ([], 0.0)
    assert walking_order([("a", 53.0, -3.0)]) == (["a"], 0.0)


def test_air_sites_and_routine_and_activity(stack: Stack, publish: Callable[[str, bytes], None]) -> None:
    sites = stack.get("/api/v1/air/sites", "display").json()["sites"]
    assert sites[0]["band"] == "Moderate" and sites[0]["lat"] == 53.05
    assert sites[0]["pollutants"][0]["label"] == "NO2"
    routine = stack.get("/api/v1/homes/h-0001/routine", "care").json()
    assert routine == {"home": "h-0001", "routine": {"home_id": "h-0001", "wake_time": "07:55",
                                                      "usual_wake": ["07:40", "08:30"], "warmed_up": True}}
    now = int(time.time() * 1000)
    for i in range(3):
        publish(f"{stack.prefix}placesense/v1/home/h-0001-kitchen-pir/telemetry",
                orjson.dumps({"ts": now - 60_000 * i, "metrics": {"motion": True}, "seq": i}))

    def kitchen_motion() -> float:
        hours = stack.get("/api/v1/homes/h-0001/activity", "care").json()["hours"]
        return sum(h["events"].get("motion", 0) for h in hours if h["room"] == "kitchen")

    assert eventually(lambda: kitchen_motion() >= 3, what="three kitchen motions in the timeline")
    homes = stack.get("/api/v1/homes", "care").json()["homes"]
    assert [(h["id"], h["name"]) for h in homes] == [("h-0001", "Test Resident One")]


@pytest.mark.parametrize("page", ["/display", "/street", "/care"])
def test_pages_are_served_with_a_strict_policy(stack: Stack, page: str) -> None:
    resp = stack.client.get(page)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in resp.headers["content-security-policy"]
    for asset in ("/pages/common.css", "/pages/common.js", f"/pages{page}.js"):
        assert asset in resp.text
        assert stack.client.get(asset).status_code == 200


def test_parts_not_running_answer_503(stack: Stack) -> None:
    bare = types.SimpleNamespace(**{k: v for k, v in vars(stack.service).items()
                                    if k not in ("alerts", "rules", "routine")})
    _, store = make_tokens()
    secrets, store = make_tokens()
    server, url = serve(create_app(bare, manage_lifecycle=False, tokens=store))
    try:
        auth = {"Authorization": f"Bearer {secrets['admin']}"}
        for path in ("/api/v1/alerts", "/api/v1/flowerbeds/watering", "/api/v1/air/sites",
                     "/api/v1/homes/h-0001/routine", "/api/v1/alerts/stream"):
            resp = httpx.get(url + path, headers=auth, timeout=10)
            assert resp.status_code == 503, path
            assert resp.json()["type"] == "/problems/not-available"
    finally:
        server.should_exit = True

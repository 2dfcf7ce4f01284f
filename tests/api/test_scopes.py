"""Every role against every path, and every scope boundary: a token never reads what its scope excludes."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from placesense.alerts.store import Alert
from tests.api.conftest import Stack, now_ms, telemetry
from tests.helpers import eventually

PROBLEM = "application/problem+json"

# path -> expected status per token (None: no token). 404 means "not yours" answered as "no such thing".
MATRIX: list[tuple[str, dict[str | None, int]]] = [
    ("/healthz", {None: 200, "admin": 200, "care": 200, "street": 200, "display": 200, "sensor": 200}),
    ("/metrics", {None: 401, "admin": 200, "care": 403, "street": 403, "display": 403, "sensor": 403}),
    ("/api/v1/devices", {None: 401, "admin": 200, "care": 200, "street": 200, "display": 200, "sensor": 403}),
    ("/api/v1/devices/discovered", {None: 401, "admin": 200, "care": 403, "street": 403, "display": 403}),
    ("/api/v1/dead-letters", {None: 401, "admin": 200, "care": 403, "street": 403, "display": 403, "sensor": 403}),
    ("/api/v1/alerts", {None: 401, "admin": 200, "care": 200, "street": 200, "display": 200, "sensor": 403}),
    ("/api/v1/homes", {None: 401, "admin": 200, "care": 200, "street": 403, "display": 403, "sensor": 403}),
    ("/api/v1/homes/h-0001/routine", {None: 401, "admin": 200, "care": 200, "care2": 404, "street": 403,
                                      "display": 403, "sensor": 403}),
    ("/api/v1/homes/h-0002/routine", {"admin": 200, "care": 404, "care2": 200}),
    ("/api/v1/homes/h-0001/activity", {None: 401, "admin": 200, "care": 200, "care2": 404, "street": 403,
                                       "display": 403}),
    ("/api/v1/homes/h-9999/routine", {"admin": 404, "care": 404}),
    ("/api/v1/flowerbeds/watering", {None: 401, "admin": 200, "care": 403, "street": 200, "display": 200,
                                     "sensor": 403}),
    ("/api/v1/air/sites", {None: 401, "admin": 200, "care": 403, "street": 200, "display": 200, "sensor": 403}),
    ("/api/v1/readings?device=h-0001-kitchen-pir", {None: 401, "admin": 200, "care": 200, "care2": 404,
                                                    "street": 404, "display": 404, "sensor": 403}),
    ("/api/v1/readings?device=h-0002-kitchen-pir", {"admin": 200, "care": 404, "care2": 200}),
    ("/api/v1/readings?device=bed-01-soil", {"admin": 200, "care": 404, "street": 200, "display": 200}),
    ("/api/v1/readings?device=air-01-aq", {"admin": 200, "care": 404, "street": 200, "display": 200}),
    ("/api/v1/audit", {None: 401, "admin": 200, "care": 403, "street": 403, "display": 403}),
]
CASES = [(path, who, status) for path, expected in MATRIX for who, status in expected.items()]


@pytest.mark.parametrize(("path", "who", "status"), CASES, ids=[f"{p}-{w}" for p, w, _ in CASES])
def test_role_and_scope_matrix(stack: Stack, path: str, who: str | None, status: int) -> None:
    resp = stack.get(path, who)
    assert resp.status_code == status, resp.text
    if status >= 400:
        assert resp.headers["content-type"] == PROBLEM
        body = resp.json()
        assert body["status"] == status and body["title"] and body["type"].startswith("/problems/")
        assert len(body["detail"]) > 15
    if status == 401:
        assert resp.headers["www-authenticate"].startswith("Bearer")


def _device_ids(stack: Stack, who: str) -> set[str]:
    return {d["id"] for d in stack.get("/api/v1/devices", who).json()["devices"]}


def test_devices_are_scoped_and_names_stay_with_care_and_admin(stack: Stack) -> None:
    assert _device_ids(stack, "care") == {"h-0001-kitchen-pir", "h-0001-help"}
    assert _device_ids(stack, "care2") == {"h-0002-kitchen-pir"}
    assert _device_ids(stack, "street") == {"bed-01-soil", "bed-02-soil", "bed-03-soil", "bed-04-soil", "air-01-aq",
                                            "air-01-diy"}
    for who in ("street", "display"):
        text = stack.get("/api/v1/devices", who).text
        assert "Test Resident" not in text
    care = {d["id"]: d for d in stack.get("/api/v1/devices", "care").json()["devices"]}["h-0001-kitchen-pir"]
    assert care["subject_name"] == "Test Resident One" and care["room"] == "kitchen"


def test_the_wall_display_sees_no_activity_of_any_home(stack: Stack, publish: Callable[[str, bytes], None]) -> None:
    # Polling the devices list with a display token once gave each home device's kind, battery and last event:
    # a resident's movements room by room, and the moment the help button was pressed.
    publish(stack.topic("home", "h-0001-help"), telemetry(now_ms() - 500, 1, help_pressed=1))
    eventually(lambda: stack.service.device_states.get("h-0001-help"), what="the press recorded")
    assert _device_ids(stack, "display") == _device_ids(stack, "street")
    for query in ("", "?domain=home", "?online=true", "?online=false"):
        devices = stack.get(f"/api/v1/devices{query}", "display").json()["devices"]
        assert all(d["domain"] != "home" for d in devices)
        assert "h-0001" not in str(devices) and "h-0002" not in str(devices)
    # An operations alert about a home (a kitchen sensor gone silent) reaches the wall without its details too.
    ops = stack.raise_alert(f"device_offline.{uuid.uuid4().hex[:6]}", "ops", "h-0001", "Kitchen sensor silent 3 h")
    shown = {a["id"]: a for a in stack.get("/api/v1/alerts?audience=ops", "display").json()["alerts"]}[ops.id]
    assert shown["redacted"] is True and "Kitchen" not in shown["message"] and shown["device_id"] is None
    assert shown["evidence"] == {} and shown["history"] == []
    stack.service.alerts.resolve(ops.id, "test-cleanup")


def _raise_one_of_each(stack: Stack) -> dict[str, Alert]:
    """One open alert per audience and kind of subject, in the real lifecycle. A fresh tag per call keeps each
    test's alerts its own: the lifecycle keeps one open alert per (rule, subject)."""
    tag = uuid.uuid4().hex[:6]
    return {
        "care1": stack.raise_alert(f"late_wake.{tag}", "care", "h-0001", "First activity 11:05; usually 07:40–08:30"),
        "care2": stack.raise_alert(f"cold_home.{tag}", "care", "h-0002", "Living room 15.2 °C for 4 h"),
        "street": stack.raise_alert(f"needs_water.{tag}", "street", "bed-01", "Rose bed at 18 % moisture"),
        "ops_home": stack.raise_alert(f"device_offline.{tag}", "ops", "h-0001", "Kitchen sensor silent for 3 h"),
        "ops": stack.raise_alert(f"influx_down.{tag}", "ops", "placesense", "InfluxDB unreachable"),
    }


def test_alerts_are_scoped_per_pair(stack: Stack) -> None:
    raised = {k: v.id for k, v in _raise_one_of_each(stack).items()}

    def seen(who: str, query: str = "") -> set[str]:
        ids = {a["id"] for a in stack.get(f"/api/v1/alerts{query}", who).json()["alerts"]}
        return {k for k, v in raised.items() if v in ids}

    assert seen("admin") == set(raised)
    assert seen("display") == set(raised)
    assert seen("care") == {"care1", "ops_home"}
    assert seen("care2") == {"care2"}
    assert seen("street") == {"street", "ops"}
    # Filters narrow within the scope, never widen it.
    assert stack.get("/api/v1/alerts?subject=h-0002", "care").json()["alerts"] == []
    assert stack.get("/api/v1/alerts?audience=care", "street").json()["alerts"] == []
    assert seen("care", "?audience=ops") == {"ops_home"}
    assert seen("street", "?subject=h-0001") == set()


def test_display_sees_care_alerts_only_pseudonymously(stack: Stack) -> None:
    alert = stack.raise_alert(f"night_door.{uuid.uuid4().hex[:6]}", "care", "h-0001", "Front door opened at 03:12")
    shown = {a["id"]: a for a in stack.get("/api/v1/alerts?audience=care", "display").json()["alerts"]}
    mine = shown[alert.id]
    assert mine["redacted"] is True and "03:12" not in mine["message"] and mine["evidence"] == {}
    assert mine["history"] == [] and mine["device_id"] is None
    assert mine["subject"] == "h-0001" and mine["severity"] == "warning" and mine["rule"] == alert.rule
    care = {a["id"]: a for a in stack.get("/api/v1/alerts?audience=care", "care").json()["alerts"]}[alert.id]
    assert care["redacted"] is False and care["message"] == "Front door opened at 03:12"
    assert care["evidence"] == {"minutes": 42}


def test_acting_on_alerts_follows_scope(stack: Stack) -> None:
    raised = _raise_one_of_each(stack)
    care1, care2, street, ops = raised["care1"].id, raised["care2"].id, raised["street"].id, raised["ops"].id
    assert stack.post(f"/api/v1/alerts/{care1}/ack", "display").status_code == 403
    assert stack.post(f"/api/v1/alerts/{care1}/ack", "street").status_code == 404
    assert stack.post(f"/api/v1/alerts/{care2}/ack", "care").status_code == 404
    assert stack.post(f"/api/v1/alerts/{street}/resolve", "care").status_code == 404
    assert stack.post(f"/api/v1/alerts/{ops}/resolve", "care").status_code == 404
    assert stack.post(f"/api/v1/alerts/{care1}/ack", "sensor").status_code == 403
    assert stack.post(f"/api/v1/alerts/{care1}/ack", None).status_code == 401
    # Nothing above changed an alert; only the calls below do.
    assert {stack.service.alerts.get(i).state for i in (care1, care2, street, ops)} == {"open"}
    assert stack.post(f"/api/v1/alerts/{street}/ack", "street").status_code == 200
    assert stack.post(f"/api/v1/alerts/{care2}/resolve", "care2", json={"note": "heating fixed"}).status_code == 200
    assert stack.post(f"/api/v1/alerts/{ops}/ack", "admin").status_code == 200
    assert stack.service.alerts.get(street).history[-1].who == "parks-team"
    resolved = stack.service.alerts.get(care2)
    assert resolved.state == "resolved" and resolved.history[-1].note == "heating fixed"
    assert resolved.history[-1].who == "south-care"


def test_sensor_token_reads_nothing(stack: Stack) -> None:
    for path in ("/api/v1/devices", "/api/v1/alerts", "/api/v1/air/sites", "/api/v1/readings?device=air-01-aq"):
        assert stack.get(path, "sensor").status_code == 403


def test_unknown_and_malformed_tokens_are_401(stack: Stack) -> None:
    for header in ("Bearer not-a-real-token-at-all", "Bearer short", "Basic abc", "Token x"):
        resp = stack.client.get("/api/v1/devices", headers={"Authorization": header})
        assert resp.status_code == 401, header
        assert resp.headers["content-type"] == PROBLEM

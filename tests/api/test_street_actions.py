"""Street work over the API: "watered" takes a bed off today's list through the evaluation process and clears its
alert; "sensor checked" acknowledges a bed's sensor alerts; both are audited and scoped; CSV exports keep the JSON
lists' scopes."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

from tests.api.conftest import Stack, now_ms, telemetry
from tests.helpers import eventually

MINUTE = 60_000


def _listed(stack: Stack) -> list[str]:
    return [b["bed_id"] for b in stack.get("/api/v1/flowerbeds/watering", "street").json()["beds"]]


def _needs_water_alert(stack: Stack, bed: str) -> dict[str, Any] | None:
    alerts = stack.get(f"/api/v1/alerts?subject={bed}&state=active", "street").json()["alerts"]
    return next((a for a in alerts if a["rule"] == "needs_water"), None)


def test_watered_takes_the_bed_off_todays_list_clears_its_alert_and_is_audited(
    stack: Stack, publish: Callable[[str, bytes], None]
) -> None:
    now = now_ms()
    for seq, moisture in enumerate((16.0, 15.5, 15.0)):
        publish(stack.topic("soil", "bed-04-soil"), telemetry(now - (2 - seq) * 5 * MINUTE, 100 + seq,
                                                              soil_moisture_pct=moisture))
    eventually(lambda: "bed-04" in _listed(stack), what="bed-04 on the watering list")
    alert = eventually(lambda: _needs_water_alert(stack, "bed-04"), what="bed-04's needs_water alert")

    # Who may say so: not the wall display (read-only), not a care token, and only about a bed that exists.
    assert stack.post("/api/v1/flowerbeds/bed-04/watered", "display").status_code == 403
    assert stack.post("/api/v1/flowerbeds/bed-04/watered", "care").status_code == 403
    assert stack.post("/api/v1/flowerbeds/bed-99/watered", "street").status_code == 404
    assert stack.post("/api/v1/flowerbeds/bed-04/watered", None).status_code == 401
    assert "bed-04" in _listed(stack)

    done = stack.post("/api/v1/flowerbeds/bed-04/watered", "street", json={"note": "two cans"})
    assert done.status_code == 200, done.text
    body = done.json()
    assert (body["bed_id"], body["action"], body["by"], body["note"]) == ("bed-04", "watered", "parks-team", "two cans")
    assert body["cleared_alerts"] == 1
    # The evaluation process knows at once: the bed is off the list, and its alert resolved with the reason.
    assert "bed-04" not in _listed(stack)
    resolved = eventually(
        lambda: next((a for a in stack.get("/api/v1/alerts?subject=bed-04&state=resolved", "street").json()["alerts"]
                      if a["id"] == alert["id"]), None),
        what="the needs_water alert resolved",
    )
    assert resolved["history"][-1]["action"] == "resolved"
    assert "marked as watered" in resolved["history"][-1]["note"]
    audit = stack.get("/api/v1/audit?home=bed-04", "admin").json()["entries"]
    assert [(e["action"], e["token_name"], e["detail"]) for e in audit if e["action"] == "bed.watered"] == [
        ("bed.watered", "parks-team", "two cans")]
    actions = stack.get("/api/v1/flowerbeds/actions", "street").json()["actions"]
    assert {"bed_id": "bed-04", "action": "watered", "by": "parks-team", "note": "two cans"}.items() <= next(
        a for a in actions if a["bed_id"] == "bed-04").items()
    assert stack.get("/api/v1/flowerbeds/actions", "display").status_code == 403


def test_sensor_checked_acknowledges_the_beds_sensor_alerts_only(stack: Stack) -> None:
    stuck = stack.raise_alert("soil_probe_stuck", "street", "bed-02", "The probe in Near bed has read 0 % for 6 h.")
    crop = stack.raise_alert("over_watered", "street", "bed-02", "Near bed is over-watered.")
    try:
        done = stack.post("/api/v1/flowerbeds/bed-02/sensor-checked", "street", json={"note": "cable chewed"})
        assert done.status_code == 200, done.text
        # the stuck probe's alert, and any offline alert of its sensor the running stack raised by itself
        assert done.json()["cleared_alerts"] >= 1
        after = {a["id"]: a for a in stack.get("/api/v1/alerts?subject=bed-02", "street").json()["alerts"]}
        assert after[stuck.id]["state"] == "acknowledged" and after[crop.id]["state"] == "open"
        note = after[stuck.id]["history"][-1]
        assert (note["by"], note["action"]) == ("parks-team", "acknowledged")
        assert note["note"] == "Sensor checked: cable chewed"
        audit = stack.get("/api/v1/audit?home=bed-02", "admin").json()["entries"]
        assert ("bed.sensor_checked", "cable chewed") in {(e["action"], e["detail"]) for e in audit}
        shown = stack.get("/api/v1/flowerbeds/actions", "street").json()["actions"]
        assert any(a["bed_id"] == "bed-02" and a["action"] == "sensor_checked" for a in shown)
        assert stack.post("/api/v1/flowerbeds/bed-02/sensor-checked", "display").status_code == 403
    finally:
        for alert in (stuck, crop):
            stack.resolve_open(alert.rule, "bed-02")


def test_the_bed_list_names_every_bed_with_its_place(stack: Stack) -> None:
    beds = {b["bed_id"]: b for b in stack.get("/api/v1/flowerbeds", "display").json()["beds"]}
    assert set(beds) == {"bed-01", "bed-02", "bed-03", "bed-04"}
    assert (beds["bed-01"]["name"], beds["bed-01"]["lat"], beds["bed-01"]["lon"]) == ("Rose bed", 53.04, -2.99)
    assert stack.get("/api/v1/flowerbeds", "care").status_code == 403


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_alerts_csv_keeps_the_lists_scope_and_defuses_formulas(stack: Stack) -> None:
    care = stack.raise_alert("cold_home", "care", "h-0001", "The living room has been below 16 °C for 3 hours.")
    street = stack.raise_alert("soil_probe_stuck", "street", "bed-01", "=HYPERLINK(\"http://x\") probe stuck")
    try:
        reply = stack.get("/api/v1/alerts.csv?state=open", "street")
        assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/csv")
        assert reply.text.startswith("id,rule,audience,subject,place_name,severity,state,")
        rows = {int(r["id"]): r for r in _rows(reply.text)}
        assert care.id not in rows  # a street token never sees a home's alert, in CSV either
        assert rows[street.id]["place_name"] == "Rose bed"
        assert rows[street.id]["message"].startswith("'=HYPERLINK")
        mine = {int(r["id"]) for r in _rows(stack.get("/api/v1/alerts.csv?state=open", "care").text)}
        assert care.id in mine and street.id not in mine
        assert stack.get("/api/v1/alerts.csv", None).status_code == 401
        assert stack.get("/api/v1/alerts.csv?state=bogus", "admin").status_code == 422
    finally:
        stack.resolve_open("cold_home", "h-0001")
        stack.resolve_open("soil_probe_stuck", "bed-01")


def test_readings_csv_keeps_the_lists_scope(stack: Stack, publish: Callable[[str, bytes], None]) -> None:
    now = now_ms()
    publish(stack.topic("air", "air-01-aq"), telemetry(now, 900, pressure_hpa=1013.5))
    publish(stack.topic("home", "h-0002-kitchen-pir"), telemetry(now, 901, motion=1))

    def exported() -> list[dict[str, str]] | None:
        rows = _rows(stack.get("/api/v1/readings.csv?device=air-01-aq&metric=pressure_hpa", "street").text)
        return rows if any(r["value"] == "1013.5" for r in rows) else None

    rows = eventually(exported, what="the site's reading in the CSV")
    assert set(rows[0]) == {"device", "ts", "metric", "value"}
    assert {(r["device"], r["metric"]) for r in rows} == {("air-01-aq", "pressure_hpa")}
    # The same refusals as the JSON list: a street token reads no home's series, a care token only its homes.
    assert stack.get("/api/v1/readings.csv?device=h-0002-kitchen-pir", "street").status_code == 404
    assert stack.get("/api/v1/readings.csv?device=h-0002-kitchen-pir", "care").status_code == 404
    home = eventually(lambda: _rows(stack.get("/api/v1/readings.csv?device=h-0002-kitchen-pir", "care2").text) or None,
                      what="the home's reading in its own team's CSV")
    assert home[0]["metric"] == "motion"
    paged = stack.get("/api/v1/readings.csv", "street", params={
        "device": "air-01-aq", "start": "2020-01-01T00:00:00Z", "end": "2020-01-02T00:00:00Z"})
    assert paged.status_code == 200 and _rows(paged.text) == []


def test_leaflet_is_served_from_here_and_only_the_street_page_may_show_map_tiles(stack: Stack) -> None:
    script = stack.client.get("/pages/vendor/leaflet/leaflet.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert "Leaflet 1.9.4" in script.text[:200]
    assert stack.client.get("/pages/vendor/leaflet/leaflet.css").headers["content-type"].startswith("text/css")
    for outside in ("/pages/vendor/..%2F..%2Fapp.py", "/pages/vendor/%2E%2E/street.js", "/pages/vendor/nothing.js",
                    "/pages/vendor/leaflet/LICENSE"):
        assert stack.client.get(outside).status_code == 404, outside
    street = stack.client.get("/street").headers["content-security-policy"]
    assert "img-src 'self' data: https://tile.openstreetmap.org;" in street and "script-src 'self';" in street
    assert "openstreetmap" not in stack.client.get("/display").headers["content-security-policy"]

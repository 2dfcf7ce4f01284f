"""Readings over HTTP return exactly what was published over MQTT; bad parameters get clear 4xx problems."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC, datetime

import orjson
import pytest

from tests.api.conftest import Stack
from tests.helpers import eventually

PROBLEM = "application/problem+json"


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_readings_return_what_mqtt_delivered(stack: Stack, publish: Callable[[str, bytes], None]) -> None:
    base = (int(time.time() * 1000) // 1000) * 1000 - 7_200_000
    topic = f"{stack.prefix}placesense/v1/soil/bed-01-soil/telemetry"
    for i in range(30):
        body = {"ts": base + i * 60_000, "metrics": {"soil_moisture_pct": 40.0 - i * 0.5, "soil_temperature_c": 12.5},
                "battery_pct": 88, "seq": i}
        publish(topic, orjson.dumps(body))
    params = {"device": "bed-01-soil", "metric": "soil_moisture_pct",
              "start": _iso(base - 1), "end": _iso(base + 3_600_000)}

    def points() -> list[dict[str, object]]:
        found: list[dict[str, object]] = stack.get("/api/v1/readings", "street", params=params).json()["points"]
        return found if len(found) == 30 else []

    got = eventually(points, what="30 soil points through the API")
    assert got[0] == {"ts": _iso(base), "metric": "soil_moisture_pct", "value": 40.0}
    assert [p["value"] for p in got] == [40.0 - i * 0.5 for i in range(30)]

    # Without metric: every metric of each point, tags and seq left out.
    every = stack.get("/api/v1/readings", "admin", params={**params, "metric": ""}).json()["points"]
    assert {p["metric"] for p in every} == {"soil_moisture_pct", "soil_temperature_c", "battery_pct"}
    assert len(every) == 90

    # Pagination: 7 rows per page, following next_cursor, gives the same 30 points in order.
    paged: list[float] = []
    cursor = None
    for _ in range(10):
        query = {**params, "limit": 7, **({"cursor": cursor} if cursor else {})}
        page = stack.get("/api/v1/readings", "street", params=query).json()
        paged += [p["value"] for p in page["points"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert paged == [p["value"] for p in got]


def test_home_readings_are_audited(stack: Stack) -> None:
    before = stack.get("/api/v1/audit?home=h-0001", "admin").json()["entries"]
    assert stack.get("/api/v1/readings?device=h-0001-kitchen-pir", "care").status_code == 200
    after = stack.get("/api/v1/audit?home=h-0001", "admin").json()["entries"]
    assert len(after) == len(before) + 1
    assert after[0] | {"id": 0, "at": ""} == {
        "id": 0, "at": "", "token_name": "north-care", "role": "care", "action": "readings", "home_id": "h-0001",
        "detail": "h-0001-kitchen-pir",
    }
    # Append-only: the database itself refuses to rewrite history.
    engine = stack.service.engine
    with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM api_audit")


BAD = [
    ({"device": "bed-01-soil", "metric": "happiness"}, "unknown metric"),
    ({"device": "bed-01-soil", "start": "2024-01-01T00:00:00"}, "time zone"),
    ({"device": "bed-01-soil", "start": "yesterday"}, "start"),
    ({"device": "bed-01-soil", "start": "2024-03-01T00:00:00Z", "end": "2024-01-01T00:00:00Z"}, "before end"),
    ({"device": "bed-01-soil", "start": "2024-01-01T00:00:00Z", "end": "2024-03-01T00:00:00Z"}, "31 days"),
    ({"device": "bed-01-soil", "limit": "0"}, "limit"),
    ({"device": "bed-01-soil", "limit": "1000000"}, "limit"),
    ({"device": "bed-01-soil", "cursor": "not-a-cursor"}, "cursor"),
    ({"device": "x' OR 1=1 --"}, "device"),
    ({}, "device"),
]


@pytest.mark.parametrize(("params", "words"), BAD, ids=[w for _, w in BAD])
def test_bad_parameters_get_clear_422(stack: Stack, params: dict[str, str], words: str) -> None:
    resp = stack.get("/api/v1/readings", "admin", params=params)
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"] == PROBLEM
    assert words in resp.json()["detail"]


@pytest.mark.parametrize(("start", "end"), [
    ("9999-12-30T00:00:00Z", "9999-12-31T00:00:00Z"),
    ("2024-01-01T00:00:00Z", "9999-12-31T00:00:00Z"),
    ("0001-01-01T00:00:00Z", "0001-01-02T00:00:00Z"),
])
def test_a_range_outside_what_influxdb_stores_is_a_clear_400(stack: Stack, start: str, end: str) -> None:
    # It once reached InfluxDB, whose parser error came back as a 503 "store unavailable".
    resp = stack.get("/api/v1/readings", "admin", params={"device": "bed-01-soil", "start": start, "end": end})
    assert resp.status_code == 400, resp.text
    assert resp.headers["content-type"] == PROBLEM
    assert resp.json()["type"] == "/problems/time-out-of-range" and "2262" in resp.json()["detail"]


def test_a_moved_device_shows_each_home_only_what_it_recorded_there(stack: Stack) -> None:
    # h-0001-kitchen-pir used to be in h-0002: its points from then carry subject=h-0002. h-0001's care team must
    # not read them, and the audit log must not name h-0001 for them.
    then = int(time.time() * 1000) - 20 * 86_400_000 + random.randrange(1_000_000)
    now = then + 3_600_000
    stack.service.influx.write(
        f"home,device=h-0001-kitchen-pir,room=kitchen,source=canonical,subject=h-0002 motion=1 {then}\n"
        f"home,device=h-0001-kitchen-pir,room=kitchen,source=canonical,subject=h-0001 motion=0 {now}".encode()
    )

    def read(start_ms: int) -> list[dict[str, object]]:
        params = {"device": "h-0001-kitchen-pir", "start": _iso(start_ms), "end": _iso(start_ms + 1)}
        resp = stack.get("/api/v1/readings", "care", params=params)
        assert resp.status_code == 200
        return list(resp.json()["points"])

    assert read(now) == [{"ts": _iso(now), "metric": "motion", "value": 0.0}]
    assert read(then) == []  # the previous resident's
    # Nor does the previous home's care team read it through this device: it belongs to h-0001 now.
    params = {"device": "h-0001-kitchen-pir", "start": _iso(then), "end": _iso(then + 1)}
    assert stack.get("/api/v1/readings", "care2", params=params).status_code == 404


def test_unknown_device_is_404(stack: Stack) -> None:
    resp = stack.get("/api/v1/readings", "admin", params={"device": "no-such-device"})
    assert resp.status_code == 404 and "no-such-device" in resp.json()["detail"]

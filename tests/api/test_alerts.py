"""Alerts: acknowledge and resolve with a note, conflicts, and the live event stream filtered by scope."""

from __future__ import annotations

import threading

import httpx
import orjson

from tests.api.conftest import Stack


def test_ack_then_resolve_records_who_and_note(stack: Stack) -> None:
    alert = stack.alerts.raise_alert("long_inactivity", "care", "h-0001", "No movement for 3 h 10 min")
    acked = stack.post(f"/api/v1/alerts/{alert.id}/ack", "care", json={"note": "phoned, she is fine"})
    assert acked.status_code == 200
    assert acked.json()["state"] == "acknowledged"
    assert acked.json()["history"][-1] == {"at": "2023-11-14T22:15:00.000Z", "by": "north-care",
                                           "action": "acknowledged", "note": "phoned, she is fine"}
    resolved = stack.post(f"/api/v1/alerts/{alert.id}/resolve", "care")  # the body is optional
    assert resolved.status_code == 200 and resolved.json()["state"] == "resolved"
    again = stack.post(f"/api/v1/alerts/{alert.id}/resolve", "care")
    assert again.status_code == 409 and "already resolved" in again.json()["detail"]
    assert stack.post("/api/v1/alerts/99999/ack", "admin").status_code == 404
    assert stack.post(f"/api/v1/alerts/{alert.id}/ack", "care", json={"note": "x" * 3000}).status_code == 422
    listed = stack.get("/api/v1/alerts?state=resolved&subject=h-0001", "care").json()["alerts"]
    assert str(alert.id) in {a["id"] for a in listed}
    assert stack.get("/api/v1/alerts?state=sleeping", "admin").status_code == 422


def _collect(stack: Stack, who: str, want: int, events: list[dict[str, object]], ready: threading.Event) -> None:
    with httpx.Client(base_url=stack.base_url, timeout=10) as client, client.stream(
        "GET", "/api/v1/alerts/stream", params={"access_token": stack.tokens[who]}
    ) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        ready.set()
        for line in resp.iter_lines():
            if line.startswith("data: ") and line != "data: {}":
                events.append(orjson.loads(line[6:]))
                if len(events) >= want:
                    return


def test_stream_delivers_changes_within_scope(stack: Stack) -> None:
    streams: dict[str, list[dict[str, object]]] = {"care": [], "street": [], "display": []}
    threads = []
    for who, want in (("care", 2), ("street", 1), ("display", 3)):
        ready = threading.Event()
        thread = threading.Thread(target=_collect, args=(stack, who, want, streams[who], ready), daemon=True)
        thread.start()
        assert ready.wait(10)
        threads.append(thread)
    care = stack.alerts.raise_alert("late_wake", "care", "h-0001", "First activity 11:05")
    stack.alerts.raise_alert("cold_home", "care", "h-0002", "Living room 15 °C")
    street = stack.alerts.raise_alert("watering", "street", "bed-01", "Rose bed at 18 %")
    stack.alerts.acknowledge(care.id, by="north-care", note=None)
    for thread in threads:
        thread.join(10)
        assert not thread.is_alive()
    assert [(e["id"], e["state"]) for e in streams["care"]] == [(str(care.id), "open"), (str(care.id), "acknowledged")]
    assert [e["id"] for e in streams["street"]] == [str(street.id)]
    assert [e["redacted"] for e in streams["display"]] == [True, True, False]


def test_stream_needs_a_token(stack: Stack) -> None:
    assert stack.get("/api/v1/alerts/stream", None).status_code == 401
    wrong = {"access_token": "wrong-token-wrong-token"}
    assert stack.client.get("/api/v1/alerts/stream", params=wrong).status_code == 401

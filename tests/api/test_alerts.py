"""Alerts: a help-button press over MQTT raises a real alert that the care team acknowledges and resolves with a
note; conflicts; and the live event stream of real changes, filtered by scope, with heartbeats and resync."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

import api.alerts
from api.alerts import RESYNC, StreamInbox
from placesense.alerts.changes import AlertChange
from placesense.basics.findings import Finding
from tests.api.conftest import Stack, now_ms, telemetry
from tests.helpers import eventually


def _press_help(stack: Stack, publish: Callable[[str, bytes], None]) -> dict[str, Any]:
    """Press h-0001's help button; return the open alert as the care team sees it."""
    stack.resolve_open("help_button", "h-0001")
    publish(stack.topic("home", "h-0001-help"), telemetry(now_ms(), 1, help_pressed=1))

    def opened() -> dict[str, Any] | None:
        alerts = stack.get("/api/v1/alerts?state=open&subject=h-0001", "care").json()["alerts"]
        return next((a for a in alerts if a["rule"] == "help_button"), None)

    found: dict[str, Any] = eventually(opened, what="the help-button alert")
    return found


def test_help_button_alert_is_acknowledged_then_resolved(
    stack: Stack, publish: Callable[[str, bytes], None]
) -> None:
    alert = _press_help(stack, publish)
    assert alert["severity"] == "critical" and alert["audience"] == "care"
    assert alert["device_id"] == "h-0001-help" and "Help button pressed" in alert["message"]
    assert [(h["by"], h["action"]) for h in alert["history"]] == [("placesense", "opened")]

    acked = stack.post(f"/api/v1/alerts/{alert['id']}/ack", "care", json={"note": "phoned, she is fine"})
    assert acked.status_code == 200, acked.text
    assert acked.json()["state"] == "acknowledged"
    last = acked.json()["history"][-1]
    assert (last["by"], last["action"], last["note"], last["severity"]) == (
        "north-care", "acknowledged", "phoned, she is fine", "critical",
    )
    assert last["at"].endswith("Z")
    assert stack.service.alerts.get(alert["id"]).state == "acknowledged"  # the store, not just the answer

    resolved = stack.post(f"/api/v1/alerts/{alert['id']}/resolve", "care")  # the body is optional
    assert resolved.status_code == 200 and resolved.json()["state"] == "resolved"
    again = stack.post(f"/api/v1/alerts/{alert['id']}/resolve", "care")
    assert again.status_code == 409 and "already resolved" in again.json()["detail"]
    assert again.headers["content-type"] == "application/problem+json"
    assert stack.post(f"/api/v1/alerts/{alert['id']}/ack", "care").status_code == 409
    assert stack.post("/api/v1/alerts/99999999/ack", "admin").status_code == 404
    assert stack.post("/api/v1/alerts/not-a-number/ack", "admin").status_code == 422
    assert stack.post(f"/api/v1/alerts/{alert['id']}/ack", "care", json={"note": "x" * 3000}).status_code == 422
    listed = stack.get("/api/v1/alerts?state=resolved&subject=h-0001", "care").json()["alerts"]
    assert alert["id"] in {a["id"] for a in listed}
    assert alert["id"] not in {a["id"] for a in stack.get("/api/v1/alerts?state=active", "care").json()["alerts"]}
    assert stack.get("/api/v1/alerts?state=sleeping", "admin").status_code == 422

    audit = stack.get("/api/v1/audit?home=h-0001", "admin").json()["entries"]
    actions = [(e["action"], e["detail"]) for e in audit if e["token_name"] == "north-care"]
    assert ("alert.resolve", str(alert["id"])) in actions and ("alert.ack", str(alert["id"])) in actions


def test_list_limit_counts_only_alerts_in_scope(stack: Stack) -> None:
    # Street sees no care alert; a page of street alerts is still full when care alerts are newer.
    street = [stack.raise_alert(f"limit_check_{i}", "street", "bed-02", f"street {i}") for i in range(3)]
    for i in range(5):
        stack.raise_alert(f"limit_check_care_{i}", "care", "h-0002", f"care {i}")
    page = stack.get("/api/v1/alerts?limit=2", "street").json()["alerts"]
    assert [a["id"] for a in page] == [street[2].id, street[1].id]


class Listener:
    """An SSE client on its own thread, collecting events, comments and resyncs until told to stop."""

    def __init__(self, stack: Stack, who: str) -> None:
        self.stack, self.who = stack, who
        self.alerts: list[dict[str, Any]] = []
        self.comments: list[str] = []
        self.resyncs = 0
        self.connected = threading.Event()
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, name=f"sse-{who}", daemon=True)
        self.thread.start()
        assert self.connected.wait(10), f"{who} stream did not connect"

    def _run(self) -> None:
        try:
            with httpx.Client(base_url=self.stack.base_url, timeout=10) as client, client.stream(
                "GET", "/api/v1/alerts/stream", params={"access_token": self.stack.tokens[self.who]}
            ) as resp:
                assert resp.headers["content-type"].startswith("text/event-stream")
                event = None
                for line in resp.iter_lines():
                    if line == ": connected":
                        self.connected.set()
                    elif line.startswith(":"):
                        self.comments.append(line)
                    elif line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: "):
                        if event == "alert":
                            self.alerts.append(orjson.loads(line[6:]))
                        elif event == "resync":
                            self.resyncs += 1
                    if self.stop.is_set():
                        return
        except BaseException as exc:  # reported by the test, not lost on this thread
            self.errors.append(exc)

    def about(self, ids: set[int]) -> list[dict[str, Any]]:
        return [a for a in self.alerts if a["id"] in ids]

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        assert not self.thread.is_alive() and not self.errors, self.errors


def test_stream_delivers_real_changes_within_scope(
    stack: Stack, publish: Callable[[str, bytes], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api.alerts, "HEARTBEAT_S", 0.2)  # heartbeats also let the listeners notice stop
    listening_before = len(stack.service.alert_feed)
    stack.resolve_open("help_button", "h-0001")
    listeners = {who: Listener(stack, who) for who in ("care", "street", "display")}
    assert len(stack.service.alert_feed) == listening_before + 3
    try:
        help_alert = _press_help(stack, publish)
        display = listeners["display"]
        eventually(lambda: display.about({help_alert["id"]}), what="the press on the display's stream")
        cold = stack.raise_alert("cold_home", "care", "h-0002", "Living room 15.2 °C for 4 h")
        water = stack.raise_alert("needs_water", "street", "bed-03", "Far bed needs water now: 19 %")
        eventually(lambda: len(display.about({cold.id, water.id})) == 2, what="cold and water on the display")
        assert stack.post(f"/api/v1/alerts/{help_alert['id']}/ack", "care").status_code == 200
        mine = {help_alert["id"], cold.id, water.id}
        eventually(lambda: len(display.about(mine)) == 4, what="the acknowledgement on the display")
        eventually(lambda: len(listeners["care"].about(mine)) == 2, what="care's two events")
        eventually(lambda: listeners["display"].comments.count(": keep-alive") >= 1, what="a heartbeat")
    finally:
        for listener in listeners.values():
            listener.close()

    care = [(e["id"], e["state"]) for e in listeners["care"].about(mine)]
    assert care == [(help_alert["id"], "open"), (help_alert["id"], "acknowledged")]
    assert listeners["care"].about(mine)[0]["message"].startswith("Help button pressed")
    assert [e["id"] for e in listeners["street"].about(mine)] == [water.id]
    shown = listeners["display"].about(mine)
    assert [(e["id"], e["redacted"]) for e in shown] == [
        (help_alert["id"], True), (cold.id, True), (water.id, False), (help_alert["id"], True),
    ]
    assert all(e["evidence"] == {} and e["history"] == [] for e in shown if e["redacted"])
    # Clients gone: their listeners are removed from the feed.
    eventually(lambda: len(stack.service.alert_feed) == listening_before, what="listeners removed")
    stack.service.alerts.resolve(help_alert["id"], "test-cleanup")


def test_slow_client_gets_resync_instead_of_unbounded_queue(stack: Stack) -> None:
    alert = stack.raise_alert("resync_check", "street", "bed-02", "one")
    changes = [AlertChange("updated", alert)] * 3

    async def scenario() -> tuple[object, ...]:
        inbox = StreamInbox(asyncio.get_running_loop(), maxsize=2)
        for change in changes:
            inbox.push(change)  # as the lifecycle's thread would: handed over, never blocking
        await asyncio.sleep(0)  # let the loop take the hand-overs
        overflowed = await inbox.next(0.5)
        after = await inbox.next(0.05)  # what was queued went with the resync
        inbox.push(changes[0])
        fresh = await inbox.next(0.5)
        return overflowed, after, fresh

    assert asyncio.run(scenario()) == (RESYNC, None, changes[0])


def test_stream_needs_a_token(stack: Stack) -> None:
    assert stack.get("/api/v1/alerts/stream", None).status_code == 401
    wrong = {"access_token": "wrong-token-wrong-token"}
    assert stack.client.get("/api/v1/alerts/stream", params=wrong).status_code == 401
    assert stack.get("/api/v1/alerts/stream", "sensor").status_code == 403


def _events(stack: Stack, who: str, last_event_id: str | None, until: Callable[[list[tuple[str, str, str]]], bool]
            ) -> list[tuple[str, str, str]]:
    """(id, event, data) of a stream read until ``until`` holds (or a deadline)."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    seen: list[tuple[str, str, str]] = []
    event_id, event = "", ""
    deadline = time.monotonic() + 10
    with httpx.Client(base_url=stack.base_url, timeout=10) as client, client.stream(
        "GET", "/api/v1/alerts/stream", params={"access_token": stack.tokens[who]}, headers=headers
    ) as resp:
        for line in resp.iter_lines():
            if line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                seen.append((event_id, event, line[6:]))
                event_id, event = "", ""
            # Keep-alive comments come every HEARTBEAT_S, so the deadline is looked at even while nothing happens.
            if until(seen) or time.monotonic() > deadline:
                return seen
    return seen


def test_a_client_that_reconnects_with_last_event_id_gets_what_it_missed(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api.alerts, "HEARTBEAT_S", 0.2)
    first = stack.raise_alert("resume_check", "street", "bed-01", "before the drop")
    seen: list[str] = []

    def grab() -> None:
        seen.extend(i for i, e, _ in _events(stack, "street", None, lambda s: any(e == "alert" for _, e, _ in s)))

    reader = threading.Thread(target=grab, daemon=True)
    reader.start()
    eventually(lambda: len(stack.service.alert_feed) >= 1, what="the stream to listen")
    stack.service.alerts.apply(Finding("resume_check", "street", "bed-01", "warning", "first seen", now_ms()))
    reader.join(10)
    assert seen and seen[0].startswith(stack.service.alert_feed.epoch + ".")
    # While the client is away, two changes happen; reconnecting with the last id it saw gives it exactly those.
    stack.service.alerts.apply(Finding("resume_check", "street", "bed-01", "critical", "missed one", now_ms()))
    missed = stack.raise_alert("resume_check_2", "street", "bed-02", "missed two")
    got = _events(stack, "street", seen[0], lambda s: len([e for e in s if e[1] == "alert"]) >= 2)
    alerts = [orjson.loads(data) for _, event, data in got if event == "alert"]
    assert [(a["id"], a["message"]) for a in alerts] == [(first.id, "missed one"), (missed.id, "missed two")]
    ids = [i for i, event, _ in got if event == "alert"]
    assert all(int(i.split(".")[1]) > int(seen[0].split(".")[1]) for i in ids)
    # An id from another run (or one too old to replay) asks the client to fetch the list again.
    stale = _events(stack, "street", "0000dead.5", lambda s: bool(s))
    assert stale[0][1] == "resync"
    for alert in (first, missed):
        stack.service.alerts.resolve(alert.id, "test-cleanup")

"""Acknowledge from the message, who was told, and a failed delivery raised as an ops alert — through the real
service and API (uvicorn, real mosquitto, InfluxDB, SQLite), with GOV.UK Notify's stand-in (``FakeNotify``, called
by the official client) in place of the real service, which cannot be reached from here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import yaml

from api.app import create_app
from devices.registry import Registry
from placesense.basics.findings import Finding
from placesense.service import Service
from placesense.tools.localstack.influxdb import InfluxDB
from placesense.tools.localstack.mosquitto import Mosquitto
from tests.alerts.fake_services import FakeNotify, fake_notify
from tests.api.conftest import REGISTRY, make_tokens, now_ms, serve
from tests.helpers import eventually, stack_settings

CARER, LEADER = "07700900101", "07700900102"
RULES = {
    "notifications": {
        "people": {"amira": {"name": "Amira Khan", "sms": CARER}, "bob": {"name": "Bob Jones", "sms": LEADER}},
        "rotas": [
            {"name": "north", "audience": "care", "care_team": "north", "shifts": [{"chain": ["amira", "bob"]}]},
            {"name": "south", "audience": "care", "care_team": "south", "fallback": ["bob"]},
        ],
    },
}


@dataclass
class NotifyStack:
    service: Service
    client: httpx.Client
    tokens: dict[str, str]
    notify: FakeNotify

    def get(self, path: str, who: str) -> httpx.Response:
        return self.client.get(path, headers={"Authorization": f"Bearer {self.tokens[who]}"})


@pytest.fixture(scope="module")
def stack(mosquitto: Mosquitto, influx: InfluxDB, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NotifyStack]:
    tmp = tmp_path_factory.mktemp("notify-api")
    rules_path = tmp / "rules.yaml"
    rules_path.write_text(yaml.safe_dump(RULES))
    unique = uuid.uuid4().hex[:10]
    with fake_notify() as notify:
        settings = stack_settings(
            mosquitto, influx, f"t_notify_{unique}", tmp, f"n-{unique}", rules_path=rules_path,
            public_url="https://placesense.test", ack_link_secret="test-link-secret-" + uuid.uuid4().hex,
            notify_api_key=notify.api_key, notify_base_url=notify.url, notify_sms_template_id=notify.sms_template_id,
            notify_receipt_every_s=1,
        )
        service = Service.build(settings, registry=Registry.from_data(REGISTRY))
        service.start()
        secrets, tokens = make_tokens()
        server, base_url = serve(create_app(service, manage_lifecycle=False, tokens=tokens))
        try:
            with httpx.Client(base_url=base_url, timeout=20) as client:
                yield NotifyStack(service, client, secrets, notify)
        finally:
            server.should_exit = True
            service.stop()
            httpx.post(f"{influx.url}/query", data={"q": f'DROP DATABASE "t_notify_{unique}"'}, timeout=30)


def test_the_link_in_the_text_acknowledges_once_as_that_person(stack: NotifyStack) -> None:
    alert = stack.service.alerts.apply(Finding("help_button", "care", "h-0001", "critical",
                                               "Help button pressed (hallway). Call or visit now.", now_ms()))
    assert alert is not None
    [text] = eventually(lambda: stack.notify.texts_to(CARER), what="the carer's text")
    link = httpx.URL(text.rsplit("Acknowledge: ", 1)[1])
    assert link.host == "placesense.test" and link.path.startswith("/ack/")

    page = stack.client.get(link.path)  # what a phone, or a link preview, opens: it must change nothing
    assert page.status_code == 200 and "I am dealing with it (Amira Khan)" in page.text
    assert "form-action 'self'" in page.headers["content-security-policy"]
    assert stack.service.alerts.get(alert.id).state == "open"

    done = stack.client.post(link.path)
    assert done.status_code == 200 and "acknowledged by Amira Khan (link in message)" in done.text
    acknowledged = stack.service.alerts.get(alert.id)
    assert acknowledged.state == "acknowledged" and acknowledged.history[-1].who == "Amira Khan (link in message)"
    again = stack.client.post(link.path)
    assert again.status_code == 410 and "already been used" in again.text
    assert stack.client.get(link.path).status_code == 410
    forged = link.path[:-3] + ("AAA" if not link.path.endswith("AAA") else "BBB")
    assert stack.client.post(forged).status_code == 404

    audit = stack.get("/api/v1/audit?home=h-0001", "admin").json()["entries"]
    assert ("link:amira", "alert.ack.link", str(alert.id)) in {(e["token_name"], e["action"], e["detail"])
                                                               for e in audit}

    told = stack.get(f"/api/v1/alerts/{alert.id}/notifications", "admin").json()["notifications"]
    sms = [n for n in told if n["channel"] == "sms"]
    assert [(n["person"], n["name"], n["recipient"], n["action"]) for n in sms] == [
        ("amira", "Amira Khan", CARER, "opened")]
    assert sms[0]["state"] in ("sent", "delivered") and sms[0]["sent_at"]
    assert {n["channel"] for n in told} == {"mqtt", "sms"}
    care_view = stack.get(f"/api/v1/alerts/{alert.id}/notifications", "care").json()["notifications"]
    assert all(n["recipient"] is None for n in care_view)  # staff numbers are for admins
    assert stack.get(f"/api/v1/alerts/{alert.id}/notifications", "care2").status_code == 404  # not their home
    assert stack.get(f"/api/v1/alerts/{alert.id}/notifications", "display").status_code == 403
    listed = stack.get("/api/v1/alerts?subject=h-0001", "care").json()["alerts"]
    summary = next(a for a in listed if a["id"] == alert.id)["notifications"]
    assert summary["told"] == ["Amira Khan"] and summary["failed"] == 0


def test_a_text_that_cannot_be_delivered_raises_an_ops_alert(stack: NotifyStack) -> None:
    stack.notify.fail_numbers.add(LEADER)
    alert = stack.service.alerts.apply(Finding("cold_home", "care", "h-0002", "warning",
                                               "Living room 15.2 °C for 3 h", now_ms()))
    assert alert is not None
    eventually(lambda: stack.notify.texts_to(LEADER), what="the text to the fallback person")

    def failing_alert() -> dict[str, object] | None:
        ops = stack.get("/api/v1/alerts?audience=ops&state=active", "admin").json()["alerts"]
        return next((a for a in ops if a["rule"] == "notifications_failing"), None)

    raised = eventually(failing_alert, 30, "the notifications_failing ops alert")
    message = str(raised["message"])
    assert "GOV.UK Notify text messages to Bob Jones" in message and "permanent-failure" in message
    told = stack.get(f"/api/v1/alerts/{alert.id}/notifications", "admin").json()["notifications"]
    assert [n["state"] for n in told if n["channel"] == "sms"] == ["failed"]
    assert stack.client.get("/healthz").status_code == 503

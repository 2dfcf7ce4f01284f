"""Fixtures for API tests: one running Service (real mosquitto, InfluxDB, SQLite, and the real rule engine,
routine detector and alert lifecycle it builds) for the whole package, tokens for every role, and the API served
by a real uvicorn on a loopback port (so streaming responses behave as in production), called with httpx.

Alerts come from the real ``AlertService``: either by publishing readings over MQTT that make a rule fire, or by
applying a ``Finding`` as a rule would (``Stack.raise_alert``) where a test needs one of each audience at once.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import paho.mqtt.client as mqtt
import pytest
import uvicorn

from api.app import create_app
from api.auth import TokenEntry, TokenStore, hash_token
from devices.registry import Registry
from placesense.alerts.store import Alert
from placesense.basics.findings import Audience, Finding, Severity
from placesense.service import Service
from placesense.tools.localstack.influxdb import InfluxDB
from placesense.tools.localstack.mosquitto import Mosquitto
from tests.helpers import stack_settings

REGISTRY: dict[str, Any] = {
    "homes": [
        {"id": "h-0001", "name": "Test Resident One", "care_team": "north"},
        {"id": "h-0002", "name": "Test Resident Two", "care_team": "south"},
    ],
    "flowerbeds": [
        {"id": "bed-01", "name": "Rose bed", "lat": 53.04, "lon": -2.99},
        {"id": "bed-02", "name": "Near bed", "lat": 53.0401, "lon": -2.9901},
        {"id": "bed-03", "name": "Far bed", "lat": 53.05, "lon": -2.99},
        {"id": "bed-04", "name": "Library planter", "lat": 53.06, "lon": -3.0},  # watered in test_street_actions
    ],
    "air_sites": [{"id": "air-01", "name": "High Street", "lat": 53.05, "lon": -2.99}],
    "devices": [
        {"id": "h-0001-kitchen-pir", "domain": "home", "subject": "h-0001", "kind": "motion", "room": "kitchen"},
        {"id": "h-0001-help", "domain": "home", "subject": "h-0001", "kind": "help_button", "room": "hallway"},
        {"id": "h-0002-kitchen-pir", "domain": "home", "subject": "h-0002", "kind": "motion", "room": "kitchen"},
        {"id": "bed-01-soil", "domain": "soil", "subject": "bed-01", "kind": "soil"},
        {"id": "bed-02-soil", "domain": "soil", "subject": "bed-02", "kind": "soil"},
        {"id": "bed-03-soil", "domain": "soil", "subject": "bed-03", "kind": "soil"},
        {"id": "bed-04-soil", "domain": "soil", "subject": "bed-04", "kind": "soil"},
        {"id": "air-01-aq", "domain": "air", "subject": "air-01", "kind": "air"},
        {"id": "air-01-diy", "domain": "air", "subject": "air-01", "kind": "air", "format": "sensor_community",
         "source_id": "esp8266-1520847"},
    ],
}

ROLES = ("admin", "care", "care2", "street", "display", "sensor", "sensor2")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Stack:
    service: Service
    client: httpx.Client
    base_url: str
    tokens: dict[str, str]
    prefix: str

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def get(self, path: str, who: str | None, **kwargs: Any) -> httpx.Response:
        headers = self.auth(who) if who else {}
        return self.client.get(path, headers=headers, **kwargs)

    def post(self, path: str, who: str | None, **kwargs: Any) -> httpx.Response:
        headers = {**(self.auth(who) if who else {}), **kwargs.pop("headers", {})}
        return self.client.post(path, headers=headers, **kwargs)

    def topic(self, domain: str, device: str) -> str:
        return f"{self.prefix}placesense/v1/{domain}/{device}/telemetry"

    def raise_alert(
        self,
        rule: str,
        audience: Audience,
        subject: str,
        message: str,
        severity: Severity = "warning",
        evidence: Mapping[str, float | int | str | None] | None = None,
    ) -> Alert:
        """Open an alert as a rule would: a finding applied to the real alert lifecycle."""
        finding = Finding(rule, audience, subject, severity, message, now_ms(), evidence=evidence or {"minutes": 42})
        alert = self.service.alerts.apply(finding)
        assert alert is not None
        return alert

    def resolve_open(self, rule: str, subject: str) -> None:
        """Close what an earlier test left open, so the next reading opens a fresh alert."""
        for alert in self.service.alerts.list_alerts(state="active", subject=subject):
            if alert.rule == rule:
                self.service.alerts.resolve(alert.id, "test-cleanup")


def telemetry(ts_ms: int, seq: int, **metrics: float) -> bytes:
    """A canonical telemetry payload."""
    return orjson.dumps({"ts": ts_ms, "metrics": metrics, "seq": seq})


def make_tokens() -> tuple[dict[str, str], TokenStore]:
    secrets = {who: f"tok-{who}-{uuid.uuid4().hex}" for who in ROLES}
    entries = [
        TokenEntry(name="ops-admin", role="admin", sha256=hash_token(secrets["admin"])),
        TokenEntry(name="north-care", role="care", homes=["h-0001"], sha256=hash_token(secrets["care"])),
        TokenEntry(name="south-care", role="care", homes=["h-0002"], sha256=hash_token(secrets["care2"])),
        TokenEntry(name="parks-team", role="street", sha256=hash_token(secrets["street"])),
        TokenEntry(name="ops-wall", role="display", sha256=hash_token(secrets["display"])),
        TokenEntry(name="diy-sensors", role="sensor", chips=["esp8266-1520847"], sha256=hash_token(secrets["sensor"])),
        TokenEntry(name="other-sensor", role="sensor", chips=["esp32-77"], sha256=hash_token(secrets["sensor2"])),
    ]
    return secrets, TokenStore(entries)


def serve(app: Any) -> tuple[uvicorn.Server, str]:
    """Run ``app`` on a free loopback port in a daemon thread; return the server and its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    threading.Thread(target=server.run, name="api-under-test", daemon=True).start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    return server, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="package")
def stack(mosquitto: Mosquitto, influx: InfluxDB, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    unique = uuid.uuid4().hex[:10]
    tmp = tmp_path_factory.mktemp("api")
    db = f"t_api_{unique}"
    settings = stack_settings(mosquitto, influx, db, tmp, f"api-{unique}")
    service = Service.build(settings, registry=Registry.from_data(REGISTRY))
    service.start()
    assert service.pipeline.consumer.wait_connected(10), "ingest did not connect to the broker"
    secrets, store = make_tokens()
    app = create_app(service, manage_lifecycle=False, tokens=store)
    server, base_url = serve(app)
    with httpx.Client(base_url=base_url, timeout=20) as client:
        yield Stack(service, client, base_url, secrets, settings.topic_prefix)
    server.should_exit = True
    service.stop()
    httpx.post(f"{influx.url}/query", data={"q": f'DROP DATABASE "{db}"'}, timeout=30)


@pytest.fixture(scope="package")
def publish(mosquitto: Mosquitto) -> Iterator[Callable[[str, bytes], None]]:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-api-{uuid.uuid4().hex[:8]}")
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()

    def send(topic: str, payload: bytes) -> None:
        client.publish(topic, payload, qos=1).wait_for_publish(10)

    yield send
    client.disconnect()
    client.loop_stop()

"""Registering a discovered device over the API, with no YAML edited by hand and no restart: a device nobody
registered publishes (ingest records it as discovered), an admin registers it, and then its readings are stored,
the running rules act on it (its help button opens a critical alert), the registry file keeps it for the next
start, and its own broker account, bound to its client id, logs in on a real mosquitto signalled to read it.

The service's ingest listens on the suite's open broker (an unknown device could not publish on a secured one);
the broker folder the registration writes to is served by a second, secured mosquitto.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import yaml

from api.app import create_app
from api.auth import TokenEntry, TokenStore, hash_token
from devices.registry import load_registry
from placesense.service import Service
from placesense.tools.broker_config import Listener, write_broker_config
from placesense.tools.localstack.influxdb import InfluxDB
from placesense.tools.localstack.mosquitto import Mosquitto
from placesense.tools.localstack.process import free_port
from tests.api.conftest import REGISTRY, serve
from tests.helpers import eventually, influx_query, stack_settings
from tests.trust.conftest import MqttUser

ADMIN = f"tok-admin-{uuid.uuid4().hex}"
CARE = f"tok-care-{uuid.uuid4().hex}"
NEW = "h-0001-spare-help"


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[tuple[Mosquitto, Path]]:
    port = free_port()
    files = write_broker_config(load_registry(_registry_file(tmp_path)), tmp_path / "broker",
                                listen=Listener("127.0.0.1", port))
    broker = Mosquitto(tmp_path / "secured", port=port, config_dir=files.directory)
    broker.start()
    assert broker.proc.process is not None
    pid_file = tmp_path / "mosquitto.pid"
    pid_file.write_text(str(broker.proc.process.pid))
    yield broker, pid_file
    broker.stop()


def _registry_file(tmp_path: Path) -> Path:
    path = tmp_path / "registry.yaml"
    if not path.exists():
        path.write_text(yaml.safe_dump(REGISTRY))
    return path


def test_a_discovered_device_is_registered_and_watched_without_restart(
    mosquitto: Mosquitto, influx: InfluxDB, influx_db: str, tmp_path: Path, secured: tuple[Mosquitto, Path],
) -> None:
    broker, pid_file = secured
    unique = uuid.uuid4().hex[:8]
    settings = stack_settings(mosquitto, influx, influx_db, tmp_path, f"reg-{unique}",
                              registry_path=_registry_file(tmp_path), broker_dir=tmp_path / "broker",
                              broker_pid_file=pid_file)
    service = Service.build(settings)
    service.start()
    tokens = TokenStore([TokenEntry(name="ops-admin", role="admin", sha256=hash_token(ADMIN)),
                         TokenEntry(name="north-care", role="care", homes=["h-0001"], sha256=hash_token(CARE))])
    server, base_url = serve(create_app(service, manage_lifecycle=False, tokens=tokens))
    admin = {"Authorization": f"Bearer {ADMIN}"}
    try:
        assert service.pipeline.consumer.wait_connected(10)
        publisher = MqttUser(mosquitto.port, None, None, f"pub-{unique}")
        topic = f"{settings.topic_prefix}placesense/v1/home/{NEW}/telemetry"
        now = time.time_ns() // 1_000_000
        publisher.publish(topic, orjson.dumps({"ts": now, "metrics": {"battery_pct": 88.0}, "seq": 1}))
        with httpx.Client(base_url=base_url, timeout=20) as api:
            eventually(lambda: any(d["source_id"] == NEW
                                   for d in api.get("/api/v1/devices/discovered", headers=admin).json()),
                       20, "the unknown device to be discovered")
            body = {"id": NEW, "domain": "home", "subject": "h-0001", "kind": "help_button", "room": "hallway"}
            refused = api.post("/api/v1/devices", json=body, headers={"Authorization": f"Bearer {CARE}"})
            assert refused.status_code == 403
            never_heard = api.post("/api/v1/devices", json={**body, "id": "h-0001-never-heard"}, headers=admin)
            assert never_heard.status_code == 409

            done = api.post("/api/v1/devices", json=body, headers=admin)
            assert done.status_code == 201, done.text
            answer = done.json()
            assert answer["evaluation_watching"] and answer["broker_reloaded"]
            account = answer["broker"]
            assert account["username"] == NEW and account["client_id"] == NEW and len(account["password"]) > 30
            assert api.post("/api/v1/devices", json=body, headers=admin).status_code == 409  # once only
            # Registered, it is no longer listed as discovered.
            listed = api.get("/api/v1/devices/discovered", headers=admin).json()
            assert NEW not in [d["source_id"] for d in listed]

            # The running service stores its readings and the running rules act on its help button.
            publisher.publish(topic, orjson.dumps({"ts": now + 1000, "metrics": {"help_pressed": True}, "seq": 2}))

            def help_alert() -> bool:
                alerts = api.get("/api/v1/alerts", params={"subject": "h-0001", "state": "active"},
                                 headers=admin).json()
                return any(a["rule"] == "help_button" and a.get("device_id") == NEW for a in alerts["alerts"])

            eventually(help_alert, 30, "the new help button's press to open an alert")
            eventually(lambda: influx_query(influx.url, influx_db,
                                            f"SELECT count(*) FROM \"home\" WHERE device = '{NEW}'"),
                       20, "the new device's readings in InfluxDB")
        publisher.client.disconnect()
        publisher.client.loop_stop()
    finally:
        server.should_exit = True
        service.stop()

    # The registry file keeps it for the next start.
    assert NEW in load_registry(tmp_path / "registry.yaml").devices
    # Its own broker account logs in on the secured broker, with its client id only, and may write its topic.
    device = MqttUser(broker.port, NEW, account["password"], NEW)
    assert device.connack is not None and not device.connack.is_failure
    assert not device.publish(topic, b"{}").is_failure
    device.client.disconnect()
    guess = MqttUser(broker.port, NEW, "not-its-password", f"guess-{unique}")
    assert guess.connack is not None and guess.connack.is_failure
    for user in (device, guess):
        user.client.loop_stop()

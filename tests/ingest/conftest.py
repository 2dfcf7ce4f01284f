"""Fixtures for ingest tests: a registry, settings pointing at the real servers, and a running service."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from devices.registry import Registry
from placesense.localstack import InfluxDB, Mosquitto
from placesense.service import Service
from placesense.settings import Settings

REGISTRY: dict[str, Any] = {
    "homes": [{"id": "h-0001", "name": "Test Resident"}],
    "flowerbeds": [{"id": "bed-01", "name": "Rose bed", "lat": 53.04, "lon": -2.99}],
    "air_sites": [{"id": "air-01", "name": "High Street", "lat": 53.05, "lon": -2.99}],
    "devices": [
        {"id": "h-0001-kitchen-pir", "domain": "home", "subject": "h-0001", "kind": "motion", "room": "kitchen"},
        {"id": "h-0001-climate", "domain": "home", "subject": "h-0001", "kind": "climate", "room": "living_room"},
        {"id": "bed-01-soil", "domain": "soil", "subject": "bed-01", "kind": "soil"},
        {"id": "air-01-aq", "domain": "air", "subject": "air-01", "kind": "air"},
    ],
}


@pytest.fixture
def registry() -> Registry:
    return Registry.from_data(REGISTRY)


@pytest.fixture
def settings_for(
    tmp_path: Path, unique: str, database_url: str
) -> Callable[..., Settings]:
    def build(broker: Mosquitto, influx: InfluxDB, db: str, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "mqtt_url": broker.url,
            "mqtt_client_id": f"ingest-{unique}",
            "topic_prefix": f"t{unique}/",
            "influx_url": influx.url,
            "influx_db": db,
            "database_url": database_url,
            "spool_dir": tmp_path / "spool",
            "state_dir": tmp_path / "state",
            "batch_max_ms": 50,
            "influx_timeout_s": 2.0,
        }
        values.update(overrides)
        return Settings(**values)

    return build


@pytest.fixture
def service(
    mosquitto: Mosquitto, influx: InfluxDB, influx_db: str, registry: Registry, settings_for: Callable[..., Settings]
) -> Iterator[Service]:
    svc = Service.build(settings_for(mosquitto, influx, influx_db), registry=registry)
    svc.start()
    assert svc.pipeline.consumer.wait_connected(10), "ingest did not connect to the broker"
    yield svc
    svc.stop()


@pytest.fixture
def publisher(mosquitto: Mosquitto, unique: str) -> Iterator[Callable[..., None]]:
    """Publish QoS 1 messages and wait until the broker has them all."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-{unique}")
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()

    def publish(topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> None:
        info = client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(10)

    yield publish
    client.disconnect()
    client.loop_stop()

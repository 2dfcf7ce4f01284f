"""Fixtures for ingest tests: a registry, settings pointing at the real servers, and a running service."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from devices.registry import Registry
from placesense.service import Service
from placesense.settings import Settings
from placesense.tools.localstack.influxdb import InfluxDB
from placesense.tools.localstack.mosquitto import Mosquitto

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
def service(
    mosquitto: Mosquitto, influx: InfluxDB, influx_db: str, registry: Registry, settings_for: Callable[..., Settings]
) -> Iterator[Service]:
    svc = Service.build(settings_for(mosquitto, influx, influx_db), registry=registry)
    svc.start()
    assert svc.pipeline.consumer.wait_connected(10), "ingest did not connect to the broker"
    yield svc
    svc.stop()

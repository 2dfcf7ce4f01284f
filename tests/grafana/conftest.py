"""Fixtures of the grafana room: one InfluxDB database per module, filled with two days of a fleet's readings."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from firmware_sim.fleet import build_fleet

from devices.registry import Registry
from ingest.lineprotocol import encode_batch
from placesense.localstack import InfluxDB
from tests.grafana.support import HOUR_MS, fleet_readings


@dataclass(frozen=True)
class FilledInflux:
    url: str
    db: str
    registry: Registry
    start_ms: int
    end_ms: int


def grafana_fleet() -> Registry:
    return build_fleet(homes=3, beds=4, air_sites=2, seed=5, formats="canonical")


@pytest.fixture(scope="module")
def filled_influx(influx: InfluxDB) -> Iterator[FilledInflux]:
    registry = grafana_fleet()
    end_ms = (int(time.time() * 1000) // HOUR_MS) * HOUR_MS
    start_ms = end_ms - 48 * HOUR_MS
    db = f"g_{uuid.uuid4().hex[:10]}"
    httpx.post(f"{influx.url}/query", data={"q": f'CREATE DATABASE "{db}"'}, timeout=30).raise_for_status()
    body = encode_batch(fleet_readings(registry, start_ms, end_ms))
    resp = httpx.post(f"{influx.url}/write", params={"db": db, "precision": "ms"}, content=body, timeout=60)
    assert resp.status_code == 204, resp.text
    yield FilledInflux(influx.url, db, registry, start_ms, end_ms)
    httpx.post(f"{influx.url}/query", data={"q": f'DROP DATABASE "{db}"'}, timeout=30)

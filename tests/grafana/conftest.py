"""Fixtures of the grafana room: one InfluxDB database per module, filled by the firmware simulator.

Two days of a small fleet's messages from ``firmware_sim.generate`` (with a cold home injected) are turned into
readings exactly as the canonical decoder does — same metric names and units, booleans as 1.0/0.0 — and written
as line protocol with ingest's own encoder.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from firmware_sim import build_fleet, ground_truth

from devices.readings import Reading
from devices.registry import Registry
from ingest.lineprotocol import encode_batch
from placesense.basics.timeunits import HOUR_MS
from placesense.tools.localstack.influxdb import InfluxDB
from tests.helpers import sim_readings

SEED = 5
# Three days of data with the heating failure on day 1: a failure starts 14:00-20:00 and lasts up to 18 hours, so
# it always ends before the window does, whatever the hour the tests run at (a 48-hour window with the day left to
# chance could not hold it when run in the small hours).
DAYS = 3
ANOMALIES = ["cold_home@1"]


@dataclass(frozen=True)
class FilledInflux:
    url: str
    db: str
    registry: Registry
    start_ms: int
    end_ms: int
    cold_home: str


def grafana_fleet() -> Registry:
    return build_fleet(homes=3, beds=4, air_sites=2, seed=SEED, formats="canonical")


def simulated_readings(registry: Registry, start_ms: int, end_ms: int) -> Iterator[Reading]:
    return sim_readings(registry, start_ms, end_ms, seed=SEED, anomalies=ANOMALIES)


@pytest.fixture(scope="module")
def filled_influx(influx: InfluxDB) -> Iterator[FilledInflux]:
    registry = grafana_fleet()
    end_ms = (int(time.time() * 1000) // HOUR_MS) * HOUR_MS
    start_ms = end_ms - DAYS * 24 * HOUR_MS
    (cold,) = ground_truth(registry, start_ms, end_ms, seed=SEED, anomalies=ANOMALIES)
    db = f"g_{uuid.uuid4().hex[:10]}"
    httpx.post(f"{influx.url}/query", data={"q": f'CREATE DATABASE "{db}"'}, timeout=30).raise_for_status()
    body = encode_batch(simulated_readings(registry, start_ms, end_ms))
    resp = httpx.post(f"{influx.url}/write", params={"db": db, "precision": "ms"}, content=body, timeout=60)
    assert resp.status_code == 204, resp.text
    yield FilledInflux(influx.url, db, registry, start_ms, end_ms, cold.subject)
    httpx.post(f"{influx.url}/query", data={"q": f'DROP DATABASE "{db}"'}, timeout=30)

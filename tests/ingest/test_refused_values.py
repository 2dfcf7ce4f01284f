"""Ingest against the real broker and InfluxDB with vendor-shaped payloads: one bad value is dead-lettered alone
while the rest is stored; Zigbee2MQTT's timer message keeps the motion it ends; a bridge's own topics are read
past without dead letters."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from devices.registry import Registry
from placesense.service import Service
from placesense.tools.localstack.influxdb import InfluxDB
from tests.helpers import eventually, influx_count, influx_query
from tests.ingest.conftest import REGISTRY


@pytest.fixture
def registry() -> Registry:
    data: dict[str, Any] = {**REGISTRY, "devices": [
        *REGISTRY["devices"],
        {"id": "h-0001-bedroom-pir", "domain": "home", "subject": "h-0001", "kind": "motion", "room": "bedroom",
         "format": "zigbee2mqtt", "source_id": "bedroom/motion"},
    ]}
    return Registry.from_data(data)


def test_a_sentinel_is_dead_lettered_alone_and_the_other_metrics_are_stored(
    service: Service, publisher: Callable[..., None], influx: InfluxDB, influx_db: str
) -> None:
    prefix = service.settings.topic_prefix
    ts = int(time.time() * 1000) - 60_000
    body = {"ts": ts, "metrics": {"pm2_5_ugm3": 8.4, "pm10_ugm3": 14.1, "no2_ugm3": -200}, "seq": 3}
    publisher(f"{prefix}placesense/v1/air/air-01-aq/telemetry", orjson.dumps(body))
    eventually(lambda: influx_count(influx.url, influx_db, "air") == 1, what="the air point")
    series = influx_query(influx.url, influx_db, "SELECT pm2_5_ugm3, pm10_ugm3, no2_ugm3 FROM air")
    assert series[0]["values"][0][1:] == [8.4, 14.1, None]
    letters = eventually(lambda: service.dead_letters.recent(limit=5), what="the NO2 dead letter")
    [letter] = letters
    assert letter["kind"] == "no_value" and letter["device_id"] == "air-01-aq"
    assert "no2_ugm3 not stored (the message's other values were)" in letter["reason"]


def test_zigbee2mqtt_timer_message_keeps_the_motion_and_bridge_topics_are_no_dead_letters(
    service: Service, publisher: Callable[..., None], influx: InfluxDB, influx_db: str
) -> None:
    prefix = service.settings.topic_prefix
    seen = time.strftime("%Y-%m-%dT%H:%M:%S.123Z", time.gmtime(time.time() - 120))
    state = {"battery": 100, "illuminance": 15, "linkquality": 87, "voltage": 3045, "last_seen": seen}
    publisher(f"{prefix}zigbee2mqtt/bedroom/motion", orjson.dumps({**state, "occupancy": True}))
    publisher(f"{prefix}zigbee2mqtt/bedroom/motion", orjson.dumps({**state, "occupancy": False}))  # the timer's
    publisher(f"{prefix}zigbee2mqtt/bridge/state", b'{"state":"online"}')
    publisher(f"{prefix}zigbee2mqtt/bedroom/motion/availability", b'{"state":"online"}')
    publisher(f"{prefix}zigbee2mqtt/bedroom/motion/set", b'{"occupancy_timeout": 60}')
    eventually(lambda: influx_count(influx.url, influx_db, "home") == 2, what="motion and its end, two points")
    series = influx_query(influx.url, influx_db, "SELECT motion FROM home ORDER BY time ASC")
    (first_ts, first), (second_ts, second) = series[0]["values"]
    assert (first, second) == (1.0, 0.0) and second_ts == first_ts + 1
    eventually(lambda: service.metrics.value("placesense_housekeeping_messages_total") == 3, what="three read past")
    assert service.dead_letters.count() == 0

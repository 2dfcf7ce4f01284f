"""Ingest end to end against the real broker and InfluxDB: good readings stored, bad ones dead-lettered."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import orjson
import paho.mqtt.client as mqtt
import pytest

from devices.registry import Registry
from placesense.service import Service
from placesense.settings import Settings
from placesense.tools.localstack.influxdb import InfluxDB
from placesense.tools.localstack.mosquitto import Mosquitto
from tests.helpers import eventually, influx_count, influx_query

pytestmark = pytest.mark.both_databases


def _canonical(ts_ms: int, seq: int, **metrics: float | bool) -> bytes:
    return orjson.dumps({"ts": ts_ms, "metrics": metrics, "battery_pct": 90, "seq": seq})


def test_readings_land_in_influx_with_tags_fields_and_event_time(
    service: Service, publisher: Callable[..., None], influx: InfluxDB, influx_db: str
) -> None:
    prefix = service.settings.topic_prefix
    base = int(time.time() * 1000) - 3_600_000
    for i in range(50):
        publisher(prefix + PIR, _canonical(base + i * 1000, i, motion=i % 2 == 0))
        publisher(f"{prefix}placesense/v1/soil/bed-01-soil/telemetry",
                  _canonical(base + i * 1000, i, soil_moisture_pct=30.5 - i * 0.1))

    eventually(lambda: influx_count(influx.url, influx_db, "home") == 50, what="50 home points")
    eventually(lambda: influx_count(influx.url, influx_db, "soil") == 50, what="50 soil points")
    series = influx_query(
        influx.url, influx_db,
        "SELECT motion, battery_pct, seq, device, subject, room, source FROM home ORDER BY time ASC LIMIT 2",
    )
    columns = series[0]["columns"]
    first = dict(zip(columns, series[0]["values"][0], strict=True))
    assert first == {
        "time": base, "motion": 1.0, "battery_pct": 90.0, "seq": 0,
        "device": "h-0001-kitchen-pir", "subject": "h-0001", "room": "kitchen", "source": "canonical",
    }
    assert service.metrics.value("placesense_readings_stored_total") == 100


def test_redelivered_message_does_not_double(
    service: Service, publisher: Callable[..., None], influx: InfluxDB, influx_db: str
) -> None:
    prefix = service.settings.topic_prefix
    ts = int(time.time() * 1000) - 60_000
    payload = _canonical(ts, 7, temperature_c=19.5, humidity_pct=48)
    for _ in range(3):
        publisher(f"{prefix}placesense/v1/home/h-0001-climate/telemetry", payload)
    eventually(lambda: service.metrics.value("placesense_readings_stored_total") == 3, what="three stored")
    assert influx_count(influx.url, influx_db, "home") == 1


PIR = "placesense/v1/home/h-0001-kitchen-pir/telemetry"
AIR = "placesense/v1/air/air-01-aq/telemetry"

BAD_INPUT = [
    ("malformed_json", PIR, b'{"ts": 1, "metrics": {'),
    ("wrong_type", PIR, b'{"ts": NOW, "metrics": {"motion": "yes"}}'),
    ("not_finite", PIR, b'{"ts": NOW, "metrics": {"motion": 1e999}}'),
    ("out_of_range", "placesense/v1/soil/bed-01-soil/telemetry", b'{"ts": NOW, "metrics": {"soil_moisture_pct": 140}}'),
    ("future_timestamp", AIR, b'{"ts": FUTURE, "metrics": {"no2_ugm3": 20}}'),
    ("past_timestamp", AIR, b'{"ts": "1999-01-01T00:00:00Z", "metrics": {"no2_ugm3": 20}}'),
    ("oversized", AIR, b'{"ts": NOW, "metrics": {"no2_ugm3": 20}, "pad": "' + b"x" * 70_000 + b'"}'),
    ("unknown_device", "placesense/v1/home/h-9999-ghost/telemetry", b'{"ts": NOW, "metrics": {"motion": true}}'),
    ("wrong_device", PIR, b'{"ts": NOW, "device_id": "h-0001-climate", "metrics": {"motion": true}}'),
    ("wrong_domain", "placesense/v1/air/bed-01-soil/telemetry", b'{"ts": NOW, "metrics": {"soil_moisture_pct": 20}}'),
    ("unknown_metric", PIR, b'{"ts": NOW, "metrics": {"happiness": 3}}'),
    ("bad_timestamp", PIR, b'{"ts": "yesterday", "metrics": {"motion": true}}'),
    ("missing_field", PIR, b'{"metrics": {"motion": true}}'),
    ("invalid_status", "placesense/v1/home/h-0001-kitchen-pir/status", b"sleepy"),
]


def test_every_bad_input_class_is_dead_lettered_while_good_traffic_flows(
    service: Service, publisher: Callable[..., None], influx: InfluxDB, influx_db: str
) -> None:
    prefix = service.settings.topic_prefix
    now = int(time.time() * 1000)
    good = 0
    for i, (_, topic, payload) in enumerate(BAD_INPUT):
        body = payload.replace(b"FUTURE", str(now + 86_400_000).encode())
        body = body.replace(b"NOW", str(now - 1000 * i).encode())
        publisher(prefix + topic, body)
        publisher(f"{prefix}placesense/v1/air/air-01-aq/telemetry", _canonical(now - 500_000 + i, i, no2_ugm3=30 + i))
        good += 1

    eventually(lambda: service.dead_letters.count() == len(BAD_INPUT), what="every bad message dead-lettered")
    eventually(lambda: influx_count(influx.url, influx_db, "air") == good, what="good readings around them stored")
    letters = {d["kind"]: d for d in service.dead_letters.recent(limit=100)}
    assert set(letters) == {kind for kind, _, _ in BAD_INPUT}
    for kind, topic, _ in BAD_INPUT:
        letter = letters[kind]
        assert letter["topic"] == prefix + topic
        assert letter["reason"] and len(letter["reason"]) > 10
        assert letter["payload"]
    assert letters["oversized"]["payload_size"] > 70_000
    assert "unknown device 'h-9999-ghost'" in letters["unknown_device"]["reason"]
    discovered = service.dead_letters.discovered()
    assert [(d["format"], d["source_id"]) for d in discovered] == [("canonical", "h-9999-ghost")]
    assert service.metrics.value("placesense_dead_letters_total") == len(BAD_INPUT)


def test_status_messages_update_device_state(service: Service, publisher: Callable[..., None]) -> None:
    prefix = service.settings.topic_prefix
    publisher(f"{prefix}placesense/v1/air/air-01-aq/status", b"offline", retain=False)
    state = eventually(lambda: service.device_states.get("air-01-aq"), what="a device state")
    assert state.online is False


def _queue_backlog(settings: Settings, registry: Registry, broker: Mosquitto, total: int) -> None:
    """Create ingest's persistent session, then publish ``total`` air readings for the broker to queue in it."""
    first = Service.build(settings, registry=registry)
    first.start()
    assert first.pipeline.consumer.wait_connected(10)
    first.stop()
    base = int(time.time() * 1000) - 3_600_000
    bulk = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bulk-{settings.mqtt_client_id}")
    bulk.max_inflight_messages_set(1000)
    bulk.connect("127.0.0.1", broker.port)
    bulk.loop_start()
    for i in range(total):
        info = bulk.publish(f"{settings.topic_prefix}{AIR}", _canonical(base + i, i, pm2_5_ugm3=5 + i % 7), qos=1)
    info.wait_for_publish(60)
    bulk.disconnect()
    bulk.loop_stop()


def test_a_backlog_arriving_in_large_bursts_is_cut_into_batches_of_the_configured_size(
    mosquitto: Mosquitto, influx: InfluxDB, influx_db: str, registry: Registry,
    settings_for: Callable[..., Settings],
) -> None:
    # The broker queues a backlog for the persistent session while ingest is away, then sends it as fast as the
    # Receive Maximum allows: paho's thread hands it on in bursts far larger than a batch.
    settings = settings_for(mosquitto, influx, influx_db, batch_max_points=7)
    total = 500
    _queue_backlog(settings, registry, mosquitto, total)
    batches: list[int] = []
    service = Service.build(settings, registry=registry, sinks=[lambda readings: batches.append(len(readings))])
    service.start()
    try:
        eventually(lambda: sum(batches) == total, what="the backlog stored")
        assert max(batches) == 7 and len(batches) >= total // 7
        assert service.metrics.value("placesense_messages_received_total") == total
        assert influx_count(influx.url, influx_db, "air") == total
    finally:
        service.stop()


def _gauge(service: Service, name: str) -> float:
    """A gauge as /metrics shows it."""
    return next(float(line.split()[1]) for line in service.metrics.render().splitlines() if line.startswith(name + " "))


def test_received_messages_waiting_for_a_batch_stay_bounded_whatever_the_broker_sends(
    mosquitto: Mosquitto, influx: InfluxDB, influx_db: str, registry: Registry,
    settings_for: Callable[..., Settings],
) -> None:
    # mosquitto 2.0.11 sends a resumed session's backlog past our Receive Maximum once acknowledgements flow. With
    # the rules stalled (a sink that waits), ingest must still hold no more than its bound in memory: paho stops
    # reading and the rest waits in the broker.
    settings = settings_for(mosquitto, influx, influx_db, batch_max_points=100, mqtt_receive_maximum=1000)
    total = 20_000
    _queue_backlog(settings, registry, mosquitto, total)
    release = threading.Event()
    service = Service.build(settings, registry=registry, sinks=[lambda _readings: release.wait(60)])
    service.start()
    try:
        eventually(lambda: service.metrics.value("placesense_readings_stored_total") >= 500, what="ingest blocked")
        deadline = time.monotonic() + 2.0
        deepest = 0.0
        while time.monotonic() < deadline:
            deepest = max(deepest, _gauge(service, "placesense_ingest_queue_depth"))
            time.sleep(0.005)
        # the bound (the Receive Maximum, 1,000 here) plus one read burst (at most 1,000 messages)
        assert 0 < deepest <= 2000
        assert service.metrics.value("placesense_readings_stored_total") < total
        release.set()
        eventually(lambda: influx_count(influx.url, influx_db, "air") == total, 60, "the whole backlog stored")
    finally:
        release.set()
        service.stop()

"""Dead letters on SQLite and PostgreSQL: storing one never fails on what the message holds, one device cannot fill
the disk with them, and the store stays within its bound. Through the real broker where a message is involved."""

from __future__ import annotations

import time
from collections.abc import Callable

import orjson
import paho.mqtt.client as mqtt
import pytest
import sqlalchemy

from ingest.deadletters import SOURCE_ID_MAX, DeadLetter, DeadLetterStore, bounded_key, dead_letters
from placesense.basics.db import make_engine
from placesense.service import Service
from placesense.tools.localstack.influxdb import InfluxDB
from placesense.tools.localstack.mosquitto import Mosquitto
from tests.helpers import eventually, influx_count

pytestmark = pytest.mark.both_databases

PIR = "placesense/v1/home/h-0001-kitchen-pir/telemetry"
AIR = "placesense/v1/air/air-01-aq/telemetry"


def _now() -> int:
    return int(time.time() * 1000)


def _air(ts_ms: int, seq: int) -> bytes:
    return orjson.dumps({"ts": ts_ms, "metrics": {"no2_ugm3": 21}, "seq": seq})


def test_messages_whose_topic_or_bytes_no_column_expects_are_stored_and_ingest_goes_on(
    service: Service, publisher: Callable[..., None], influx: InfluxDB, influx_db: str
) -> None:
    # On PostgreSQL a 129-character Zigbee2MQTT name once failed the VARCHAR(128) insert of the discovered device;
    # the batch was retried forever and every reading after it waited with it.
    prefix = service.settings.topic_prefix
    long_name = "x" * 129
    odd = [
        (f"zigbee2mqtt/{long_name}", b'{"occupancy": true}'),
        (f"zigbee2mqtt/{'y' * 5000}", b"{}"),
        ("zigbee2mqtt/caf\u00e9-\u2603-\U0001f600", b'{"contact": false}'),
        (PIR, b'{"ts": "\\u0000\\ud800", "metrics": {"motion": true}}'),
        (PIR, b'{"ts": 1, "device_id": "a\\u0000b\\ud800", "metrics": {"motion": true}}'),
        (PIR, b"\x00\xff\xfe binary \x00"),
        ("placesense/v1/home/h-0001-kitchen-pir/status", "\u0000\ud800".encode("utf-8", "surrogatepass")),
    ]
    for topic, payload in odd:
        publisher(prefix + topic, payload)
    publisher(prefix + AIR, _air(_now() - 1000, 1))

    eventually(lambda: influx_count(influx.url, influx_db, "air") == 1, what="the reading after them stored")
    eventually(lambda: service.dead_letters.messages() == len(odd), what="every odd message dead-lettered")
    topics = {letter["topic"] for letter in service.dead_letters.recent(limit=50)}
    assert f"{prefix}zigbee2mqtt/{long_name}" in topics
    discovered = {d["source_id"] for d in service.dead_letters.discovered()}
    assert bounded_key(long_name, SOURCE_ID_MAX) in discovered  # cut to the column, still told apart
    assert all(len(d) <= SOURCE_ID_MAX for d in discovered)
    assert len(discovered) == 3  # the long, the very long and the non-ASCII name, each its own


def test_text_a_database_refuses_as_it_came_is_stored_all_the_same(database_url: str) -> None:
    store = DeadLetterStore(make_engine(database_url))
    letters = [
        DeadLetter("t/\x00/nul", b"\x00", "reason with NUL \x00 inside", "malformed_json", _now(),
                   source_format="zigbee2mqtt", source_id="nul\x00id", device_id=None),
        DeadLetter("t/\ud800/surrogate", b"x", "unpaired \udcff surrogate", "malformed_json", _now(),
                   source_format="zigbee2mqtt", source_id="s\ud800", device_id=None),
        DeadLetter("t/long", b"x", "r" * 100_000, "k" * 300, _now(), device_id="d" * 500, subject="s" * 500,
                   source_format="f" * 300, source_id="i" * 100_000),
    ]
    store.add_many(letters)
    rows = store.recent(limit=10)
    assert len(rows) == 3
    by_topic = {row["topic"]: row for row in rows}
    assert by_topic["t/\\x00/nul"]["reason"] == "reason with NUL \\x00 inside"
    assert by_topic["t/\\ud800/surrogate"]["reason"] == "unpaired \\udcff surrogate"
    assert by_topic["t/long"]["reason"].endswith("…") and len(by_topic["t/long"]["reason"]) == 1000


def test_one_device_flooding_bad_messages_leaves_samples_and_a_count(
    service: Service, mosquitto: Mosquitto, influx: InfluxDB, influx_db: str, unique: str
) -> None:
    # Once, +330 MiB of SQLite in a second: every bad message a row of its own.
    prefix = service.settings.topic_prefix
    flood = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"flood-{unique}")
    flood.max_inflight_messages_set(500)
    flood.connect("127.0.0.1", mosquitto.port)
    flood.loop_start()
    total = 2000
    try:
        for i in range(total):
            info = flood.publish(prefix + PIR, b'{"ts": 1, "metrics": {' + str(i).encode(), qos=1)
        info.wait_for_publish(60)
        flood.publish(prefix + AIR, _air(_now() - 1000, 1), qos=1).wait_for_publish(10)
    finally:
        flood.disconnect()
        flood.loop_stop()
    eventually(lambda: service.dead_letters.messages() == total, 60, "every bad message counted")
    eventually(lambda: influx_count(influx.url, influx_db, "air") == 1, what="the good reading after them")
    rows = service.dead_letters.recent(limit=100)
    assert len(rows) == 3  # samples of the first ten minutes of this device's malformed JSON
    assert {row["kind"] for row in rows} == {"malformed_json"}
    assert {row["device_id"] for row in rows} == {"h-0001-kitchen-pir"}
    assert sum(row["repeats"] for row in rows) == total - 3
    newest = max(rows, key=lambda row: row["id"])
    assert newest["repeats"] == total - 3 and newest["last_received_ms"] >= newest["received_ms"]
    assert service.metrics.value("placesense_dead_letters_total") == total  # the metric counts every message


def test_many_sources_at_once_share_a_row_per_kind_once_the_minutes_samples_are_spent(database_url: str) -> None:
    store = DeadLetterStore(make_engine(database_url), samples_per_minute=50, max_discovered=100)
    now = _now()
    store.add_many([
        DeadLetter(f"zigbee2mqtt/ghost-{i}", b"{}", f"unknown device 'ghost-{i}'", "unknown_device", now,
                   source_format="zigbee2mqtt", source_id=f"ghost-{i}")
        for i in range(500)
    ])
    assert store.messages() == 500
    rows = store.recent(limit=1000)
    assert len(rows) <= 50 + 3
    shared = [row for row in rows if "one of many sources" in row["reason"]]
    assert shared and sum(row["repeats"] + 1 for row in shared) == 500 - (len(rows) - len(shared))
    assert len(store.discovered()) == 100  # bounded too


def test_the_store_stays_within_its_bound_and_keeps_the_newest(database_url: str) -> None:
    engine = make_engine(database_url)
    store = DeadLetterStore(engine, max_bytes=300_000, samples_per_minute=10_000)
    now = _now()
    for batch in range(20):
        store.add_many([
            DeadLetter(f"placesense/v1/home/d-{batch}-{i}/telemetry", b"x" * 10_000, "malformed JSON",
                       "malformed_json", now + batch, device_id=f"d-{batch}-{i}")
            for i in range(10)
        ])
    with engine.connect() as conn:
        payload_bytes = conn.execute(sqlalchemy.select(sqlalchemy.func.sum(
            sqlalchemy.func.length(dead_letters.c.payload)))).scalar_one()
    assert payload_bytes <= 300_000
    assert store.pruned > 0
    kept = {row["device_id"] for row in store.recent(limit=1000)}
    assert "d-19-9" in kept and "d-0-0" not in kept

"""Two more faults: a full spool disk and a slow database. Nothing accepted is lost, nothing is doubled.

- Full spool: InfluxDB is down and the spool reaches its size limit. Ingest stops acknowledging (the broker keeps
  the messages), says so, and when InfluxDB returns everything published is stored exactly once.
- Slow database: InfluxDB answers after ingest's timeout, through a real TCP relay that holds each request back.
  InfluxDB still applies the writes ingest gave up on; ingest spools them too and replays them later, and
  because writes are idempotent the count still matches exactly.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

from devices.registry import Registry
from placesense.service import Service
from placesense.settings import Settings
from placesense.tools.localstack.influxdb import InfluxDB
from placesense.tools.localstack.mosquitto import Mosquitto
from tests.helpers import eventually, influx_count
from tests.ingest.conftest import REGISTRY


class DelayingRelay:
    """A TCP relay on loopback that forwards to ``target_port``, holding every client→server chunk back by
    ``delay_s`` (adjustable while it runs): a database that has become slow."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.delay_s = 0.0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, delayed: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if delayed and self.delay_s:
                    self._stop.wait(self.delay_s)
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        for sock in self._sockets:
            sock.close()


@pytest.fixture
def registry() -> Registry:
    return Registry.from_data(REGISTRY)


def _publish_soil(publisher: Callable[..., None], prefix: str, base_ms: int, first: int, count: int) -> None:
    topic = f"{prefix}placesense/v1/soil/bed-01-soil/telemetry"
    for i in range(first, first + count):
        body = {"ts": base_ms + i, "metrics": {"soil_moisture_pct": 40 + (i % 50) / 10}, "seq": i}
        publisher(topic, orjson.dumps(body), wait=False)


@pytest.fixture
def fast_publisher(mosquitto: Mosquitto, unique: str) -> Iterator[Callable[..., None]]:
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"fastpub-{unique}")
    client.max_inflight_messages_set(200)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    last: list[mqtt.MQTTMessageInfo] = []

    def publish(topic: str, payload: bytes, wait: bool = True) -> None:
        info = client.publish(topic, payload, qos=1)
        last[:] = [info]
        if wait:
            info.wait_for_publish(30)

    yield publish
    if last:
        last[0].wait_for_publish(60)
    client.disconnect()
    client.loop_stop()


def test_a_full_spool_stops_acknowledging_and_loses_nothing(
    mosquitto: Mosquitto, own_influx: InfluxDB, registry: Registry, settings_for: Callable[..., Settings],
    fast_publisher: Callable[..., None], caplog: pytest.LogCaptureFixture,
) -> None:
    service = Service.build(settings_for(mosquitto, own_influx, "fullspool", spool_max_mb=1), registry=registry)
    service.start()
    try:
        assert service.pipeline.consumer.wait_connected(10)
        own_influx.stop()
        base = int(time.time() * 1000) - 3_600_000
        total = 25_000  # about 2.5 MB of line protocol: well past the 1 MB spool
        _publish_soil(fast_publisher, service.settings.topic_prefix, base, 0, total)
        spool = service.pipeline.writer.spool
        # Full means the next batch does not fit: how close to the limit that leaves it depends on batch sizes.
        eventually(lambda: "is full" in caplog.text, 60, "a log line saying the spool is full")
        stored_when_full = service.metrics.value("placesense_readings_stored_total")
        assert 0 < stored_when_full < total
        assert 0 < spool.size_bytes <= spool.max_bytes
        assert service.pipeline.writer.influx_up is False
        own_influx.start()
        eventually(lambda: influx_count(own_influx.url, "fullspool", "soil") >= total, 120, "everything stored")
        assert influx_count(own_influx.url, "fullspool", "soil") == total
        eventually(lambda: len(spool) == 0, 30, "the spool drained")
    finally:
        service.stop()


def test_a_database_slower_than_the_timeout_doubles_nothing(
    mosquitto: Mosquitto, influx: InfluxDB, influx_db: str, registry: Registry, tmp_path: Path,
    settings_for: Callable[..., Settings], fast_publisher: Callable[..., None],
) -> None:
    relay = DelayingRelay(influx.port)
    settings = settings_for(mosquitto, influx, influx_db, influx_url=f"http://127.0.0.1:{relay.port}",
                            influx_timeout_s=0.5)
    service = Service.build(settings, registry=registry)
    service.start()
    try:
        assert service.pipeline.consumer.wait_connected(10)
        base = int(time.time() * 1000) - 3_600_000
        prefix = service.settings.topic_prefix
        _publish_soil(fast_publisher, prefix, base, 0, 3000)
        eventually(lambda: influx_count(influx.url, influx_db, "soil") >= 3000, 60, "the first readings stored")
        relay.delay_s = 1.5  # every write now outlives the 0.5 s timeout, yet InfluxDB still applies it
        _publish_soil(fast_publisher, prefix, base, 3000, 7000)
        eventually(lambda: service.metrics.value("placesense_readings_spooled_total") > 0, 60, "timeouts spooled")
        eventually(lambda: service.metrics.value("placesense_readings_stored_total") >= 10_000, 90, "all durable")
        relay.delay_s = 0.0
        eventually(lambda: len(service.pipeline.writer.spool) == 0 and service.pipeline.writer.influx_up, 90,
                   "the spool replayed once InfluxDB is fast again")
        assert influx_count(influx.url, influx_db, "soil") == 10_000
        assert service.dead_letters.count() == 0
    finally:
        service.stop()
        relay.close()

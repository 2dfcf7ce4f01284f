"""Faults against real processes: kill -9 of placesense, InfluxDB stopped, broker restarted. Nothing is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import psutil
import pytest
import yaml

from devices.registry import Registry
from ingest.journal import Journal
from placesense import evaluation_state
from placesense.evaluation_state import STATE_FILE
from placesense.service import Service
from placesense.settings import Settings
from placesense.tools.localstack.influxdb import InfluxDB
from placesense.tools.localstack.mosquitto import Mosquitto
from tests.helpers import eventually, influx_count, serve_settings
from tests.ingest.conftest import REGISTRY


class SteadyPublisher:
    """Publishes ``total`` canonical soil readings (distinct timestamps) in a background thread, QoS 1."""

    def __init__(self, broker: Mosquitto, prefix: str, total: int, client_id: str) -> None:
        self.broker = broker
        self.prefix = prefix
        self.total = total
        self.sent = 0
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.max_inflight_messages_set(500)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(0.1, 1)
        self.client.connect_async("127.0.0.1", broker.port, clean_start=False)
        self.client.loop_start()
        self.base = int(time.time() * 1000) - 6 * 3_600_000
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.last: Any = None

    def start(self) -> SteadyPublisher:
        self._thread.start()
        return self

    def _run(self) -> None:
        topic = f"{self.prefix}placesense/v1/soil/bed-01-soil/telemetry"
        for i in range(self.total):
            # Moist soil that varies a little: stored faithfully, and no watering alerts to distract.
            body = {"ts": self.base + i, "metrics": {"soil_moisture_pct": 40 + (i % 50) / 10}, "seq": i}
            self.last = self.client.publish(topic, orjson.dumps(body), qos=1)
            self.sent = i + 1
            if i % 200 == 199:
                time.sleep(0.005)  # a steady stream rather than one burst, so faults land mid-stream

    def join(self) -> None:
        self._thread.join(120)
        assert self.last is not None
        self.last.wait_for_publish(60)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def registry_file(tmp_path: Path) -> Path:
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump(REGISTRY))
    return path


def test_kill_9_mid_stream_then_restart_loses_nothing_and_doubles_nothing(
    mosquitto: Mosquitto, influx: InfluxDB, influx_db: str, registry_file: Path, tmp_path: Path, unique: str,
    serve_process: Callable[[dict[str, str]], subprocess.Popen[bytes]],
) -> None:
    settings = serve_settings(mosquitto, influx, influx_db, registry_file, tmp_path, f"k{unique}")
    total = 20_000
    first = serve_process(settings)
    publisher = SteadyPublisher(mosquitto, f"k{unique}/", total, f"pub-{unique}").start()
    try:
        for kill in range(2):
            # Kill while the stream is flowing: some readings stored, many still coming.
            goal = 2000 * (kill + 1)
            eventually(lambda goal=goal: influx_count(influx.url, influx_db, "soil") > goal, 60, "progress")
            evaluation = psutil.Process(first.pid).children()
            assert evaluation, "serve runs its rules and detectors in a child process"
            first.send_signal(signal.SIGKILL)
            first.wait(10)
            # Its evaluation process notices its parent is gone, saves what it learned and exits: no orphan.
            _, alive = psutil.wait_procs(evaluation, timeout=30)
            assert not alive, "the evaluation process outlived a killed placesense serve"
            assert (tmp_path / "state" / STATE_FILE).exists()
            first = serve_process(settings)
        publisher.join()
        eventually(lambda: influx_count(influx.url, influx_db, "soil") >= total, 120, f"{total} readings stored")
        assert influx_count(influx.url, influx_db, "soil") == total
        first.terminate()
        assert first.wait(30) in (0, -signal.SIGTERM)
    finally:
        publisher.close()
    # Every stored batch reached the rules despite two kills, or waits for them in the journal: the saved state
    # ends at some batch and the journal holds every batch after it, without a gap (under load a stop may come
    # before the rules have caught up; the next start evaluates the rest).
    saved = evaluation_state.load(tmp_path / "state")
    assert not saved.problems and saved.applied_seq > 0
    journal = Journal(tmp_path / "state" / "journal")
    reader = journal.reader(saved.applied_seq)
    assert [r.seq for r in reader.available()] == list(range(saved.applied_seq + 1, journal.last_seq + 1))
    reader.close()
    journal.close()


def test_sigterm_to_the_process_group_stops_serve_in_order(
    mosquitto: Mosquitto, influx: InfluxDB, influx_db: str, registry_file: Path, tmp_path: Path, unique: str,
    serve_process: Callable[..., subprocess.Popen[bytes]],
) -> None:
    # What `make stop` and a Ctrl-C in a terminal do: signal serve's whole process group. The evaluation process
    # must not die with it and be restarted mid-shutdown; serve stops it in order, and it saves what it learned.
    settings = serve_settings(mosquitto, influx, influx_db, registry_file, tmp_path, f"g{unique}")
    serve = serve_process(settings, own_session=True)
    evaluation = psutil.Process(serve.pid).children()
    assert evaluation
    os.killpg(serve.pid, signal.SIGTERM)
    # uvicorn shuts down gracefully, then lets the signal end the process (-15); well inside the 30 s serve would
    # wait for a child that never answers
    assert serve.wait(25) in (0, -signal.SIGTERM)
    _, alive = psutil.wait_procs(evaluation, timeout=10)
    assert not alive
    assert (tmp_path / "state" / STATE_FILE).exists()
    log = (tmp_path / "serve-0.log").read_text()
    assert "exited unexpectedly" not in log and "did not stop" not in log


def test_influx_down_mid_stream_spools_and_replays_everything(
    mosquitto: Mosquitto, own_influx: InfluxDB, registry: Registry, settings_for: Callable[..., Settings],
    unique: str,
) -> None:
    service = Service.build(settings_for(mosquitto, own_influx, "outage"), registry=registry)
    service.start()
    total = 10_000
    publisher = SteadyPublisher(mosquitto, service.settings.topic_prefix, total, f"pub-{unique}")
    try:
        assert service.pipeline.consumer.wait_connected(10)
        publisher.start()
        eventually(lambda: service.metrics.value("placesense_readings_stored_total") > 1000, 30, "first readings")
        own_influx.stop()
        eventually(lambda: service.metrics.value("placesense_readings_spooled_total") > 1000, 60, "spooling")
        assert not service.pipeline.writer.influx_up
        publisher.join()
        eventually(lambda: service.metrics.value("placesense_readings_stored_total") >= total, 60, "all durable")
        own_influx.start()
        eventually(lambda: influx_count(own_influx.url, "outage", "soil") >= total, 90, "spool replayed")
        assert influx_count(own_influx.url, "outage", "soil") == total
        eventually(lambda: len(service.pipeline.writer.spool) == 0 and service.pipeline.writer.influx_up, 30,
                   "spool empty and InfluxDB marked up")
        assert "placesense_readings_spooled_total" in service.metrics.render()
    finally:
        publisher.close()
        service.stop()


def test_broker_restart_mid_stream_ingest_reconnects_and_resumes(
    own_mosquitto: Mosquitto, influx: InfluxDB, influx_db: str, registry: Registry,
    settings_for: Callable[..., Settings], unique: str,
) -> None:
    service = Service.build(settings_for(own_mosquitto, influx, influx_db), registry=registry)
    service.start()
    total = 10_000
    publisher = SteadyPublisher(own_mosquitto, service.settings.topic_prefix, total, f"pub-{unique}")
    try:
        assert service.pipeline.consumer.wait_connected(10)
        publisher.start()
        eventually(lambda: influx_count(influx.url, influx_db, "soil") > 1000, 30, "first readings")
        own_mosquitto.restart()
        publisher.join()
        eventually(lambda: influx_count(influx.url, influx_db, "soil") >= total, 90, "all readings after restart")
        assert influx_count(influx.url, influx_db, "soil") == total
        assert service.metrics.value("placesense_mqtt_connects_total") >= 2
    finally:
        publisher.close()
        service.stop()

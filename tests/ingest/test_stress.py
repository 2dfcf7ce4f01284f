"""The ingest → evaluation path under bursts: 100,000 messages from 100 to 10,000 devices, each source format
alone, mixed, and finding-heavy homes (help buttons pressed on half their messages). Every stored reading is
evaluated exactly once (counter equality), nothing is dead-lettered, and the rules process never stalls.

The backlog is published first, as fast as the broker takes it (the bench's publisher process), and the service
then drains it: the burst that deadlocked the old channel. Counts are asserted, never times.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from placesense.service import Service
from placesense.settings import Settings
from placesense.tools.bench.worker import Worker
from placesense.tools.bench.workload import Workload, build_registry, parse_formats
from placesense.tools.localstack.influxdb import InfluxDB
from placesense.tools.localstack.mosquitto import Mosquitto
from tests.helpers import eventually

MESSAGES = 100_000
CASES = [
    pytest.param(100, "canonical", id="100-canonical"),
    pytest.param(1_000, "zigbee2mqtt", id="1000-zigbee2mqtt"),
    pytest.param(1_000, "ttn", id="1000-ttn"),
    pytest.param(1_000, "chirpstack", id="1000-chirpstack"),
    pytest.param(2_000, "care", id="2000-finding-heavy-homes"),
    pytest.param(10_000, "canonical,zigbee2mqtt,ttn,chirpstack,care", id="10000-mixed"),
]


@pytest.mark.parametrize(("devices", "formats"), CASES)
def test_every_stored_reading_of_a_burst_is_evaluated_exactly_once(
    devices: int, formats: str, mosquitto: Mosquitto, influx: InfluxDB, influx_db: str,
    settings_for: Callable[..., Settings], tmp_path: Path,
) -> None:
    registry = build_registry(devices, parse_formats(formats))
    base_ms = int(time.time() * 1000) - MESSAGES - 60_000
    workload = Workload(registry, MESSAGES, base_ms)
    settings = settings_for(mosquitto, influx, influx_db)
    service = Service.build(settings, registry=registry)
    service.start()
    publisher = Worker("publish", [
        "--devices", str(devices), "--messages", str(MESSAGES), "--formats", formats, "--base-ms", str(base_ms),
        "--host", "127.0.0.1", "--port", str(mosquitto.port), "--prefix", settings.topic_prefix,
        "--client-id", f"stress-{settings.mqtt_client_id}", "--inflight", "1000", "--rate", "0",
        "--times-out", str(tmp_path / "published.bin"),
    ])
    try:
        assert service.pipeline.consumer.wait_connected(15)
        publisher.expect("ready", 300)
        publisher.go()
        publisher.expect("done", 600)
        metrics = service.metrics

        def drained() -> bool:
            stored = metrics.value("placesense_readings_stored_total")
            dead = metrics.value("placesense_dead_letters_total")
            return stored + dead >= MESSAGES and metrics.value("placesense_readings_evaluated_total") >= stored

        eventually(drained, 600, f"{MESSAGES:,} messages stored and evaluated")
        stored = metrics.value("placesense_readings_stored_total")
        assert metrics.value("placesense_dead_letters_total") == 0
        assert stored == MESSAGES
        assert metrics.value("placesense_readings_evaluated_total") == stored  # exactly once: not more, not fewer
        assert metrics.value("placesense_readings_reevaluated_total") == 0
        assert service.evaluator.backlog == 0
        assert service.evaluator.health().state == "running"
        assert metrics.value("placesense_evaluation_restarts_total") == 0
        if "care" in formats:
            presses = [a for a in service.alerts.list_alerts(audience="care", limit=100_000)
                       if a.rule == "help_button"]
            assert len({a.subject for a in presses}) == len(registry.homes)  # every home's presses were heard
        assert workload.messages == MESSAGES
    finally:
        publisher.close()
        service.stop()

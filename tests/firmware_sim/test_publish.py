"""Publishing against a real mosquitto: every message arrives, statuses are retained, counts are acknowledged."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import paho.mqtt.client as mqtt
from firmware_sim.encoders import ENCODERS, encode
from firmware_sim.fleet import build_fleet
from firmware_sim.publisher import publish
from firmware_sim.simulation import Simulation
from paho.mqtt.enums import CallbackAPIVersion

from placesense.basics.timeunits import HOUR_MS
from placesense.tools.localstack.mosquitto import Mosquitto
from tests.helpers import eventually

from .conftest import START_MS


class Recorder:
    """A plain paho subscriber that keeps every (topic, payload, retained) it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.subscribed = threading.Event()
        self._lock = threading.Lock()

    def on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, message.payload, bool(message.retain)))

    def snapshot(self) -> list[tuple[str, bytes, bool]]:
        with self._lock:
            return list(self.messages)


@contextmanager
def recording(url: str, topic: str, client_id: str) -> Iterator[Recorder]:
    port = int(url.rsplit(":", 1)[1])
    recorder = Recorder()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    client.on_message = recorder.on_message
    client.on_subscribe = lambda *args: recorder.subscribed.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        client.subscribe(topic, qos=1)
        eventually(recorder.subscribed.is_set, 10, "SUBACK")
        yield recorder
    finally:
        client.disconnect()
        client.loop_stop()


def test_every_published_message_arrives(mosquitto: Mosquitto, unique: str) -> None:
    registry = build_fleet(2, 2, 1, seed=21, formats="mix", encoders=tuple(ENCODERS))
    simulation = Simulation(registry, START_MS, START_MS + 6 * HOUR_MS, seed=21)
    prefix = f"t-{unique}/"
    expected = Counter(encode(e.device, e.measurement, prefix) for e in simulation.events())
    canonical = [d for d in registry.devices.values() if d.format == "canonical"]
    with recording(mosquitto.url, f"{prefix}#", f"rec-{unique}") as recorder:
        result = publish(simulation.events(), list(registry.devices.values()), mosquitto.url,
                         topic_prefix=prefix, speed="max", client_id=f"sim-{unique}", max_inflight=50)
        assert result.total == sum(expected.values())
        assert result.status_messages == 2 * len(canonical)
        eventually(lambda: len(recorder.snapshot()) >= result.total + result.status_messages, 30,
                   "every message at the subscriber")
        received = recorder.snapshot()
    telemetry = Counter((topic, payload) for topic, payload, _ in received if not topic.endswith("/status"))
    assert telemetry == expected
    assert result.per_device == dict(Counter(e.device.id for e in simulation.events()))
    statuses = [(topic, payload) for topic, payload, _ in received if topic.endswith("/status")]
    for device in canonical:
        topic = f"{prefix}placesense/v1/{device.domain}/{device.id}/status"
        assert [p for t, p in statuses if t == topic] == [b"online", b"offline"]


def test_per_device_connections_leave_retained_offline_statuses(mosquitto: Mosquitto, unique: str) -> None:
    registry = build_fleet(1, 1, 0, seed=22, formats="canonical")
    simulation = Simulation(registry, START_MS, START_MS + 2 * HOUR_MS, seed=22)
    prefix = f"t-{unique}/"
    result = publish(simulation.events(), list(registry.devices.values()), mosquitto.url, topic_prefix=prefix,
                     client_id=f"sim-{unique}", per_device_connections=True)
    assert result.total == sum(1 for _ in simulation.events())
    # A subscriber arriving afterwards sees each device's retained last word.
    with recording(mosquitto.url, f"{prefix}placesense/v1/+/+/status", f"late-{unique}") as recorder:
        eventually(lambda: len(recorder.snapshot()) == len(registry.devices), 10, "retained statuses")
        assert {(payload, retained) for _, payload, retained in recorder.snapshot()} == {(b"offline", True)}


def test_paced_speed_follows_simulated_time(mosquitto: Mosquitto, unique: str) -> None:
    registry = build_fleet(1, 1, 1, seed=23, formats="canonical")
    simulation = Simulation(registry, START_MS, START_MS + HOUR_MS, seed=23)
    events = list(simulation.events())
    span_s = (events[-1].send_ms - events[0].send_ms) / 1000
    result = publish(iter(events), list(registry.devices.values()), mosquitto.url, topic_prefix=f"t-{unique}/",
                     client_id=f"sim-{unique}", speed=span_s / 0.5, statuses=False)
    assert result.total == len(events)
    assert result.elapsed_s >= 0.45, "an hour at this speed takes half a second"

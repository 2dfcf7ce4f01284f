"""Fixtures for trust tests: a registry with two homes, broker files generated from it, a broker that enforces
them, and small MQTT clients that log in as one account and report what the broker answered."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.reasoncodes import ReasonCode

from devices.registry import Registry
from placesense.broker_accounts import ALERTS_PUBLISHER, INGEST_USER
from placesense.tools.broker_config import BrokerFiles, Listener, write_broker_config
from placesense.tools.localstack.mosquitto import Mosquitto
from placesense.tools.localstack.process import free_port
from tests.helpers import eventually

__all__ = ["ALERTS_PUBLISHER", "INGEST_USER", "MqttUser", "service_logins"]

TRUST_REGISTRY: dict[str, Any] = {
    "homes": [{"id": "h-0001", "name": "Resident One"}, {"id": "h-0002", "name": "Resident Two"}],
    "flowerbeds": [{"id": "bed-01", "name": "Rose bed", "lat": 53.04, "lon": -2.99}],
    "devices": [
        {"id": "h-0001-kitchen-pir", "domain": "home", "subject": "h-0001", "kind": "motion", "room": "kitchen"},
        {"id": "h-0001-climate", "domain": "home", "subject": "h-0001", "kind": "climate", "room": "living_room"},
        {"id": "h-0002-kitchen-pir", "domain": "home", "subject": "h-0002", "kind": "motion", "room": "kitchen"},
        {"id": "bed-01-soil", "domain": "soil", "subject": "bed-01", "kind": "soil"},
        {
            "id": "h-0002-hall-door", "domain": "home", "subject": "h-0002", "kind": "front_door", "room": "hallway",
            "format": "zigbee2mqtt", "source_id": "hall_door_2",
        },
    ],
}


@pytest.fixture
def trust_registry() -> Registry:
    return Registry.from_data(TRUST_REGISTRY)


@pytest.fixture
def prefix(unique: str) -> str:
    return f"t{unique}/"


@pytest.fixture
def broker_port() -> int:
    return free_port()


@pytest.fixture
def broker_files(trust_registry: Registry, tmp_path: Path, prefix: str, broker_port: int) -> BrokerFiles:
    return write_broker_config(trust_registry, tmp_path / "broker-config", prefix=prefix, ingest_user=INGEST_USER,
                               listen=Listener("127.0.0.1", broker_port))


@pytest.fixture
def secure_broker(broker_files: BrokerFiles, tmp_path: Path, broker_port: int) -> Iterator[Mosquitto]:
    """mosquitto running the configuration ``placesense broker-config`` generated, as a deployment would."""
    broker = Mosquitto(tmp_path / "secure-mosquitto", port=broker_port, config_dir=broker_files.directory)
    broker.start()
    yield broker
    broker.stop()


def service_logins(files: BrokerFiles) -> dict[str, Any]:
    """The settings that give the service its two accounts: ingest's and the alerts publisher's."""
    return {
        "mqtt_client_id": INGEST_USER,
        "mqtt_username": INGEST_USER,
        "mqtt_password": files.password(INGEST_USER),
        "mqtt_alerts_username": ALERTS_PUBLISHER,
        "mqtt_alerts_password": files.password(ALERTS_PUBLISHER),
    }


class MqttUser:
    """One MQTT 5 login that records the broker's answers: CONNACK, SUBACK and PUBACK reason codes, messages."""

    def __init__(
        self, port: int, username: str | None, password: str | None, client_id: str, ca_file: Path | None = None,
        clean_start: bool = True,
    ) -> None:
        self.connack: ReasonCode | None = None
        self.connected = threading.Event()
        self.answered = threading.Event()
        self.dropped = threading.Event()  # the broker ended a connection that was up
        self.messages: list[tuple[str, bytes]] = []
        self.subacks: dict[int, list[ReasonCode]] = {}
        self.pubacks: dict[int, ReasonCode] = {}
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        if username is not None:
            self.client.username_pw_set(username, password)
        if ca_file is not None:
            self.client.tls_set_context(ssl.create_default_context(cafile=str(ca_file)))
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_publish = self._on_publish
        self.client.on_disconnect = self._on_disconnect
        self.client.connect("127.0.0.1", port, clean_start=clean_start)
        self.client.loop_start()
        eventually(self.answered.is_set, 10, f"CONNACK for {client_id}")

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        self.connack = reason
        if not reason.is_failure:
            self.connected.set()
        self.answered.set()

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        if self.connected.is_set():
            self.dropped.set()

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, msg.payload))

    def _on_subscribe(self, _c: Any, _u: Any, mid: int, codes: list[ReasonCode], _p: Any) -> None:
        with self._lock:
            self.subacks[mid] = codes

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason: ReasonCode, _p: Any) -> None:
        with self._lock:
            self.pubacks[mid] = reason

    def subscribe(self, topic_filter: str) -> list[ReasonCode]:
        _rc, mid = self.client.subscribe(topic_filter, qos=1)
        assert mid is not None
        return eventually(lambda: self.subacks.get(mid), 10, f"SUBACK for {topic_filter}")

    def publish(self, topic: str, payload: bytes | str) -> ReasonCode:
        """Publish at QoS 1 and return the broker's PUBACK reason: it also proves earlier messages to us arrived."""
        info = self.client.publish(topic, payload, qos=1)
        return eventually(lambda: self.pubacks.get(info.mid), 10, f"PUBACK for {topic}")

    def received(self, topic: str) -> list[bytes]:
        with self._lock:
            return [payload for t, payload in self.messages if t == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        # paho closes its wake-up socket pair only when a connected loop ends, not one stopped mid-reconnect.
        self.client._reset_sockets()


@pytest.fixture
def login(unique: str) -> Iterator[Callable[..., MqttUser]]:
    users: list[MqttUser] = []

    def connect(
        broker_port: int, username: str | None, password: str | None, ca_file: Path | None = None,
        client_id: str | None = None, clean_start: bool = True,
    ) -> MqttUser:
        user = MqttUser(broker_port, username, password, client_id or f"{username or 'anon'}-{unique}-{len(users)}",
                        ca_file, clean_start)
        users.append(user)
        return user

    yield connect
    for user in users:
        user.close()

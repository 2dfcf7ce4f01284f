"""The ingest MQTT consumer against the real broker: its own PUBLISH parsing, buffered reads and batched PUBACKs.

The consumer parses MQTT 5 QoS 1 PUBLISH packets itself and reads the socket in large chunks; these tests check
it hands on exactly what was published (topics, payloads of every size, retain flags, properties skipped), that
QoS 0 still arrives through paho's own path, and that acknowledged messages are not sent again while
unacknowledged ones are.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.mqtt import Message, MqttConfig, MqttConsumer
from placesense.tools.localstack.mosquitto import Mosquitto
from tests.helpers import eventually


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self._lock = threading.Lock()

    def __call__(self, messages: list[Message]) -> None:
        with self._lock:
            self.messages.extend(messages)

    def take(self) -> list[Message]:
        with self._lock:
            taken, self.messages = self.messages, []
        return taken


def _consumer(broker: Mosquitto, client_id: str, prefix: str, inbox: Inbox, receive_maximum: int) -> MqttConsumer:
    config = MqttConfig("127.0.0.1", broker.port, client_id, (f"{prefix}#",), receive_maximum=receive_maximum)
    consumer = MqttConsumer(config, inbox)
    consumer.start()
    assert consumer.wait_connected(10), "the consumer did not connect"
    return consumer


@pytest.fixture
def v5_publisher(mosquitto: Mosquitto, unique: str) -> Iterator[mqtt.Client]:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub5-{unique}", protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    yield client
    client.disconnect()
    client.loop_stop()


def test_every_publish_arrives_as_sent(mosquitto: Mosquitto, v5_publisher: mqtt.Client, unique: str) -> None:
    prefix = f"t/{unique}/"
    inbox = Inbox()
    consumer = _consumer(mosquitto, f"c-{unique}", prefix, inbox, receive_maximum=1000)
    try:
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.UserProperty = ("source", "gateway-7")
        props.ContentType = "application/json"
        sent = [
            (f"{prefix}café/ü/{i}", bytes([i % 256]) * size, qos, retain, with_props)
            for i, (size, qos, retain, with_props) in enumerate(
                [(0, 1, False, False), (1, 1, False, True), (127, 1, True, False), (128, 0, False, True),
                 (16_383, 1, False, True), (16_384, 1, False, False), (300_000, 1, False, True),
                 *[(40, 1, False, False)] * 500]
            )
        ]
        for topic, payload, qos, retain, with_props in sent:
            properties = props if with_props else None
            v5_publisher.publish(topic, payload, qos=qos, retain=retain, properties=properties).wait_for_publish(10)
        got = eventually(lambda: len(inbox.messages) >= len(sent) and list(inbox.messages), what="every message")
        assert [(m.topic, m.payload, m.qos) for m in got] == [(t, p, q) for t, p, q, _, _ in sent]
        assert all(type(m.payload) is bytes for m in got)
        assert [m.retain for m in got[:3]] == [False, False, False]  # retain is only set on a retained copy
        assert len({m.mid for m in got if m.qos == 1}) > 1
    finally:
        consumer.stop()


def test_a_backlog_read_in_large_chunks_arrives_exactly_as_sent(
    mosquitto: Mosquitto, v5_publisher: mqtt.Client, unique: str
) -> None:
    # Queued for the session while the consumer is away, the backlog comes back to back: many packets per read,
    # packets cut by the end of a read, a payload larger than a read. That is the consumer's one-pass parser.
    prefix = f"t/{unique}/"
    inbox = Inbox()
    _consumer(mosquitto, f"c-{unique}", prefix, inbox, receive_maximum=5000).stop()
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.UserProperty = ("k", "v" * 200)
    sizes = [0, 1, 127, 128, 16_383, 16_384, 300_000, 2_097_151, 2_097_152, *range(3000)]
    sent = [(f"{prefix}b/{i}", bytes([i % 256]) * size, i % 7 == 0) for i, size in enumerate(sizes)]
    for topic, payload, with_props in sent:
        info = v5_publisher.publish(topic, payload, qos=1, properties=props if with_props else None)
    info.wait_for_publish(30)
    consumer = _consumer(mosquitto, f"c-{unique}", prefix, inbox, receive_maximum=5000)
    try:
        got = eventually(lambda: len(inbox.messages) >= len(sent) and list(inbox.messages), 30, "the backlog")
        assert [(m.topic, m.payload) for m in got] == [(t, p) for t, p, _ in sent]
        assert {m.qos for m in got} == {1} and len({m.mid for m in got}) > 1000
    finally:
        consumer.stop()


def test_acknowledged_messages_are_not_redelivered_and_unacknowledged_ones_are(
    mosquitto: Mosquitto, v5_publisher: mqtt.Client, unique: str
) -> None:
    prefix = f"t/{unique}/"
    inbox = Inbox()
    consumer = _consumer(mosquitto, f"c-{unique}", prefix, inbox, receive_maximum=100)
    for i in range(300):
        v5_publisher.publish(f"{prefix}m", str(i), qos=1).wait_for_publish(10)
    first = eventually(lambda: len(inbox.messages) >= 100 and inbox.take(), what="the first 100")
    acked = first[:40]
    assert consumer.ack(acked) == 40
    consumer.stop()  # leaves the rest unacknowledged or not yet sent
    inbox.take()
    again = _consumer(mosquitto, f"c-{unique}", prefix, inbox, receive_maximum=1000)
    try:
        rest = eventually(lambda: len(inbox.messages) >= 260 and inbox.take(), what="redelivery and the rest")
        assert sorted(int(m.payload) for m in rest) == sorted(set(range(300)) - {int(m.payload) for m in acked})
        assert again.ack(rest) == 260
    finally:
        again.stop()

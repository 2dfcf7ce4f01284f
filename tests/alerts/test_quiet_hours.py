"""Quiet hours: the street team is not messaged at night about what can wait until morning.

During its quiet hours (20:00–07:00 by default) a street alert is stored and shown on the live feed at once,
but not sent by MQTT (nothing is written to the outbox for it); critical ones still are. Escalation waits. When
the hours end, each alert raised in them that is still open and unacknowledged goes out as one ``reminder``.
Checked on the real broker.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

import orjson
import paho.mqtt.client as mqtt
import pytest

from placesense.alerts.channels.mqtt import MqttChannel
from placesense.alerts.dispatch import Dispatcher
from placesense.alerts.feed import AlertFeed
from placesense.alerts.lifecycle import AlertService
from placesense.alerts.outbox import Outbox
from placesense.alerts.routing import Router
from placesense.alerts.store import AlertStore
from placesense.basics.clock import EventClock
from placesense.basics.db import make_engine
from placesense.basics.findings import Finding
from placesense.tools.localstack.mosquitto import Mosquitto
from tests.helpers import eventually
from tests.rules.factory import local_ms


@pytest.fixture
def alert_topic_messages(mosquitto: Mosquitto, unique: str) -> Iterator[tuple[str, list[dict[str, object]]]]:
    prefix = f"q-{unique}/"
    received: list[dict[str, object]] = []
    subscribed = threading.Event()
    subscriber = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"sub-{unique}")
    subscriber.on_message = lambda _c, _u, msg: received.append(orjson.loads(msg.payload))
    subscriber.on_subscribe = lambda *_args: subscribed.set()
    subscriber.on_connect = lambda c, *_args: c.subscribe(f"{prefix}placesense/v1/alerts/#", qos=1)
    parts = urlsplit(mosquitto.url)
    subscriber.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
    subscriber.loop_start()
    eventually(subscribed.is_set, what="subscription")
    yield prefix, received
    subscriber.disconnect()
    subscriber.loop_stop()


def _street(rule: str, subject: str, severity: str, at_ms: int) -> Finding:
    return Finding(rule, "street", subject, severity, f"{rule} at {subject}", at_ms)  # type: ignore[arg-type]


def test_street_alerts_wait_for_morning_but_critical_ones_do_not(
    mosquitto: Mosquitto, alert_topic_messages: tuple[str, list[dict[str, object]]], database_url: str, unique: str
) -> None:
    prefix, received = alert_topic_messages
    parts = urlsplit(mosquitto.url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-{unique}")
    client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
    client.loop_start()
    feed = AlertFeed()
    clock = EventClock()
    db = make_engine(database_url)
    outbox = Outbox(db, Router(mqtt_prefix=prefix))
    dispatcher = Dispatcher(outbox, [MqttChannel(client)], poll_s=0.05)
    dispatcher.start()
    service = AlertService(AlertStore(db), clock, publishers=[feed], outbox=outbox)
    try:
        with feed.subscription() as live:
            evening = local_ms(10, 19, 0, month=6)
            clock.observe(evening)
            service.tick()
            clock.observe(local_ms(10, 22, 15, month=6))
            service.tick()
            watering = service.apply(_street("needs_water", "bed-004", "warning", clock.now_ms()))
            assert watering is not None
            change = live.get(timeout_s=5)
            assert change is not None and change.alert.id == watering.id  # the wall display sees it at once
            # A critical alert is sent even now; MQTT keeps one publisher's order, so once it has arrived the
            # held warning would have arrived before it if it had been sent.
            critical = service.apply(_street("daqi", "air-02", "critical", clock.now_ms() + 1000))
            assert critical is not None
            eventually(lambda: len(received) >= 1, what="the critical alert on MQTT")
            assert [m["id"] for m in received] == [critical.id]
            clock.observe(local_ms(11, 3, 0, month=6))
            assert watering.id not in {a.id for a in service.tick()}  # no reminder in the small hours
            clock.observe(local_ms(11, 7, 5, month=6))
            reminded = service.tick()
            assert watering.id in {a.id for a in reminded}
            eventually(lambda: any(m["id"] == watering.id for m in received), what="the morning reminder")
            reminder = next(m for m in received if m["id"] == watering.id)
            assert reminder["action"] == "reminder"
    finally:
        dispatcher.stop()
        client.disconnect()
        client.loop_stop()

"""Notifications: an alert raised by a reading reaches the real MQTT alert topic through the outbox; webhooks are
signed and retried after a 500 against a real local HTTP server; the in-process feed fans out to bounded subscriber
queues."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import orjson
import paho.mqtt.client as mqtt
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from placesense.alerts.changes import AlertChange
from placesense.alerts.channels.mqtt import MqttChannel
from placesense.alerts.channels.webhook import WebhookChannel, verify
from placesense.alerts.dispatch import Dispatcher
from placesense.alerts.feed import AlertFeed
from placesense.alerts.lifecycle import AlertService
from placesense.alerts.outbox import Outbox
from placesense.alerts.routing import Router, alert_topic
from placesense.alerts.store import AlertStore
from placesense.basics.clock import EventClock
from placesense.basics.db import make_engine
from placesense.basics.findings import Finding
from placesense.tools.localstack.mosquitto import Mosquitto
from tests.helpers import WebhookReceiver, eventually, webhook_receiver
from tests.rules.factory import HOME, engine, home_reading, local_ms, only_rules

SECRET = "whsec_" + base64.b64encode(b"test-webhook-secret-3f9a-24b").decode()

# Street alerts are held in the street team's quiet hours (20:00–07:00): these tests run at midday.
MIDDAY = 1_780_315_200_000  # 2026-06-01 12:00 UTC


def _client(url: str, client_id: str) -> mqtt.Client:
    parts = urlsplit(url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
    client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
    client.loop_start()
    return client


def test_alert_from_a_reading_reaches_the_mqtt_alert_topic(
    mosquitto: Mosquitto, unique: str, database_url: str
) -> None:
    prefix = f"t-{unique}/"
    received: list[tuple[str, dict[str, object]]] = []
    subscribed = threading.Event()
    subscriber = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"sub-{unique}", protocol=mqtt.MQTTv311)
    subscriber.on_message = lambda _c, _u, msg: received.append((msg.topic, orjson.loads(msg.payload)))
    subscriber.on_subscribe = lambda *_args: subscribed.set()
    subscriber.on_connect = lambda c, *_args: c.subscribe(f"{prefix}placesense/v1/alerts/#", qos=1)
    parts = urlsplit(mosquitto.url)
    subscriber.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
    subscriber.loop_start()
    publisher_client = _client(mosquitto.url, f"pub-{unique}")
    try:
        eventually(subscribed.is_set, what="subscription")
        rules = engine(only_rules({"help_button"}))
        clock = EventClock()
        db = make_engine(database_url)
        outbox = Outbox(db, Router(mqtt_prefix=prefix))
        dispatcher = Dispatcher(outbox, [MqttChannel(publisher_client)], poll_s=0.05)
        dispatcher.start()
        service = AlertService(AlertStore(db), clock, outbox=outbox)
        pressed = local_ms(3, 14, 32)
        clock.observe(pressed)
        service.apply_all(rules.process(home_reading("help", pressed, help_pressed=1)))

        topic, body = eventually(lambda: received[0] if received else None, what="alert on MQTT")
        dispatcher.stop()
        [delivery] = outbox.for_alert(int(str(body["id"])))
        assert body["message_id"] == delivery.message_id and delivery.state == "delivered"
        assert topic == f"{prefix}placesense/v1/alerts/care/{HOME}"
        assert body["rule"] == "help_button" and body["severity"] == "critical" and body["action"] == "opened"
        assert body["subject"] == HOME and body["state"] == "open"
        assert body["message"] == "Help button pressed at 14:32 (living room). Call or visit now."
    finally:
        for client in (subscriber, publisher_client):
            client.loop_stop()
            client.disconnect()


def test_alert_topic_refuses_wildcards() -> None:
    assert alert_topic("street", "bed-001", "c/") == "c/placesense/v1/alerts/street/bed-001"
    with pytest.raises(ValueError):
        alert_topic("care", "h-1/#")


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[WebhookReceiver]]]:
    with webhook_receiver() as (url, handler):
        yield f"{url}/hooks/alerts", handler


def _webhooks(urls: list[str], database_url: str, **dispatch: object) -> tuple[AlertService, Outbox, Dispatcher]:
    db = make_engine(database_url)
    outbox = Outbox(db, Router(webhook_urls=urls))
    dispatcher = Dispatcher(
        outbox, [WebhookChannel(SECRET)], poll_s=0.05, backoff_s=0.05, **dispatch  # type: ignore[arg-type]
    )
    dispatcher.start()
    return AlertService(AlertStore(db), EventClock(MIDDAY), outbox=outbox), outbox, dispatcher


def test_webhook_is_signed_and_retried_after_a_500(
    receiver: tuple[str, type[WebhookReceiver]], database_url: str
) -> None:
    url, handler = receiver
    service, outbox, dispatcher = _webhooks([url], database_url)
    try:
        alert = service.apply(Finding("needs_water", "street", "bed-001", "warning", "Bed 1 needs water now",
                                      MIDDAY + 1_000))
        assert alert is not None
        eventually(lambda: dispatcher.sent == 1, what="webhook delivery")
        assert [status for status, _, _ in handler.calls] == [500, 204]
        # Standard Webhooks, checked with its own library as a receiver would: id, timestamp and body are signed.
        receiver_side = Webhook(SECRET)
        for _, body, headers in handler.calls:
            assert headers["webhook-signature"].startswith("v1,") and verify(body, SECRET, headers)
            assert receiver_side.verify(body, headers)["message"] == "Bed 1 needs water now"
            assert not verify(body, "whsec_" + base64.b64encode(b"another secret, 24 bytes!").decode(), headers)
            assert not verify(body.replace(b"Bed 1", b"Bed 2"), SECRET, headers)
        # The retry is the same message (a receiver drops a repeat by its id), the outbox row's own id...
        assert handler.calls[0][2]["webhook-id"] == handler.calls[1][2]["webhook-id"]
        assert handler.calls[0][2]["webhook-id"] == outbox.for_alert(alert.id)[0].message_id
        # ...and a delivery replayed later is refused: its timestamp is signed, and an old one is too old.
        _, body, headers = handler.calls[-1]
        replayed = {**headers, "webhook-timestamp": str(int(time.time()) - 600)}
        assert not verify(body, SECRET, replayed)
        with pytest.raises(WebhookVerificationError):
            receiver_side.verify(body, replayed)
        assert "x-placesense-signature" not in headers  # the old body-only signature is gone
    finally:
        dispatcher.stop()


def test_webhook_gives_up_on_a_4xx_and_keeps_working(
    receiver: tuple[str, type[WebhookReceiver]], database_url: str
) -> None:
    url, handler = receiver
    handler.fail_first = 0
    service, _outbox, dispatcher = _webhooks([url + "-missing", url], database_url, max_attempts=2)
    try:
        from tests.alerts.test_alerts import finding

        service.apply(finding(MIDDAY + 1_000))
        eventually(lambda: dispatcher.sent + dispatcher.failed == 2, what="both deliveries")
        assert (dispatcher.sent, dispatcher.failed) == (1, 1)
        assert sorted(status for status, _, _ in handler.calls) == [204, 404]  # the 404 was not retried
        assert dispatcher.failing_since_ms() is not None and "webhooks to" in dispatcher.name
    finally:
        dispatcher.stop()


def test_feed_fans_out_to_bounded_subscriber_queues(database_url: str) -> None:
    feed = AlertFeed(maxsize=2)
    service = AlertService(AlertStore(make_engine(database_url)), EventClock(MIDDAY), publishers=[feed])
    with feed.subscription() as fast, feed.subscription() as slow:
        assert len(feed) == 2
        for minute in range(3):
            service.apply(Finding("daqi", "street", "air-01", "info", f"Moderate ({minute})", MIDDAY + 1_000 + minute))
        first = fast.get(timeout_s=1)
        assert isinstance(first, AlertChange)
        # Queues hold 2: the oldest change was dropped, the newest kept.
        assert first.alert.message == "Moderate (1)" and fast.dropped == 1
        second = slow.get(timeout_s=1)
        third = slow.get(timeout_s=1)
        assert second is not None and third is not None and third.alert.message == "Moderate (2)"
        assert slow.get(timeout_s=0.01) is None
    assert len(feed) == 0

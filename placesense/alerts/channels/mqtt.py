"""The MQTT alert topic as a channel: publishes each delivery with QoS 1 and counts it delivered once the broker has
acknowledged it. The outbox ``message_id`` goes into the payload, so a resend is recognisably the same message.

This module must not build the MQTT client (the composition root does) or decide who is told.
"""

from __future__ import annotations

from typing import Any, Protocol

import orjson

from placesense.alerts.channels.base import DeliveryError, Sent
from placesense.alerts.outbox import Delivery


class MqttClientLike(Protocol):
    """The part of ``paho.mqtt.client.Client`` (v2 API) we use."""

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> Any: ...

    def is_connected(self) -> bool: ...


class MqttChannel:
    """Publishes on the alert topic with QoS 1 and counts it sent once the broker has acknowledged it (PUBACK)."""

    name = "mqtt"
    label = "the alerts' MQTT connection"

    def __init__(self, client: MqttClientLike, timeout_s: float = 10.0) -> None:
        self._client = client
        self._timeout_s = timeout_s

    def send(self, delivery: Delivery) -> Sent:
        if not self._client.is_connected():
            raise DeliveryError("not connected to the MQTT broker", retryable=True)
        payload = orjson.dumps({**delivery.payload, "message_id": delivery.message_id})
        info = self._client.publish(delivery.recipient, payload, qos=1, retain=False)
        try:
            info.wait_for_publish(self._timeout_s)
        except (RuntimeError, ValueError) as exc:
            raise DeliveryError(f"MQTT publish failed: {exc}", retryable=True) from exc
        if not info.is_published():
            # paho may still send it after a reconnect: the retry then repeats it with the same message_id.
            raise DeliveryError("the broker did not acknowledge the alert in time", retryable=True)
        return Sent("delivered", "mqtt")

"""Webhooks as a channel: POSTs the alert JSON signed the Standard Webhooks way, and the signing a receiver checks.

Signed with ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature: v1,<base64 HMAC-SHA256 of
"id.timestamp.body">`` (made by the ``standardwebhooks`` library), so the receiver can check it came from us, was
not altered, and is not an old delivery replayed: the timestamp is signed too (receivers refuse one more than five
minutes off), and the id — the outbox ``message_id`` — stays the same across retries of one delivery (receivers
drop a repeat).

This module must not read settings or the environment (the secret is passed in) or decide who is told.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import httpx
import orjson
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from placesense.alerts.channels.base import DeliveryError, Sent, status_retryable
from placesense.alerts.outbox import Delivery

SECRET_PREFIX = "whsec_"


def signer(secret: str | bytes) -> Webhook:
    """The Standard Webhooks signer for ``secret``: a ``whsec_…`` secret (base64 after the prefix, as Standard
    Webhooks libraries take it), or any other string or bytes, used as the key itself (its ``whsec_`` form for a
    receiver's library is ``whsec_`` + base64 of those bytes)."""
    if isinstance(secret, str):
        if secret.startswith(SECRET_PREFIX):
            return Webhook(secret)
        secret = secret.encode("utf-8")
    return Webhook(secret)


def signed_headers(webhook: Webhook, message_id: str, body: bytes, at: datetime | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers for one delivery attempt of ``body``."""
    at = at or datetime.now(tz=UTC)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": webhook.sign(message_id, at, body),
    }


def verify(body: bytes, secret: str | bytes, headers: Mapping[str, str]) -> bool:
    """What a webhook receiver does (with any Standard Webhooks library): signature and timestamp must hold."""
    try:
        signer(secret).verify(body, dict(headers), json_parse=False)
    except WebhookVerificationError:
        return False
    return True


class WebhookChannel:
    """POSTs the alert JSON signed the Standard Webhooks way; the outbox ``message_id`` is the ``webhook-id``.

    Signed at each attempt: a retry minutes later still carries a timestamp the receiver accepts, and the same id,
    so the receiver drops a repeat."""

    name = "webhook"
    label = "webhooks"

    def __init__(self, secret: bytes | str, timeout_s: float = 10.0, transport: httpx.BaseTransport | None = None):
        if not secret:
            raise ValueError("a webhook secret is required to sign deliveries")
        self._signer = signer(secret)
        self._client = httpx.Client(timeout=timeout_s, transport=transport)

    def send(self, delivery: Delivery) -> Sent:
        body = orjson.dumps(delivery.payload)
        headers = {"Content-Type": "application/json", **signed_headers(self._signer, delivery.message_id, body)}
        try:
            response = self._client.post(delivery.recipient, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True) from exc
        if response.status_code < 300:
            return Sent("delivered", "webhook", detail=f"HTTP {response.status_code}")
        raise DeliveryError(f"the receiver answered HTTP {response.status_code}",
                            retryable=status_retryable(response.status_code))

    def close(self) -> None:
        self._client.close()

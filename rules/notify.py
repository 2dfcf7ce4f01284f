"""Telling people about alert changes: MQTT alert topics, signed webhooks, and an in-process feed for SSE.

Each publisher implements ``AlertPublisher.publish(change)`` and returns at once: MQTT hands the message to
paho's network loop (QoS 1), webhooks queue the POST for a worker thread that retries with backoff, and the feed
puts the change on each subscriber's bounded queue. None of them blocks the alert lifecycle.

- MQTT: ``{prefix}placesense/v1/alerts/{audience}/{subject}``, JSON of the alert plus ``action``.
- Webhooks: POST of the same JSON signed the Standard Webhooks way (``webhook-id``, ``webhook-timestamp`` and
  ``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``, made by the ``standardwebhooks``
  library), so the receiver can check it came from us, was not altered, and is not an old delivery replayed:
  the timestamp is signed too (receivers refuse one more than five minutes off), and the id stays the same
  across retries of one change (receivers drop a repeat).
- Feed: every change (including quiet updates) for the API's event stream; a slow subscriber loses its oldest
  queued changes, never slows the others.

The composition root builds the paho client and passes secrets in; this module must not read settings or the
environment, and never decides anything about the alert itself.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx
import orjson
import paho.mqtt.client as mqtt
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from rules.alerts import AlertChange, alert_to_json

log = logging.getLogger(__name__)

# Changes worth interrupting someone for; a repeat that only refreshes the wording goes to the feed only.
NOTIFY_ACTIONS = frozenset({
    "opened", "severity_raised", "escalated", "acknowledged", "resolved", "reminder", "repeated", "reopened",
})
SECRET_PREFIX = "whsec_"
DELIVERY_GRACE_S = 10.0  # a channel down this long is reported failing (not a reconnect's blink)


def alert_topic(audience: str, subject: str, prefix: str = "") -> str:
    """The MQTT topic of an alert; refuses subjects that would break out of their topic level."""
    for part in (audience, subject):
        if not part or any(c in part for c in "/+#\0"):
            raise ValueError(f"{part!r} cannot be an MQTT topic level")
    return f"{prefix}placesense/v1/alerts/{audience}/{subject}"


def alert_payload(change: AlertChange) -> bytes:
    return orjson.dumps(alert_to_json(change.alert, change.action))


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


# ---- MQTT ----------------------------------------------------------------------------------------------


class MqttClientLike(Protocol):
    """The part of ``paho.mqtt.client.Client`` (v2 API) we use."""

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> Any: ...


class MqttAlertPublisher:
    """Publishes alert changes with QoS 1 on a connected paho client whose network loop is running.

    Build the client with ``mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, ...)`` in the composition root; paho
    queues QoS 1 messages while the connection is down and sends them when it is back.
    """

    name = "the alerts' MQTT connection"

    def __init__(self, client: MqttClientLike, prefix: str = "", actions: frozenset[str] = NOTIFY_ACTIONS) -> None:
        self._client = client
        self._prefix = prefix
        self._actions = actions
        self._down_since: float | None = None

    def failing_since_ms(self) -> int | None:
        """Since when alerts could not be published (the client has been disconnected for a while), or None."""
        connected = getattr(self._client, "is_connected", None)
        if connected is None or connected():
            self._down_since = None
            return None
        now = time.time()
        if self._down_since is None:
            self._down_since = now
        return int(self._down_since * 1000) if now - self._down_since >= DELIVERY_GRACE_S else None

    def publish(self, change: AlertChange) -> None:
        if change.action not in self._actions:
            return
        topic = alert_topic(change.alert.audience, change.alert.subject, self._prefix)
        info = self._client.publish(topic, alert_payload(change), qos=1, retain=False)
        rc = getattr(info, "rc", 0)
        if rc not in (0, None, mqtt.MQTT_ERR_NO_CONN):
            # Not connected right now is fine: paho keeps QoS 1 messages queued. Anything else is worth a log.
            log.warning("MQTT publish of alert %s to %s returned rc=%s", change.alert.id, topic, rc)


# ---- webhooks ------------------------------------------------------------------------------------------


class WebhookPublisher:
    """POSTs alert changes to one or more URLs from a worker thread, retrying with exponential backoff.

    A delivery is retried on connection errors, timeouts, 429 and 5xx, up to ``max_attempts``; other 4xx
    answers are final (the receiver refused it). The queue is bounded: when full, the oldest waiting delivery is
    dropped and counted in ``dropped``, so a dead receiver cannot grow memory without limit.
    """

    def __init__(
        self,
        urls: Sequence[str],
        secret: bytes | str,
        *,
        max_attempts: int = 5,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        timeout_s: float = 10.0,
        queue_size: int = 1000,
        actions: frozenset[str] = NOTIFY_ACTIONS,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        if not secret:
            raise ValueError("a webhook secret is required to sign deliveries")
        self._urls = list(urls)
        self._signer = signer(secret)
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s
        self._actions = actions
        self._queue: queue.Queue[tuple[str, str, bytes] | None] = queue.Queue(maxsize=queue_size)
        self._client = httpx.Client(timeout=timeout_s, transport=transport)
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait
        self.delivered = 0
        self.failed = 0
        self.dropped = 0
        self._failing_since_ms: int | None = None
        self._worker = threading.Thread(target=self._run, name="placesense-webhooks", daemon=True)
        self._worker.start()

    def publish(self, change: AlertChange) -> None:
        if change.action not in self._actions:
            return
        body = alert_payload(change)
        message_id = f"msg_{uuid.uuid4().hex}"  # one per change: the same for every retry of it
        for url in self._urls:
            self._enqueue((url, message_id, body))

    def _enqueue(self, item: tuple[str, str, bytes]) -> None:
        while True:
            try:
                self._queue.put_nowait(item)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            url, message_id, body = item
            try:
                delivered = self._deliver(url, message_id, body)
            except Exception:  # never let one delivery kill the worker
                delivered = False
                log.exception("webhook delivery to %s crashed", url)
            if delivered:
                self.delivered += 1
                self._failing_since_ms = None
            else:
                self.failed += 1
                if self._failing_since_ms is None:
                    self._failing_since_ms = time.time_ns() // 1_000_000

    name = "webhooks"

    def failing_since_ms(self) -> int | None:
        """Since when deliveries have failed (none has succeeded since), or None."""
        return self._failing_since_ms

    def _deliver(self, url: str, message_id: str, body: bytes) -> bool:
        delay = self._backoff_s
        for attempt in range(1, self._max_attempts + 1):
            # Signed at each attempt: a retry minutes later still carries a timestamp the receiver accepts.
            headers = {"Content-Type": "application/json", **signed_headers(self._signer, message_id, body)}
            try:
                response = self._client.post(url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                reason = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code < 300:
                    return True
                if response.status_code != 429 and response.status_code < 500:
                    log.warning("webhook %s refused an alert with %s; not retrying", url, response.status_code)
                    return False
                reason = f"HTTP {response.status_code}"
            if attempt == self._max_attempts or self._stop.is_set():
                log.warning("webhook %s failed after %d attempts: %s", url, attempt, reason)
                return False
            self._sleep(delay)
            delay = min(delay * 2, self._max_backoff_s)
        return False

    def close(self, timeout_s: float = 5.0) -> None:
        """Deliver what is queued (up to ``timeout_s``), then stop the worker."""
        self._enqueue_stop()
        self._worker.join(timeout_s)
        self._stop.set()
        self._worker.join(timeout_s)
        self._client.close()

    def _enqueue_stop(self) -> None:
        try:
            self._queue.put(None, timeout=1.0)
        except queue.Full:
            self._stop.set()


# ---- in-process feed -----------------------------------------------------------------------------------


class FeedSubscription:
    """One subscriber's bounded queue of changes."""

    def __init__(self, maxsize: int) -> None:
        self._queue: queue.Queue[AlertChange] = queue.Queue(maxsize=maxsize)
        self.dropped = 0

    def offer(self, change: AlertChange) -> None:
        while True:
            try:
                self._queue.put_nowait(change)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()  # the newest state matters more than an old one
                    self.dropped += 1
                except queue.Empty:
                    pass

    def get(self, timeout_s: float | None = None) -> AlertChange | None:
        """The next change, or ``None`` after ``timeout_s`` with nothing new."""
        try:
            return self._queue.get(timeout=timeout_s)
        except queue.Empty:
            return None


class AlertFeed:
    """Thread-safe fan-out of alert changes to in-process subscribers (the API's SSE stream).

    ``live``: the feed drives screens people look at, so quiet hours never hold it back.

    Two ways to receive: ``subscribe()`` gives a bounded queue to pull from; ``listen(callback)`` pushes each
    change to ``callback`` on the publishing thread, for a consumer with its own queue (an event loop).
    """

    live = True

    def __init__(self, maxsize: int = 256) -> None:
        self._maxsize = maxsize
        self._subscribers: set[FeedSubscription] = set()
        self._listeners: dict[int, Callable[[AlertChange], None]] = {}
        self._next_listener = 0
        self._lock = threading.Lock()

    def publish(self, change: AlertChange) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
            listeners = list(self._listeners.values())
        for subscription in subscribers:
            subscription.offer(change)
        for listener in listeners:
            try:
                listener(change)
            except Exception:  # one broken listener must not starve the others
                log.exception("alert feed listener %r failed for alert %s", listener, change.alert.id)

    def listen(self, callback: Callable[[AlertChange], None]) -> Callable[[], None]:
        """Call ``callback(change)`` on the publishing thread for every change from now on; returns the
        function that stops it (safe to call more than once). ``callback`` must return at once: hand the change
        over (``loop.call_soon_threadsafe``), never wait, or it holds up the alert lifecycle."""
        with self._lock:
            key = self._next_listener
            self._next_listener += 1
            self._listeners[key] = callback

        def stop() -> None:
            with self._lock:
                self._listeners.pop(key, None)

        return stop

    def subscribe(self) -> FeedSubscription:
        subscription = FeedSubscription(self._maxsize)
        with self._lock:
            self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: FeedSubscription) -> None:
        with self._lock:
            self._subscribers.discard(subscription)

    @contextmanager
    def subscription(self) -> Iterator[FeedSubscription]:
        subscription = self.subscribe()
        try:
            yield subscription
        finally:
            self.unsubscribe(subscription)

    def __len__(self) -> int:
        """Subscriptions and listeners currently receiving changes."""
        with self._lock:
            return len(self._subscribers) + len(self._listeners)

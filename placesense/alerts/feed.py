"""Telling people about alert changes, in-process: the live feed behind the event stream, and the pieces every
channel shares (the alert topic, the alert's JSON, Standard Webhooks signing).

Messages that leave the process (MQTT alert topics, webhooks, GOV.UK Notify, SMTP, chat) go through the outbox
(``rules.outbox``, sent by ``rules.dispatch`` over ``rules.channels``), so none is lost to a restart.

- MQTT topic: ``{prefix}placesense/v1/alerts/{audience}/{subject}``.
- Webhooks are signed the Standard Webhooks way (``webhook-id``, ``webhook-timestamp`` and
  ``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``, made by the ``standardwebhooks``
  library), so the receiver can check it came from us, was not altered, and is not an old delivery replayed:
  the timestamp is signed too (receivers refuse one more than five minutes off), and the id stays the same
  across retries of one delivery (receivers drop a repeat).
- Feed: every change (including quiet updates) for the API's event stream; a slow subscriber loses its oldest
  queued changes, never slows the others.

This module must not read settings or the environment, and never decides anything about the alert itself.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime

import orjson
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from rules.alerts import AlertChange, alert_to_json

log = logging.getLogger(__name__)

# Changes worth interrupting someone for; a repeat that only refreshes the wording goes to the feed only.
NOTIFY_ACTIONS = frozenset({
    "opened", "severity_raised", "escalated", "acknowledged", "resolved", "reminder", "repeated", "reopened",
})
SECRET_PREFIX = "whsec_"


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

    Each change gets an event id, ``<epoch>.<sequence>``, and the last ``replay`` changes are kept, so a stream
    client that reconnects with the last id it saw (``Last-Event-ID``) is given what it missed
    (``listen_from``). The epoch is new in every process: an id from before a restart cannot be resumed from.
    """

    live = True

    def __init__(self, maxsize: int = 256, replay: int = 1000) -> None:
        self._maxsize = maxsize
        self._subscribers: set[FeedSubscription] = set()
        self._listeners: dict[int, Callable[[str, AlertChange], None]] = {}
        self._next_listener = 0
        self._lock = threading.Lock()
        self.epoch = uuid.uuid4().hex[:8]
        self._seq = 0
        self._recent: deque[tuple[int, AlertChange]] = deque(maxlen=replay)

    def event_id(self, seq: int) -> str:
        return f"{self.epoch}.{seq}"

    def publish(self, change: AlertChange) -> None:
        with self._lock:
            self._seq += 1
            seq = self._seq
            self._recent.append((seq, change))
            subscribers = list(self._subscribers)
            listeners = list(self._listeners.values())
        event_id = self.event_id(seq)
        for subscription in subscribers:
            subscription.offer(change)
        for listener in listeners:
            try:
                listener(event_id, change)
            except Exception:  # one broken listener must not starve the others
                log.exception("alert feed listener %r failed for alert %s", listener, change.alert.id)

    def listen(self, callback: Callable[[AlertChange], None]) -> Callable[[], None]:
        """Call ``callback(change)`` on the publishing thread for every change from now on; returns the
        function that stops it (safe to call more than once). ``callback`` must return at once: hand the change
        over (``loop.call_soon_threadsafe``), never wait, or it holds up the alert lifecycle."""
        _missed, stop = self.listen_from(None, lambda _event_id, change: callback(change))
        return stop

    def listen_from(
        self, last_event_id: str | None, callback: Callable[[str, AlertChange], None]
    ) -> tuple[list[tuple[str, AlertChange]] | None, Callable[[], None]]:
        """As ``listen``, with the event id, after handing back the changes since ``last_event_id``: ``[]`` when
        there is nothing to resume, and ``None`` when they cannot be given (an id from another run, or older than
        what is kept): the client should fetch the list again. Taken under one lock with the registration, so a
        change is either in the replay or given to ``callback``, never both and never neither."""
        with self._lock:
            key = self._next_listener
            self._next_listener += 1
            self._listeners[key] = callback
            missed: list[tuple[str, AlertChange]] | None = []
            if last_event_id:
                epoch, _, seq_text = last_event_id.partition(".")
                last = int(seq_text) if seq_text.isdigit() else -1
                oldest = self._recent[0][0] if self._recent else self._seq + 1
                if epoch != self.epoch or last < 0 or last > self._seq or last < oldest - 1:
                    missed = None
                else:
                    missed = [(self.event_id(seq), change) for seq, change in self._recent if seq > last]

        def stop() -> None:
            with self._lock:
                self._listeners.pop(key, None)

        return missed, stop

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

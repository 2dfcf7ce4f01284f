"""The in-process alert feed behind the API's event stream: every change (including quiet updates) fanned out to
subscribers; a slow subscriber loses its oldest queued changes, never slows the others.

Messages that leave the process (MQTT alert topics, webhooks, GOV.UK Notify, SMTP, chat) go through the outbox
(``placesense.alerts.outbox``, sent by ``placesense.alerts.dispatch`` over ``placesense.alerts.channels``), so
none is lost to a restart.

This module must not read settings or the environment, and never decides anything about the alert itself.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from placesense.alerts.changes import AlertChange

log = logging.getLogger(__name__)


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

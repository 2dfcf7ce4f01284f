"""Sends what the outbox holds, in order, at least once, and says when a channel or a person cannot be reached.

One thread per channel (a slow mail server never holds up the MQTT alert topic). Each thread takes the oldest
pending delivery of every lane (one recipient on one channel) whose time has come, makes one attempt through the
channel, and marks the row: ``delivered`` or ``sent`` (a receipt may follow), back to ``pending`` with a later
attempt time after a retryable failure (exponential backoff up to ``max_backoff_s``, ``max_attempts`` in all), or
``failed``. A lane's next message waits until the one before it has settled, so a person reads an alert's
messages in the order they were written. The threads wake as soon as the alert lifecycle commits new deliveries,
and otherwise look again every ``poll_s``. Rows are marked only after the attempt: a crash between the send and
the mark resends that message after the restart, with the same ``message_id``.

Channels that report delivery later (GOV.UK Notify) are asked every ``receipt_every_s`` about messages they took.

``failing_since_ms()``/``name`` make the dispatcher a ``DeliveryHealth`` for ``placesense.health``: a lane is
failing when a message in it failed for good (a text Notify could not deliver, a mail address refused) or has kept
failing for ``grace_s`` (the broker or a webhook down), until a later message in that lane gets through. The health
watch turns that into the ``notifications_failing`` ops alert, naming the channel and the person not reached.

This module sends and bookkeeps; it must not decide who is told (``placesense.alerts.routing``) or change alerts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from placesense.alerts.channels.base import Channel, DeliveryError, ReceiptChannel
from placesense.alerts.outbox import Delivery, Outbox

log = logging.getLogger(__name__)

GRACE_S = 10.0  # a lane failing this long is reported (not a reconnect's blink)
RECEIPT_WINDOW_MS = 3 * 86_400_000  # Notify keeps trying a text for 72 hours; past that we stop asking


@dataclass(frozen=True, slots=True)
class LaneTrouble:
    since_ms: int
    what: str  # "text messages to amira: permanent-failure: …"


class Dispatcher:
    """Sends the outbox's deliveries over ``channels`` on threads of their own."""

    def __init__(
        self,
        outbox: Outbox,
        channels: Sequence[Channel],
        *,
        max_attempts: int = 12,
        backoff_s: float = 1.0,
        max_backoff_s: float = 600.0,
        poll_s: float = 1.0,
        receipt_every_s: float = 60.0,
        grace_s: float = GRACE_S,
        people: dict[str, str] | None = None,
        wall_ms: Callable[[], int] | None = None,
    ) -> None:
        self.outbox = outbox
        self.channels = {channel.name: channel for channel in channels}
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.poll_s = poll_s
        self.receipt_every_s = receipt_every_s
        self.grace_s = grace_s
        self.people = people or {}  # person id -> name, for the words of the ops alert
        self._wall_ms = wall_ms or (lambda: time.time_ns() // 1_000_000)
        self._wake = {name: threading.Event() for name in self.channels}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        # Written by the channel threads, read by the health watch: a lock held for dict operations only, never I/O.
        self._trouble: dict[tuple[str, str], LaneTrouble] = {}
        self._trouble_lock = threading.Lock()
        self._first_failure: dict[tuple[str, str], int] = {}
        self.sent = 0
        self.failed = 0
        outbox.on_enqueued(self.wake)

    # -- running ------------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()  # again after a pause (an active/standby instance that leads again)
        self._threads = []
        for name in self.channels:
            thread = threading.Thread(target=self._run, args=(name,), name=f"placesense-send-{name}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self, timeout_s: float = 10.0, *, close: bool = True) -> None:
        """Stop sending; ``close=False`` keeps the channels for a later ``start`` (a standby that leads again)."""
        self._stop.set()
        for event in self._wake.values():
            event.set()
        for thread in self._threads:
            thread.join(timeout_s)
        if not close:
            return
        for channel in self.channels.values():
            closer = getattr(channel, "close", None)
            if closer is not None:
                closer()

    def wake(self) -> None:
        for event in self._wake.values():
            event.set()

    def _run(self, name: str) -> None:
        channel = self.channels[name]
        wake = self._wake[name]
        next_receipts = 0.0
        while not self._stop.is_set():
            wake.clear()
            try:
                self.send_due(name)
                if hasattr(channel, "receipt") and time.monotonic() >= next_receipts:
                    next_receipts = time.monotonic() + self.receipt_every_s
                    self.check_receipts(name)
            except Exception:  # the sender must outlive anything a channel or the database does
                log.exception("sending %s notifications failed; trying again shortly", name)
            wake.wait(self.poll_s)

    # -- one pass (public so tests and a restart drive it step by step) -----------------------------------------

    def send_due(self, name: str) -> int:
        """Try every delivery of channel ``name`` that is due, lane by lane in order; returns how many were tried."""
        channel = self.channels[name]
        tried = 0
        while not self._stop.is_set():
            due = self.outbox.due(name, self._wall_ms())
            if not due:
                return tried
            for delivery in due:
                self._attempt(channel, delivery)
                tried += 1
        return tried

    def _attempt(self, channel: Channel, delivery: Delivery) -> None:
        attempts = delivery.attempts + 1
        try:
            sent = channel.send(delivery)
        except DeliveryError as exc:
            self._failed_attempt(delivery, attempts, exc.reason, exc.retryable)
            return
        except Exception as exc:  # a channel bug is a failed attempt, not a dead thread
            log.exception("%s crashed sending %s", channel.label, delivery.message_id)
            self._failed_attempt(delivery, attempts, f"{type(exc).__name__}: {exc}", True)
            return
        now = self._wall_ms()
        self.outbox.mark(
            delivery.id, state=sent.state, attempts=attempts, sent_at=now, provider=sent.provider,
            provider_ref=sent.ref, detail=sent.detail, settled_at=now if sent.state == "delivered" else None,
        )
        self.sent += 1
        self._lane_ok(delivery)

    def _failed_attempt(self, delivery: Delivery, attempts: int, reason: str, retryable: bool) -> None:
        now = self._wall_ms()
        lane = delivery.lane
        first = self._first_failure.setdefault(lane, now)
        if retryable and attempts < self.max_attempts:
            delay = min(self.backoff_s * 2 ** (attempts - 1), self.max_backoff_s)
            self.outbox.mark(delivery.id, attempts=attempts, next_attempt_at=now + int(delay * 1000), detail=reason)
            if now - first >= self.grace_s * 1000:
                with self._trouble_lock:
                    self._trouble.setdefault(lane, LaneTrouble(first, self._words(delivery, reason)))
            log.warning("%s to %s failed (attempt %d, again in %.0f s): %s", delivery.channel, delivery.recipient,
                        attempts, delay, reason)
            return
        self.outbox.mark(delivery.id, state="failed", attempts=attempts, settled_at=now, detail=reason)
        self.failed += 1
        with self._trouble_lock:
            earlier = self._trouble.get(lane)
            self._trouble[lane] = LaneTrouble(earlier.since_ms if earlier else now, self._words(delivery, reason))
        log.error("%s to %s failed for good after %d attempts: %s", delivery.channel, delivery.recipient, attempts,
                  reason)

    def _lane_ok(self, delivery: Delivery) -> None:
        self._first_failure.pop(delivery.lane, None)
        with self._trouble_lock:
            self._trouble.pop(delivery.lane, None)

    def check_receipts(self, name: str) -> int:
        """Ask the provider what became of messages it took; returns how many settled."""
        channel = self.channels[name]
        if not hasattr(channel, "receipt"):
            return 0
        receipts: ReceiptChannel = channel  # type: ignore[assignment]
        now = self._wall_ms()
        settled = 0
        for delivery in self.outbox.awaiting_receipt(name, now - RECEIPT_WINDOW_MS):
            receipt = receipts.receipt(delivery)
            if receipt.state is None:
                continue
            self.outbox.mark(delivery.id, state=receipt.state, settled_at=self._wall_ms(), detail=receipt.detail)
            settled += 1
            if receipt.state == "failed":
                self.failed += 1
                with self._trouble_lock:
                    self._trouble[delivery.lane] = LaneTrouble(now, self._words(delivery, receipt.detail))
                log.error("%s to %s was not delivered: %s", delivery.channel, delivery.recipient, receipt.detail)
            else:
                self._lane_ok(delivery)
        return settled

    # -- health -------------------------------------------------------------------------------------------------

    def _words(self, delivery: Delivery, reason: str) -> str:
        channel = self.channels.get(delivery.channel)
        label = channel.label if channel is not None else delivery.channel
        if delivery.person is not None:
            who = self.people.get(delivery.person, delivery.person)
            return f"{label} to {who} about alert {delivery.alert_id} ({reason})"
        return f"{label} to {delivery.recipient} ({reason})"

    @property
    def name(self) -> str:
        with self._trouble_lock:
            troubles = list(self._trouble.values())
        return "; ".join(t.what for t in troubles) if troubles else "notifications"

    def failing_since_ms(self) -> int | None:
        with self._trouble_lock:
            troubles = list(self._trouble.values())
        return min((t.since_ms for t in troubles), default=None)

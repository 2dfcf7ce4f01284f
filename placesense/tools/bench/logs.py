"""What the pipeline did, as the bench saw it: ``StoredLog`` is the sink the pipeline hands each durably written
batch to, ``AlertLog`` follows the service's alert feed. Both record times and counts only, as cheaply as they
can, and turn them into rates and latencies afterwards; neither changes what the pipeline does.
"""

from __future__ import annotations

import threading
import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field

from devices.readings import Reading
from placesense.service import Service


@dataclass
class StoredLog:
    """What the bench's sink saw: per batch, when it was handed on, and its readings' event and receive times."""

    batches: list[tuple[float, array[int], array[int]]] = field(default_factory=list)
    count: int = 0
    evaluated_ms: float = 0.0  # when the evaluation process had finished with every stored reading

    def __call__(self, readings: Sequence[Reading]) -> None:
        # Called on the pipeline's hand-on thread after the durable write and PUBACK, before the batch is sent to
        # the evaluation process; kept cheap (two compact arrays per batch) so the bench disturbs the pipeline as
        # little as it can.
        now_ms = time.time() * 1000.0
        self.batches.append(
            (now_ms, array("q", [r.ts_ms for r in readings]), array("q", [r.received_ms for r in readings]))
        )
        self.count += len(readings)

    def first_received_ms(self) -> float:
        return float(min((min(received) for _, _, received in self.batches if received), default=0))

    def last_stored_ms(self) -> float:
        return max((stored for stored, _, _ in self.batches), default=0.0)

    def throughput(self) -> float:
        """Readings per second from the first received to the last stored and evaluated."""
        span_s = (max(self.last_stored_ms(), self.evaluated_ms) - self.first_received_ms()) / 1000.0
        return self.count / span_s if span_s > 0 else 0.0


class AlertLog:
    """Alert changes seen on the service's in-process feed, with the wall time each was published."""

    def __init__(self, service: Service) -> None:
        self.changes: list[tuple[float, int]] = []  # (published at, ms; the alert's event time, ms)
        self._subscription = service.alert_feed.subscribe()
        self._service = service
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-alerts", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            change = self._subscription.get(timeout_s=0.2)
            if change is not None:
                self.changes.append((time.time() * 1000.0, change.alert.updated_at_ms))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._service.alert_feed.unsubscribe(self._subscription)

    def latencies(self, log: StoredLog) -> tuple[list[float], list[float]]:
        """Reading received → alert published, and reading stored → alert published, for the changes a reading
        caused (its event time is the alert's)."""
        seen: dict[int, tuple[int, float]] = {}  # event time → (received, stored)
        for stored_ms, event_times, received_times in log.batches:
            seen.update((event, (received, stored_ms)) for event, received in zip(event_times, received_times,
                                                                                   strict=True))
        caused = [(at, seen[event]) for at, event in self.changes if event in seen]
        return [at - received for at, (received, _) in caused], [at - stored for at, (_, stored) in caused]


"""Clocks that rules and detectors read time from.

``LiveClock`` is the wall clock, so "no activity for 3 hours" fires when nothing arrives (but follows event time
while a backlog is replayed, so old readings are not judged against the present). ``EventClock``
advances only with event timestamps (never backwards), so a simulated month or a replayed file runs in seconds
and raises the same alerts every run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Current time in epoch milliseconds."""

    def observe(self, event_ms: int) -> None:
        """Tell the clock an event with this timestamp arrived."""

    def arrival_ms(self, event_ms: int, received_ms: int) -> int:
        """When, on this clock, a reading stamped ``event_ms`` and received at ``received_ms`` was heard."""


CATCH_UP_LAG_MS = 5 * 60_000  # readings this much older than the wall clock are a backlog being replayed
RECEIVING_MS = 60_000  # ...while they keep arriving within this long


class LiveClock:
    """Wall-clock time, except while a backlog is being replayed.

    After an outage the broker delivers hours of readings in seconds. Judged against the wall clock, each one
    would look hours late ("no movement since 22:12, 13 h ago") and open an alert the next reading closes. So
    while the readings arriving are all well behind the wall clock, time is the newest event time seen; it
    returns to the wall clock once current readings arrive again, or when nothing arrives at all (then silence
    is real and the absence rules should fire).
    """

    def __init__(self, wall_ms: Callable[[], int] | None = None) -> None:
        self._wall_ms = wall_ms or (lambda: time.time_ns() // 1_000_000)
        self._latest_event_ms: int | None = None
        self._observed_at_ms = 0
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        wall = self._wall_ms()
        with self._lock:
            latest, observed_at = self._latest_event_ms, self._observed_at_ms
        if latest is not None and wall - latest > CATCH_UP_LAG_MS and wall - observed_at < RECEIVING_MS:
            return latest
        return wall

    def observe(self, event_ms: int) -> None:
        wall = self._wall_ms()
        with self._lock:
            if self._latest_event_ms is None or event_ms > self._latest_event_ms:
                self._latest_event_ms = event_ms
            self._observed_at_ms = wall

    def arrival_ms(self, event_ms: int, received_ms: int) -> int:
        # A backlog replayed after an outage carries old event times but was heard now: "last heard" must be
        # now, or every replayed reading would look like a device that has been silent for hours.
        return received_ms or event_ms


class EventClock:
    """Time is the latest event timestamp seen (monotonic: late events do not move it back)."""

    def __init__(self, start_ms: int = 0) -> None:
        self._now = start_ms
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        return self._now

    def observe(self, event_ms: int) -> None:
        with self._lock:
            if event_ms > self._now:
                self._now = event_ms

    def arrival_ms(self, event_ms: int, received_ms: int) -> int:
        return event_ms


def make_clock(kind: str) -> Clock:
    if kind == "event":
        return EventClock()
    if kind == "live":
        return LiveClock()
    raise ValueError(f"unknown clock {kind!r}: use 'live' or 'event'")

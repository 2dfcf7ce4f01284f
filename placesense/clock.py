"""Clocks that rules and detectors read time from.

``LiveClock`` is the wall clock, so "no activity for 3 hours" fires when nothing arrives. ``EventClock``
advances only with event timestamps (never backwards), so a simulated month or a replayed file runs in seconds
and raises the same alerts every run.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Current time in epoch milliseconds."""

    def observe(self, event_ms: int) -> None:
        """Tell the clock an event with this timestamp arrived."""

    def arrival_ms(self, event_ms: int, received_ms: int) -> int:
        """When, on this clock, a reading stamped ``event_ms`` and received at ``received_ms`` was heard."""


class LiveClock:
    """Wall-clock time; events do not move it."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def observe(self, event_ms: int) -> None:
        return None

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

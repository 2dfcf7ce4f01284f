"""Clocks that rules and detectors read time from.

``LiveClock`` is the wall clock, so "no activity for 3 hours" fires when nothing arrives (but follows event time
while a backlog is replayed, so old readings are not judged against the present; a device's old timestamps
alone never move it). ``EventClock``
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
RECEIVING_MS = 60_000  # ...while their event time keeps advancing within this long
# A backlog shows itself by its speed: the broker delivers hours of readings in seconds. Old readings are followed
# only once their event time has covered BACKLOG_SPAN_MS within BACKLOG_WITHIN_MS of wall time (60 times real
# time or faster), and for MAX_CATCH_UP_MS at most: a device whose clock is wrong, or that repeats an old
# timestamp, never freezes or turns back the time of the whole estate.
BACKLOG_SPAN_MS = 10 * 60_000
BACKLOG_WITHIN_MS = 10_000
MAX_CATCH_UP_MS = 15 * 60_000


class LiveClock:
    """Wall-clock time, except while a backlog is being replayed.

    After an outage the broker delivers hours of readings in seconds. Judged against the wall clock, each one
    would look hours late ("no movement since 22:12, 13 h ago") and open an alert the next reading closes. So
    while such a backlog arrives, time is the newest event time seen; it returns to the wall clock once current
    readings arrive again, when the backlog's event time stops advancing (then silence is real and the absence
    rules should fire), and after ``MAX_CATCH_UP_MS`` whatever arrives. Old readings that do not arrive as a
    backlog does, fast (a device with a wrong clock, one repeating an old timestamp, one device's buffer), never
    move the clock at all.
    """

    def __init__(self, wall_ms: Callable[[], int] | None = None) -> None:
        self._wall_ms = wall_ms or (lambda: time.time_ns() // 1_000_000)
        self._latest_event_ms: int | None = None
        self._advanced_at_ms = 0  # wall time when the newest event time last advanced
        self._run: tuple[int, int] | None = None  # (wall, event) where the current run of old readings began
        self._following_since: int | None = None  # wall time when the run proved to be a backlog
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        wall = self._wall_ms()
        with self._lock:
            latest, advanced_at, since = self._latest_event_ms, self._advanced_at_ms, self._following_since
        if (
            since is not None
            and latest is not None
            and wall - latest > CATCH_UP_LAG_MS
            and wall - advanced_at < RECEIVING_MS
            and wall - since < MAX_CATCH_UP_MS
        ):
            return latest
        return wall

    def observe(self, event_ms: int) -> None:
        wall = self._wall_ms()
        with self._lock:
            if wall - event_ms <= CATCH_UP_LAG_MS:  # a current reading: any replay is over
                self._run = self._following_since = None
            if self._latest_event_ms is not None and event_ms <= self._latest_event_ms:
                return  # no newer than what came before: says nothing about a backlog
            self._latest_event_ms = event_ms
            self._advanced_at_ms = wall
            if wall - event_ms <= CATCH_UP_LAG_MS or self._following_since is not None:
                return
            if self._run is None or wall - self._run[0] > BACKLOG_WITHIN_MS:
                self._run = (wall, event_ms)  # measure this run's speed from here
            elif event_ms - self._run[1] >= BACKLOG_SPAN_MS:
                self._following_since = wall

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

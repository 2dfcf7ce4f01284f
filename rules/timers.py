"""Timers for absence-of-events rules: "fire at this time unless something resets me first".

A rule sets a timer per key (a home, a device) and moves or cancels it when a reading arrives; the engine pops
the timers that are due up to the clock's time. Popping is cheap (a heap with lazy deletion), so the engine can
check on every reading, which is what makes event-clock replays fire timers at exactly the same points.

This module only keeps deadlines: it must not read clocks or build findings.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class Timers(Generic[K]):
    """Deadlines by key; one deadline per key (setting again moves it)."""

    def __init__(self) -> None:
        self._due: dict[K, tuple[int, int]] = {}
        self._heap: list[tuple[int, int, K]] = []
        self._serial = 0

    def set(self, key: K, due_ms: int) -> None:
        self._serial += 1
        self._due[key] = (due_ms, self._serial)
        heapq.heappush(self._heap, (due_ms, self._serial, key))
        if len(self._heap) > 4 * len(self._due) + 64:
            self._compact()

    def cancel(self, key: K) -> None:
        self._due.pop(key, None)

    def get(self, key: K) -> int | None:
        entry = self._due.get(key)
        return None if entry is None else entry[0]

    def next_due(self) -> int | None:
        while self._heap:
            due, serial, key = self._heap[0]
            if self._due.get(key) == (due, serial):
                return due
            heapq.heappop(self._heap)
        return None

    def pop_due(self, now_ms: int) -> list[tuple[int, K]]:
        """Remove and return the timers due at or before ``now_ms``, earliest first."""
        fired: list[tuple[int, K]] = []
        while self._heap and self._heap[0][0] <= now_ms:
            due, serial, key = heapq.heappop(self._heap)
            if self._due.get(key) == (due, serial):
                del self._due[key]
                fired.append((due, key))
        return fired

    def _compact(self) -> None:
        self._heap = [(due, serial, key) for key, (due, serial) in self._due.items()]
        heapq.heapify(self._heap)

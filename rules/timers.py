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
        # key -> its live heap entry (the very tuple in ``_heap``, so a live deadline costs one tuple, not two).
        # Entries in the heap that are no longer a key's live entry are stale: skipped when they come up.
        self._due: dict[K, tuple[int, int, K]] = {}
        self._heap: list[tuple[int, int, K]] = []
        self._serial = 0  # ties on the due time go in the order the timers were set

    def set(self, key: K, due_ms: int) -> None:
        self._serial += 1
        entry = (due_ms, self._serial, key)
        self._due[key] = entry
        heapq.heappush(self._heap, entry)
        # Every reading moves its device's deadline, leaving a stale entry behind: rebuild once they are as many
        # as the live ones, so the heap stays under twice the timers (rebuilding costs O(n) per n sets).
        if len(self._heap) > 2 * len(self._due) + 64:
            self._compact()

    def cancel(self, key: K) -> None:
        self._due.pop(key, None)

    def get(self, key: K) -> int | None:
        entry = self._due.get(key)
        return None if entry is None else entry[0]

    def next_due(self) -> int | None:
        while self._heap:
            entry = self._heap[0]
            if self._due.get(entry[2]) is entry:
                return entry[0]
            heapq.heappop(self._heap)
        return None

    def pop_due(self, now_ms: int) -> list[tuple[int, K]]:
        """Remove and return the timers due at or before ``now_ms``, earliest first."""
        fired: list[tuple[int, K]] = []
        while self._heap and self._heap[0][0] <= now_ms:
            entry = heapq.heappop(self._heap)
            due, _, key = entry
            if self._due.get(key) is entry:
                del self._due[key]
                fired.append((due, key))
        return fired

    def _compact(self) -> None:
        self._heap = list(self._due.values())
        heapq.heapify(self._heap)

"""Timers for absence-of-events rules: "fire at this time unless something resets me first".

A rule sets a timer per key (a home, a device) and moves or cancels it when a reading arrives; the engine pops
the timers that are due up to the clock's time. Popping is cheap (a heap with lazy deletion), so the engine can
check on every reading, which is what makes event-clock replays fire timers at exactly the same points. Moving a
deadline later, as every reading does, costs no heap operation.

This module only keeps deadlines: it must not read clocks or build findings.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class Timers(Generic[K]):
    """Deadlines by key; one deadline per key (setting again moves it)."""

    def __init__(self) -> None:
        # key -> its live deadline: (due, serial, key). Ties on the due time go in the order the timers were set.
        self._due: dict[K, tuple[int, int, K]] = {}
        # key -> its entry in ``_heap``, due no later than the live deadline. Every reading moves its device's
        # deadline later; pushing each move cost a heap push per reading and a rebuild every few thousand. A later
        # deadline waits behind the queued entry instead, and takes its place in the heap when that comes up.
        # Entries in the heap that are no key's queued entry are stale (moved earlier or cancelled): skipped.
        self._queued: dict[K, tuple[int, int, K]] = {}
        self._heap: list[tuple[int, int, K]] = []
        self._serial = 0

    def set(self, key: K, due_ms: int) -> None:
        self._serial += 1
        entry = (due_ms, self._serial, key)
        self._due[key] = entry
        queued = self._queued.get(key)
        if queued is not None and queued[0] <= due_ms:
            return  # comes up first, then hands over to ``entry`` (a later serial, so ties keep their order)
        self._queued[key] = entry
        heapq.heappush(self._heap, entry)
        # Moving deadlines earlier or cancelling leaves stale entries behind: rebuild once they are as many as the
        # live ones, so the heap stays under twice the timers (rebuilding costs O(n) per n pushes).
        if len(self._heap) > 2 * len(self._due) + 64:
            self._compact()

    def cancel(self, key: K) -> None:
        self._due.pop(key, None)

    def __getstate__(self) -> dict[str, Any]:
        # The heap matches its entries by identity, which a copy does not keep: save the deadlines themselves.
        return {"deadlines": self.deadlines()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]
        self.restore(state["deadlines"])

    def deadlines(self) -> list[tuple[K, int]]:
        """Every live deadline as (key, due), in the order they were set: what a saved state keeps."""
        return [(key, due) for due, _, key in sorted(self._due.values(), key=lambda entry: entry[1])]

    def restore(self, deadlines: list[tuple[K, int]]) -> None:
        """Set the deadlines ``deadlines`` gives (a saved state's), on top of any set already."""
        for key, due in deadlines:
            self.set(key, due)

    def cancel_where(self, keep: Callable[[K], bool]) -> None:
        """Cancel every deadline whose key ``keep`` turns down."""
        for key in [key for key in self._due if not keep(key)]:
            self.cancel(key)

    def get(self, key: K) -> int | None:
        entry = self._due.get(key)
        return None if entry is None else entry[0]

    def next_due(self) -> int | None:
        heap = self._heap
        while heap:
            entry = heap[0]
            if self._come_up(entry) is entry:
                return entry[0]
        return None

    def pop_due(self, now_ms: int) -> list[tuple[int, K]]:
        """Remove and return the timers due at or before ``now_ms``, earliest first."""
        fired: list[tuple[int, K]] = []
        heap = self._heap
        while heap and heap[0][0] <= now_ms:
            entry = heap[0]
            if self._come_up(entry) is entry:
                heapq.heappop(heap)
                due, _, key = entry
                del self._due[key], self._queued[key]
                fired.append((due, key))
        return fired

    def _come_up(self, entry: tuple[int, int, K]) -> tuple[int, int, K] | None:
        """``entry``, at the top of the heap, is live: return it. Otherwise drop it or put the live deadline it
        stood for in its place (that may be due too: the caller looks at the top again)."""
        key = entry[2]
        if self._queued.get(key) is not entry:
            heapq.heappop(self._heap)
            return None
        live = self._due.get(key)
        if live is entry:
            return entry
        if live is None:
            del self._queued[key]
            heapq.heappop(self._heap)
        else:
            self._queued[key] = live
            heapq.heapreplace(self._heap, live)
        return None

    def _compact(self) -> None:
        self._queued = dict(self._due)
        self._heap = list(self._due.values())
        heapq.heapify(self._heap)

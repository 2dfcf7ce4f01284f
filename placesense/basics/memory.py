"""Memory of the long-running processes (``placesense serve`` and its evaluation child): garbage-collector
settings, and the bounded windows that per-device state keeps."""

from __future__ import annotations

import gc
from collections.abc import MutableSequence
from typing import TypeVar

T = TypeVar("T")

# Allocations between young-generation collections (Python's default is 700); see ``settle_memory``.
GC_YOUNG_THRESHOLD = 10_000


def settle_memory() -> None:
    """Call once the service is built, before it runs: keeps the garbage collector's pauses short.

    Python's full collection walks every tracked object; with a fleet's registry, rule state and detectors that
    took up to 160 ms each time, stalling ingest and alerts (the bench's p99 latencies). What exists now (modules,
    the registry, configuration) lives as long as the process, so it is moved out of the collector's sight, and
    young objects are collected in larger steps, so fewer survivors reach the old generation.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)


def set_aside() -> None:
    """Call after each unit of work in a process whose long-lived state grows with what it sees: the evaluation
    process, after each batch. Objects that survived the work are moved out of the collector's sight, so its
    young collections walk only what the next batch creates.

    Without it, the state a fleet's first readings build (10,000 devices' rules and detectors) reached the middle
    generation, and one collection of it held the evaluation process for 70–90 ms (gc callbacks during the bench).
    The rules and detectors make no garbage in reference cycles (``gc.DEBUG_SAVEALL`` over the bench workload
    found none), so nothing is hidden that only the collector could free; ``collect_set_aside`` bounds that anyway.
    """
    gc.freeze()


def collect_set_aside() -> None:
    """A full collection, what was set aside included, then set everything aside again. Call it rarely (the
    evaluation process does every ten minutes, when it saves): it walks the whole heap."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def keep_last(window: MutableSequence[T], item: T, limit: int) -> None:
    """Append ``item`` and drop the oldest beyond ``limit``: a deque's ``maxlen`` in a list or a flat array.

    Per-device state keeps many short windows. An empty deque is a 760-byte object and holds each float as a
    pointer to a 24-byte object; an empty list is 56 bytes and an ``array('d')`` 8 bytes a value. The windows are
    short, so moving them down by one on each append is cheap.
    """
    window.append(item)
    if len(window) > limit:
        del window[0]

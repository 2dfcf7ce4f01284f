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


def keep_last(window: MutableSequence[T], item: T, limit: int) -> None:
    """Append ``item`` and drop the oldest beyond ``limit``: a deque's ``maxlen`` in a list or a flat array.

    Per-device state keeps many short windows. An empty deque is a 760-byte object and holds each float as a
    pointer to a 24-byte object; an empty list is 56 bytes and an ``array('d')`` 8 bytes a value. The windows are
    short, so moving them down by one on each append is cheap.
    """
    window.append(item)
    if len(window) > limit:
        del window[0]

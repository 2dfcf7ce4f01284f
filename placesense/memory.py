"""Garbage-collector settings for the long-running processes (``placesense serve`` and its evaluation child)."""

from __future__ import annotations

import gc

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

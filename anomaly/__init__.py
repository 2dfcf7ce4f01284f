"""anomaly: streaming detectors that turn readings into findings.

Public surface (what the composition root, the API and the CLI use):

- ``RoutineDetector(registry, clock)``: ``process(reading) -> list[Finding]``, ``tick(now_ms) -> list[Finding]``,
  ``routine_today(home_id) -> dict``, ``warm_up(home_id) -> dict``, ``state()`` / ``restore(state)`` / ``forget(home)``.
- ``SeriesDetector`` and ``EpisodeFilter``: the generic univariate detector behind ``placesense detect``.

This package never talks to MQTT, InfluxDB or the alert store; names load lazily so the CLI stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from anomaly.base import EpisodeFilter
    from anomaly.routine import RoutineDetector
    from anomaly.series import SeriesDetector

_HOME = {
    "EpisodeFilter": "anomaly.base",
    "RoutineDetector": "anomaly.routine",
    "SeriesDetector": "anomaly.series",
}
__all__ = ["EpisodeFilter", "RoutineDetector", "SeriesDetector"]


def __getattr__(name: str) -> Any:
    module_name = _HOME.get(name)
    if module_name is None:
        raise AttributeError(f"module 'anomaly' has no attribute {name!r}")
    return getattr(importlib.import_module(module_name), name)

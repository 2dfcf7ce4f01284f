"""Per-sensor detectors for flowerbed and street-air streams: sudden drops, flat-lines, erratic readings, drift.

Each soil sensor's moisture series gets the generic streaming detector (``anomaly.series.SeriesDetector`` behind
an ``EpisodeFilter``). Air sensors are compared with their neighbours on PM2.5 and NO2: the difference between a
site and the median of the other sites' latest values is itself a series, and a lasting shift in it is a sensor
drifting away from the others (street air is much the same across a town centre; flowerbeds are watered one by
one, so soil is not compared).

A flag becomes a ``Finding`` for the street team (rule ``sensor_anomaly``) with a plain sentence saying what
changed; it clears after a run of normal readings. This module must not talk to MQTT, InfluxDB or the alert
store: readings in, findings out.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from anomaly.base import EpisodeFilter, Features
from anomaly.series import SeriesDetector
from devices.readings import METRIC_UNITS, Reading
from devices.registry import Registry
from placesense.clock import Clock
from rules.findings import Finding

# What each domain's own series are watched for (soil), and which air metrics are compared with the neighbours.
# Air sensors' own series are left to the DAQI and the rules' stuck/jump checks: a pollution episode is real, not
# a fault, and a detector per pollutant per site would cost memory a large fleet does not have to spare.
WATCHED: dict[str, tuple[str, ...]] = {"soil": ("soil_moisture_pct",)}
COMPARED: dict[str, tuple[str, ...]] = {"air": ("pm2_5_ugm3", "no2_ugm3")}
# Watering and rain raise soil moisture in one step: a rise there is the point of the bed, not a fault.
EXPECTED_RISES = frozenset({"soil_moisture_pct"})
_RISES = frozenset({"spike_up", "shift_up", "pattern_up"})
_SHIFTS = frozenset({"shift_up", "shift_down"})
NEIGHBOUR_WINDOW_MS = 2 * 3_600_000  # a neighbour's value older than this is not compared
MIN_NEIGHBOURS = 2
# The other sites' values are sorted once per minute of event time, not per reading: sorting every site's latest
# value for each reading made the comparison grow with the fleet (20 % of evaluation time at 350 air sites).
NEIGHBOURS_REFRESH_MS = 60_000
CLEAR_AFTER = 24  # normal readings after a flag before the finding clears

_WHAT = {
    "spike_up": "jumped up suddenly",
    "spike_down": "dropped suddenly",
    "shift_up": "rose to a new level and stayed there",
    "shift_down": "fell to a new level and stayed there",
    "noisier": "became much more erratic than usual",
    "quieter": "became unusually steady",
    "pattern_up": "is higher than usual for this time of day",
    "pattern_down": "is lower than usual for this time of day",
    "flat": "has not changed at all for many readings (possibly stuck)",
}


# Slots: one watch per soil sensor and two per air site, so a fleet holds thousands.
@dataclass(slots=True)
class _Watch:
    detector: EpisodeFilter
    flagged: bool = False
    normal_since_flag: int = 0


@dataclass(slots=True)
class _Device:
    watches: dict[str, _Watch] = field(default_factory=dict)


class _Neighbourhood:
    """Every site's latest value of one metric, and the median of the other sites' values."""

    def __init__(self) -> None:
        self.latest: dict[str, tuple[int, float]] = {}
        self._sorted: list[float] = []
        self._included: dict[str, float] = {}  # device -> its value inside ``_sorted``
        self._refreshed_ms: int | None = None

    def update(self, device_id: str, ts_ms: int, value: float) -> None:
        self.latest[device_id] = (ts_ms, value)

    def refresh(self) -> None:
        """Forget the cached median (a site was removed)."""
        self._refreshed_ms = None

    def median_of_others(self, device_id: str, ts_ms: int) -> float | None:
        """The median of the other sites' values heard within ``NEIGHBOUR_WINDOW_MS`` (as of at most a minute of
        event time ago), or None with fewer than ``MIN_NEIGHBOURS`` of them."""
        refreshed = self._refreshed_ms
        if refreshed is None or not 0 <= ts_ms - refreshed < NEIGHBOURS_REFRESH_MS:
            self._included = {d: v for d, (t, v) in self.latest.items() if ts_ms - t <= NEIGHBOUR_WINDOW_MS}
            self._sorted = sorted(self._included.values())
            self._refreshed_ms = ts_ms
        values = self._sorted
        own = self._included.get(device_id)
        skip = len(values) if own is None else bisect_left(values, own)
        count = len(values) - (own is not None)
        if count < MIN_NEIGHBOURS:
            return None

        def kth(k: int) -> float:
            return values[k] if k < skip else values[k + 1]

        middle = count // 2
        return kth(middle) if count % 2 else (kth(middle - 1) + kth(middle)) / 2


def _new_watch(expect_rises: bool) -> _Watch:
    # Where rises are expected, take a new level as normal after a few readings, so the detector is watching
    # again soon after a watering rather than treating the wetter bed as an anomaly for a day.
    accept_after = 6 if expect_rises else 40
    # A shorter warm-up and memory than the CSV detector's: sensors report every few minutes to an hour, so a
    # watch starts judging within a day. The reference window stays long enough to see a slow drift.
    detector = SeriesDetector(warm_up=60, memory=1000, seasonal_days=3.0)
    return _Watch(EpisodeFilter(detector, cooldown=50, accept_after=accept_after))


class SensorDetectors:
    """Spike, shift, flat-line and neighbour-drift detection for soil and air devices."""

    def __init__(self, registry: Registry, clock: Clock) -> None:
        self.registry = registry
        self.clock = clock
        self._devices: dict[str, _Device] = {}
        # metric -> every site's latest value: the neighbours' side of the comparison
        self._neighbourhoods: dict[str, _Neighbourhood] = {}
        self._lock = threading.Lock()

    # -- saved state ----------------------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Every watched sensor's detectors and the neighbours' latest values (``placesense.evaluation_state``)."""
        with self._lock:
            return {"devices": self._devices, "neighbourhoods": self._neighbourhoods}

    def restore(self, state: Mapping[str, Any]) -> None:
        with self._lock:
            self._devices.update({d: kept for d, kept in state["devices"].items() if d in self.registry.devices})
            self._neighbourhoods.update(state["neighbourhoods"])

    def forget(self, device_ids: Collection[str]) -> None:
        """Drop what was learned of these devices (erasure of their subject)."""
        with self._lock:
            for device_id in device_ids:
                self._devices.pop(device_id, None)
                for neighbourhood in self._neighbourhoods.values():
                    neighbourhood.latest.pop(device_id, None)
                    neighbourhood.refresh()

    def process(self, reading: Reading) -> list[Finding]:
        own = WATCHED.get(reading.domain, ())
        compared = COMPARED.get(reading.domain, ())
        if not own and not compared:
            return []
        findings: list[Finding] = []
        with self._lock:
            device = self._devices.setdefault(reading.device_id, _Device())
            for metric in own:
                value = reading.metrics.get(metric)
                if value is not None:
                    findings += self._watch(device, metric, reading, value)
            for metric in compared:
                value = reading.metrics.get(metric)
                if value is None:
                    continue
                neighbourhood = self._neighbourhoods.get(metric)
                if neighbourhood is None:
                    neighbourhood = self._neighbourhoods[metric] = _Neighbourhood()
                others = neighbourhood.median_of_others(reading.device_id, reading.ts_ms)
                neighbourhood.update(reading.device_id, reading.ts_ms, value)
                if others is not None:
                    findings += self._watch(device, f"{metric}:vs_neighbours", reading, value, others)
        return findings

    def _watch(
        self, device: _Device, key: str, reading: Reading, value: float, others: float | None = None
    ) -> list[Finding]:
        """Feed the watch ``key`` the reading's ``value``, or its gap to the ``others`` (the neighbours' median)."""
        watch = device.watches.get(key)
        expect_rises = key in EXPECTED_RISES
        if watch is None:
            watch = device.watches[key] = _new_watch(expect_rises)
        x: Features = {"value": value if others is None else value - others, "timestamp": reading.ts_ms}
        flagger = watch.detector
        detector = flagger.anomaly_detector
        # Only a point the filter calls anomalous can be flagged, so only such a point needs explaining (a
        # severity per statistic). Scoring it first costs nothing: the detector keeps the point's statistics.
        explanation: dict[str, float] = {}
        if isinstance(detector, SeriesDetector) and flagger.classify(detector.score_one(x)):
            explanation = detector.explain_one(x)
        score, flagged = flagger.process_one(x)
        driver = max(explanation, key=lambda name: explanation[name]) if explanation else "shift_up"
        # Against the neighbours only a lasting shift is drift; a momentary gap is a local event (a bus idling
        # by one sensor), not a fault.
        drift_only = key.endswith(":vs_neighbours")
        if flagged and not (expect_rises and driver in _RISES) and not (drift_only and driver not in _SHIFTS):
            watch.flagged, watch.normal_since_flag = True, 0
            what = _WHAT.get(driver, "behaves unusually")
            if key.endswith(":vs_neighbours"):
                what = f"has drifted away from the other sites ({what.split(' (')[0]})"
            metric = key.split(":")[0]
            now_text = f"{_label(metric)} {value:g} {_unit(metric)}"
            if others is not None:
                now_text += f" against {others:g} at the other sites"
            return [
                _finding(
                    reading, key, f"{what}; now {now_text}. Check the sensor and the site.",
                    evidence={"score": round(score, 3), "kind": driver, "value": x["value"]},
                )
            ]
        if watch.flagged and score < watch.detector.threshold:
            watch.normal_since_flag += 1
            if watch.normal_since_flag >= CLEAR_AFTER:
                watch.flagged = False
                return [_finding(reading, key, "reads normally again.", active=False)]
        return []


def _finding(
    reading: Reading,
    key: str,
    what: str,
    active: bool = True,
    evidence: dict[str, float | int | str | None] | None = None,
) -> Finding:
    """A street-team finding about one sensor's watch ``key`` (a metric, or ``metric:vs_neighbours``)."""
    return Finding(
        rule=f"sensor_anomaly_{key.replace(':', '_')}",
        audience="street",
        subject=reading.subject,
        severity="info",
        message=f"{_describe(reading)}: {_label(key.split(':')[0])} {what}",
        at_ms=reading.ts_ms,
        active=active,
        evidence=evidence or {},
        device_id=reading.device_id,
    )


def _label(metric: str) -> str:
    return METRIC_UNITS[metric][1] if metric in METRIC_UNITS else metric


def _unit(metric: str) -> str:
    return METRIC_UNITS[metric][0] if metric in METRIC_UNITS else ""


def _describe(reading: Reading) -> str:
    kind = "Soil sensor" if reading.domain == "soil" else "Air sensor"
    return f"{kind} {reading.device_id} ({reading.subject})"

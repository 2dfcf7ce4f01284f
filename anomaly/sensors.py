"""Per-sensor detectors for flowerbed and street-air streams: sudden drops, flat-lines, erratic readings, drift.

Each soil sensor's moisture series gets the generic streaming detector (``anomaly.series.SeriesDetector`` behind
an ``EpisodeFilter``). On real probes most of what it sees is irrigation and weather, so a soil flag becomes a
finding only when it is a fault a street team should act on:

- **flat** (the same value for many readings) and **dropped suddenly** (a fall of at least 3 points and a
  quarter of the reading between two readings: soil does not dry that fast) are reported at once;
- **erratic**: its last 12 readings keep reversing (up, down, up, by half a point or more: noise, where
  watering is one rise and a slow fall). Held for ``COMMON_CAUSE_MS``, and reported if it is still erratic
  then and fewer than a quarter of the other probes nearby turned erratic within that time either side (else
  it was the rain or the irrigation);
- a change of level, pattern or steadiness is the bed being watered or left alone: never a fault;
- **unresponsive** (``anomaly.probe_response``): the probe missed two wettings in a row that most probes around
  it saw.

Air sensors are compared with their neighbours on PM2.5 and NO2: the difference between a site and the median of
the other sites' latest values, averaged over each hour, is itself a series, and a shift in it that lasts
``DRIFT_PERSIST_MS`` is a sensor drifting away from the others. Sites differ all the time and for good reasons: a
roadside site's rush hours are far higher than a park's, and a local episode (a fire, stalled traffic) lifts one
site for hours and then ends. So the comparison needs ``MIN_NEIGHBOURS`` other sites, works in hours of event
time (whatever the report interval: a watch fed every reading learned a day's rush hours as "normal" only at
five-minute reporting, and at one-minute reporting took a four-hour episode as the new level after 40 minutes
and its end as a drift), learns each site's own offset by hour of day, and reports only a shift still there a
day later.

A flag becomes a ``Finding`` for the street team (rule ``sensor_anomaly``) with a plain sentence saying what
changed; it clears after a run of normal readings. This module must not talk to MQTT, InfluxDB or the alert
store: readings in, findings out.
"""

from __future__ import annotations

import threading
from array import array
from bisect import bisect_left
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from anomaly.base import EpisodeFilter, Features
from anomaly.probe_response import ProbeResponses
from anomaly.series import SeriesDetector
from devices.readings import METRIC_UNITS, Reading
from devices.registry import Registry
from placesense.basics.clock import Clock
from placesense.basics.findings import Finding
from placesense.basics.memory import keep_last
from placesense.basics.timeunits import HOUR_MS

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
# A median of two sites is their mean, moved by either one's local events; three is the least that outvotes one.
MIN_NEIGHBOURS = 3
DRIFT_PERSIST_MS = 24 * HOUR_MS  # a shift against the neighbours must last this long to be a drift
DRIFT_CLEAR_HOURS = 12  # normal hours after a drift before its finding clears
# The other sites' values are sorted once per minute of event time, not per reading: sorting every site's latest
# value for each reading made the comparison grow with the fleet (20 % of evaluation time at 350 air sites).
NEIGHBOURS_REFRESH_MS = 60_000
CLEAR_AFTER = 24  # normal readings after a flag before the finding clears
COMMON_CAUSE_MS = 6 * 3_600_000  # an erratic soil probe waits this long for its neighbours to turn erratic too
COMMON_CAUSE_SHARE = 0.25
SOIL_FAULT_KINDS = frozenset({"flat", "spike_down"})
IMPLAUSIBLE_DROP_PCT, IMPLAUSIBLE_DROP_SHARE = 3.0, 0.25
ERRATIC_READINGS = 12
ERRATIC_STEP_PCT = 0.5
AREA_DEGREES = 2  # probes whose beds round to the same 0.01° (about 1 km) are neighbours

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
    previous: float | None = None  # the value before the latest
    pending_ms: int | None = None  # an erratic soil flag waiting for its neighbours (see COMMON_CAUSE_MS)
    pending_message: str = ""
    pending_evidence: dict[str, float | int | str | None] = field(default_factory=dict)
    recent: array[float] = field(default_factory=lambda: array("d"))  # soil: the latest ERRATIC_READINGS values
    # air, against the neighbours: the hour being averaged (its start) and the sums of its readings
    hour_ms: int | None = None
    hour_count: int = 0
    hour_value: float = 0.0
    hour_others: float = 0.0


@dataclass(slots=True)
class _Device:
    watches: dict[str, _Watch] = field(default_factory=dict)
    area: str = ""
    unresponsive: bool = False


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


def _new_air_watch() -> _Watch:
    # One point an hour: two days' warm-up, three days to learn each hour of the day's usual gap (a roadside
    # site's rush hours), six weeks of memory. A gap that lasts 40 hours is taken as the new normal.
    detector = SeriesDetector(warm_up=48, memory=1000, seasonal_days=3.0)
    return _Watch(EpisodeFilter(detector, cooldown=24, accept_after=40))


class SensorDetectors:
    """Spike, shift, flat-line and neighbour-drift detection for soil and air devices."""

    def __init__(self, registry: Registry, clock: Clock) -> None:
        self.registry = registry
        self.clock = clock
        self._devices: dict[str, _Device] = {}
        # metric -> every site's latest value: the neighbours' side of the comparison
        self._neighbourhoods: dict[str, _Neighbourhood] = {}
        # soil: area -> shared wettings and the probes that miss them; area -> device -> its latest erratic flag
        self._responses: dict[str, ProbeResponses] = {}
        self._erratic: dict[str, dict[str, int]] = {}
        self._lock = threading.Lock()

    # -- saved state ----------------------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Every watched sensor's detectors and the neighbours' latest values (``placesense.evaluation_state``)."""
        with self._lock:
            return {"devices": self._devices, "neighbourhoods": self._neighbourhoods, "responses": self._responses,
                    "erratic": self._erratic}

    def restore(self, state: Mapping[str, Any]) -> None:
        with self._lock:
            self._devices.update({d: kept for d, kept in state["devices"].items() if d in self.registry.devices})
            self._neighbourhoods.update(state["neighbourhoods"])
            self._responses.update(state["responses"])
            self._erratic.update(state["erratic"])

    def forget(self, device_ids: Collection[str]) -> None:
        """Drop what was learned of these devices (erasure of their subject)."""
        with self._lock:
            for device_id in device_ids:
                self._devices.pop(device_id, None)
                for neighbourhood in self._neighbourhoods.values():
                    neighbourhood.latest.pop(device_id, None)
                    neighbourhood.refresh()
                for responses in self._responses.values():
                    responses.forget(device_id)
                for flags in self._erratic.values():
                    flags.pop(device_id, None)

    def process(self, reading: Reading) -> list[Finding]:
        own = WATCHED.get(reading.domain, ())
        compared = COMPARED.get(reading.domain, ())
        if not own and not compared:
            return []
        findings: list[Finding] = []
        with self._lock:
            device = self._devices.get(reading.device_id)
            if device is None:
                device = self._devices[reading.device_id] = _Device(area=self._area(reading.subject))
            for metric in own:
                value = reading.metrics.get(metric)
                if value is not None:
                    findings += self._watch(device, metric, reading, value)
                    if metric in EXPECTED_RISES:
                        findings += self._response(device, metric, reading, value)
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
                    findings += self._compare(device, f"{metric}:vs_neighbours", reading, value, others)
        return findings

    def _watch(self, device: _Device, key: str, reading: Reading, value: float) -> list[Finding]:
        """Feed the watch ``key`` (a sensor's own series) the reading's ``value``."""
        watch = device.watches.get(key)
        expect_rises = key in EXPECTED_RISES
        if watch is None:
            watch = device.watches[key] = _new_watch(expect_rises)
        score, flagged, explanation = _scored(watch, {"value": value, "timestamp": reading.ts_ms})
        driver = max(explanation, key=lambda name: explanation[name]) if explanation else "shift_up"
        previous, watch.previous = watch.previous, value
        if expect_rises:
            return self._soil(device, watch, key, reading, value, previous, score, flagged, driver)
        if flagged and not (expect_rises and driver in _RISES):
            watch.flagged, watch.normal_since_flag = True, 0
            what = _WHAT.get(driver, "behaves unusually")
            metric = key.split(":")[0]
            now_text = f"{_label(metric)} {value:g} {_unit(metric)}"
            return [
                _finding(
                    reading, key, f"{what}; now {now_text}. Check the sensor and the site.",
                    evidence={"score": round(score, 3), "kind": driver, "value": value},
                )
            ]
        if watch.flagged and score < watch.detector.threshold:
            watch.normal_since_flag += 1
            if watch.normal_since_flag >= CLEAR_AFTER:
                watch.flagged = False
                return [_finding(reading, key, "reads normally again.", active=False)]
        return []

    # -- air against the neighbours -----------------------------------------------------------------------------

    def _compare(self, device: _Device, key: str, reading: Reading, value: float, others: float) -> list[Finding]:
        """Add the reading's gap to the neighbours' median to its hour; a finished hour is judged."""
        watch = device.watches.get(key)
        if watch is None:
            watch = device.watches[key] = _new_air_watch()
        # The air comparison's step: one point per site per hour, the mean gap to the neighbours.
        hour = reading.ts_ms - reading.ts_ms % HOUR_MS
        if watch.hour_ms is not None and hour < watch.hour_ms:
            return []  # a reading buffered during an outage: its neighbours' values of then are gone
        findings: list[Finding] = []
        if watch.hour_ms != hour:
            if watch.hour_count:
                findings = self._judge_hour(watch, key, reading)
            watch.hour_ms, watch.hour_count, watch.hour_value, watch.hour_others = hour, 0, 0.0, 0.0
        watch.hour_count += 1
        watch.hour_value += value
        watch.hour_others += others
        return findings

    def _judge_hour(self, watch: _Watch, key: str, reading: Reading) -> list[Finding]:
        """Feed the finished hour's mean gap to the watch. A shift starts a wait of ``DRIFT_PERSIST_MS``; an hour
        back within the normal range ends it (a local episode or a passing difference, not a drift)."""
        assert watch.hour_ms is not None
        value, others = watch.hour_value / watch.hour_count, watch.hour_others / watch.hour_count
        score, flagged, explanation = _scored(watch, {"value": value - others, "timestamp": watch.hour_ms})
        anomalous = watch.detector.classify(score)
        driver = max(explanation, key=lambda name: explanation[name]) if explanation else ""
        metric = key.split(":")[0]
        if watch.pending_ms is not None:
            if not anomalous:
                watch.pending_ms = None
            elif watch.hour_ms - watch.pending_ms >= DRIFT_PERSIST_MS:
                watch.pending_ms = None
                if self._knock_on(watch, key):
                    return []
                watch.flagged, watch.normal_since_flag = True, 0
                side = "above" if watch.pending_evidence["kind"] == "shift_up" else "below"
                text = (
                    f"has drifted away from the other sites: for a day it has read further {side} them than it "
                    f"usually does; in the last hour {value:.1f} {_unit(metric)} against {others:.1f} at the other "
                    "sites. Check the sensor and the site."
                )
                evidence = {**watch.pending_evidence, "gap": round(value - others, 2)}
                return [_finding(reading, key, text, evidence=evidence)]
            return []
        if flagged and driver in _SHIFTS and not watch.flagged:
            watch.pending_ms = watch.hour_ms
            watch.pending_evidence = {"score": round(score, 3), "kind": driver, "gap": round(value - others, 2),
                                      "since_ms": watch.hour_ms}
            return []
        if watch.flagged and not anomalous:
            watch.normal_since_flag += 1
            if watch.normal_since_flag >= DRIFT_CLEAR_HOURS:
                watch.flagged = False
                return [_finding(reading, key, "reads normally again.", active=False)]
        return []


    def _knock_on(self, watch: _Watch, key: str) -> bool:
        """Whether this watch's shift is another site's drift seen from here: a site that drifts up lifts the
        median of its neighbours' neighbours, so the others seem to shift down, after it and less than it."""
        mine = watch.pending_evidence
        for device in self._devices.values():
            other = device.watches.get(key)
            if other is None or other is watch or not (other.flagged or other.pending_ms is not None):
                continue
            theirs = other.pending_evidence
            opposite = {mine.get("kind"), theirs.get("kind")} == _SHIFTS
            since, their_since = int(mine.get("since_ms") or 0), int(theirs.get("since_ms") or 0)
            earlier = their_since < since or (
                their_since == since and float(theirs.get("score") or 0) > float(mine.get("score") or 0))
            if opposite and earlier:
                return True
        return False

    # -- soil -------------------------------------------------------------------------------------------------

    def _area(self, subject: str) -> str:
        bed = self.registry.flowerbeds.get(subject)
        return "" if bed is None else f"{round(bed.lat, AREA_DEGREES)},{round(bed.lon, AREA_DEGREES)}"

    def _soil(
        self,
        device: _Device,
        watch: _Watch,
        key: str,
        reading: Reading,
        value: float,
        previous: float | None,
        score: float,
        flagged: bool,
        driver: str,
    ) -> list[Finding]:
        """A soil probe's flag, judged as a fault or not (see the module's docstring)."""
        erratic = self._erratic.setdefault(device.area, {})
        keep_last(watch.recent, value, ERRATIC_READINGS)
        findings: list[Finding] = []
        if watch.pending_ms is not None and reading.ts_ms - watch.pending_ms >= COMMON_CAUSE_MS:
            findings += self._settle_pending(device, watch, key, reading, erratic)
        if _erratic(watch.recent):
            erratic[reading.device_id] = reading.ts_ms
            if watch.pending_ms is None and not watch.flagged:
                swing = max(watch.recent) - min(watch.recent)
                watch.pending_ms = reading.ts_ms
                watch.pending_message = (
                    f"became erratic: its readings jump up and down by up to {swing:.1f} points; now {_label(key)} "
                    f"{value:g} {_unit(key)}. Check the sensor and the site."
                )
                watch.pending_evidence = {"kind": "erratic", "swing_pct": round(swing, 2), "value": value}
            return findings
        if flagged and driver in SOIL_FAULT_KINDS:
            evidence: dict[str, float | int | str | None] = {"score": round(score, 3), "kind": driver, "value": value}
            message = f"{_WHAT[driver]}; now {_label(key)} {value:g} {_unit(key)}. Check the sensor and the site."
            if driver == "flat" or _implausible_drop(previous, value):
                watch.flagged, watch.normal_since_flag = True, 0
                findings.append(_finding(reading, key, message, evidence=evidence))
            return findings
        if watch.flagged and score < watch.detector.threshold and watch.pending_ms is None:
            watch.normal_since_flag += 1
            if watch.normal_since_flag >= CLEAR_AFTER:
                watch.flagged = False
                findings.append(_finding(reading, key, "reads normally again.", active=False))
        return findings

    def _settle_pending(
        self, device: _Device, watch: _Watch, key: str, reading: Reading, erratic: dict[str, int]
    ) -> list[Finding]:
        at = watch.pending_ms
        assert at is not None
        watch.pending_ms = None
        others = [d for d in self._devices if d != reading.device_id and self._devices[d].area == device.area]
        together = sum(1 for d in others if abs(erratic.get(d, -(10**15)) - at) <= COMMON_CAUSE_MS)
        if others and together >= max(1.0, COMMON_CAUSE_SHARE * len(others)):
            return []  # the weather or the irrigation, seen by the neighbours too
        if not _erratic(watch.recent):
            return []  # it settled again within hours
        watch.flagged, watch.normal_since_flag = True, 0
        return [_finding(reading, key, watch.pending_message, evidence=watch.pending_evidence)]

    def _response(self, device: _Device, metric: str, reading: Reading, value: float) -> list[Finding]:
        responses = self._responses.get(device.area)
        if responses is None:
            responses = self._responses[device.area] = ProbeResponses()
        findings = []
        for device_id, failing in responses.observe(reading.device_id, reading.ts_ms, value).items():
            spec = self.registry.devices.get(device_id)
            if spec is None:
                continue
            probe = Reading(spec.domain, device_id, spec.subject, None, reading.ts_ms, {}, None, None)
            key = f"{metric}:unresponsive"
            if failing:
                text = (
                    f"did not respond to the last {responses.missed(device_id)} waterings or rain that most "
                    "probes around it saw: check the probe (and that the bed was watered)."
                )
                findings.append(_finding(probe, key, text, evidence={"missed_wettings": responses.missed(device_id)}))
            else:
                findings.append(_finding(probe, key, "responds to watering and rain again.", active=False))
        return findings


def _scored(watch: _Watch, x: Features) -> tuple[float, bool, dict[str, float]]:
    """Score ``x`` through the watch's detector: (score, flagged, a severity per statistic). Only a point the filter
    calls anomalous can be flagged, so only such a point is explained; scoring it first costs nothing, as the
    detector keeps the point's statistics."""
    flagger = watch.detector
    detector = flagger.anomaly_detector
    explanation: dict[str, float] = {}
    if isinstance(detector, SeriesDetector) and flagger.classify(detector.score_one(x)):
        explanation = detector.explain_one(x)
    score, flagged = flagger.process_one(x)
    return score, flagged, explanation


def _erratic(recent: array[float]) -> bool:
    """Readings that keep reversing (up, down, up by half a point or more): noise, where watering is one rise
    and a slow fall, and drying a slow fall."""
    if len(recent) < ERRATIC_READINGS:
        return False
    steps = [b - a for a, b in pairwise(recent) if abs(b - a) >= ERRATIC_STEP_PCT]
    return sum(1 for a, b in pairwise(steps) if a * b < 0) >= (len(recent) - 1) // 2


def _implausible_drop(previous: float | None, value: float) -> bool:
    if previous is None:
        return False
    drop = previous - value
    return drop >= IMPLAUSIBLE_DROP_PCT and drop >= IMPLAUSIBLE_DROP_SHARE * previous


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

"""The UK Daily Air Quality Index: running means per pollutant, the band per site, and band-change alerts.

Averaging periods (as the UK index defines them): NO2 the 1-hour mean, PM2.5 and PM10 the running 24-hour
mean, O3 the 8-hour running mean. Each running mean is the mean of the readings inside its window, the window
ending at the site's latest time, and counts only when its readings *cover* ``min_coverage`` of the window
(DEFRA's 75 % data capture). A reading covers its device's reporting interval — declared in the rules
(``reporting.interval_minutes`` for the device or the site) or inferred as the median gap between that
pollutant's recent readings — so an hourly mean from a reference station counts as a whole hour (18 of 24
hourly means make a valid 24-hour mean), and readings every 5 minutes count 5 minutes each.

A pollutant with no reading left in its window is not banded at all: the site's list shows "no data since
HH:MM" for it, never its last value as a current band, and it drops out of the site's index.

Banding of non-integer means: the table's bands are whole µg/m³ (PM2.5 11 → 1, 12 → 2), so a mean is rounded
to the nearest whole µg/m³ first, halves rounding up (11.5 → 12 → index 2; 11.49 → 11 → index 1), and then
looked up. The site's index is the highest over its current pollutants.

An alert opens when a site rises to ``alert_from_index`` (4, Moderate) and resolves when the site has been Low
(index 1–3) for ``clear_after_minutes``, so a mean hovering at a boundary does not flap. This module must not
touch alerts or storage.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass, field
from statistics import median
from typing import Any, Literal

from devices.readings import Domain, Reading
from devices.registry import DeviceSpec, Registry
from placesense.basics.findings import Finding
from placesense.basics.localtime import hm, zone
from placesense.basics.memory import keep_last
from placesense.basics.texts import text
from placesense.basics.timeunits import HOUR_MS, MINUTE_MS
from rules.config import DaqiRule, ReportingRule, SectionLookup

Band = Literal["Low", "Moderate", "High", "Very High"]
LevelStatus = Literal["current", "incomplete", "no data"]
GAPS_KEPT = 9  # a pollutant's interval is the median of this many recent gaps between its readings

# metric -> (label, averaging hours, upper bounds of indexes 1..9 in whole µg/m³; above the last is 10)
POLLUTANTS: dict[str, tuple[str, int, tuple[int, ...]]] = {
    "no2_ugm3": ("NO2", 1, (67, 134, 200, 267, 334, 400, 467, 534, 600)),
    "pm2_5_ugm3": ("PM2.5", 24, (11, 23, 35, 41, 47, 53, 58, 64, 70)),
    "pm10_ugm3": ("PM10", 24, (16, 33, 50, 58, 66, 75, 83, 91, 100)),
    "o3_ugm3": ("O3", 8, (33, 66, 100, 120, 140, 160, 187, 213, 240)),
}

def round_concentration(mean_ugm3: float) -> int:
    """Whole µg/m³, halves up (the table is in whole numbers)."""
    return math.floor(mean_ugm3 + 0.5)


def daqi_index(metric: str, mean_ugm3: float) -> int:
    """The index (1–10) of one pollutant's averaged concentration, per the DESIGN.md table."""
    # The first band whose upper bound is at least the value; past the last bound, bisect gives 9: index 10.
    return bisect_left(POLLUTANTS[metric][2], round_concentration(mean_ugm3)) + 1


def daqi_band(index: int) -> Band:
    if index <= 3:
        return "Low"
    if index <= 6:
        return "Moderate"
    if index <= 9:
        return "High"
    return "Very High"


@dataclass(frozen=True, slots=True)
class PollutantLevel:
    """One pollutant's running mean at a site and its index.

    ``status`` is "current" (banded: enough coverage), "incomplete" (readings cover too little of the period:
    listed, not banded) or "no data" (nothing in the averaging period: ``mean_ugm3``, ``index`` and ``band`` are
    None and ``last_reading_ms`` says since when).
    """

    metric: str
    label: str
    averaging_hours: int
    mean_ugm3: float | None
    index: int | None
    band: Band | None
    complete: bool  # the readings cover enough of the averaging period to count towards the site's index
    status: LevelStatus = "current"
    coverage: float = 1.0
    last_reading_ms: int | None = None


@dataclass(frozen=True, slots=True)
class SiteAirQuality:
    site_id: str
    name: str
    index: int | None
    band: Band | None
    updated_ms: int
    pollutants: tuple[PollutantLevel, ...]


class _RunningMean:
    """The mean of the readings of the last ``window_ms``, in arrival order, and how much of it they cover.

    Times and values are kept in two flat arrays (16 bytes a reading) rather than a deque of (time, value)
    tuples (about 100): a site keeps a day of readings for each of its pollutants. Readings that have left the
    window are skipped by ``_head`` and cut off in one go once they are half of the arrays, so dropping the
    oldest reading does not move the whole day's arrays on every reading. ``gaps`` (the latest gaps between
    readings, in ms) give the inferred reporting interval.
    """

    __slots__ = ("_head", "_times", "_values", "gaps", "last_ms", "total", "window_ms")

    def __init__(self, window_ms: int) -> None:
        self.window_ms = window_ms
        self._times: array[int] = array("q")
        self._values: array[float] = array("d")
        self._head = 0  # index of the oldest reading still in the window
        self.total = 0.0
        self.gaps: array[int] = array("q")
        self.last_ms: int | None = None

    def __len__(self) -> int:
        return len(self._times) - self._head

    def add(self, ts_ms: int, value: float) -> None:
        if self.last_ms is not None and ts_ms > self.last_ms:
            keep_last(self.gaps, ts_ms - self.last_ms, GAPS_KEPT)
        self.last_ms = ts_ms if self.last_ms is None else max(self.last_ms, ts_ms)
        self._times.append(ts_ms)
        self._values.append(value)
        self.total += value
        self.trim(ts_ms)

    def trim(self, now_ms: int) -> None:
        """Drop the readings that are a whole window old at ``now_ms`` (the site's latest time)."""
        times, values = self._times, self._values
        head = self._head
        while head < len(times) and times[head] <= now_ms - self.window_ms:
            self.total -= values[head]
            head += 1
        if 2 * head >= len(times):
            del times[:head], values[:head]
            head = 0
        self._head = head
        if len(self) == 1:
            self.total = values[head]  # re-anchor the sum so float error cannot accumulate over months
        elif not len(self):
            self.total = 0.0

    def mean(self) -> float:
        return self.total / len(self)

    def span_ms(self) -> int:
        return self._times[-1] - self._times[self._head] if len(self) else 0

    def interval_ms(self, declared_ms: int | None) -> int | None:
        """The reporting interval: declared, else the median of the recent gaps (None before the second reading)."""
        if declared_ms is not None:
            return declared_ms
        return int(median(self.gaps)) if self.gaps else None

    def coverage(self, declared_ms: int | None) -> float:
        """The share of the window its readings cover, each covering one reporting interval (at most 1)."""
        interval = self.interval_ms(declared_ms)
        if interval is None or not len(self):
            return 0.0
        return min(1.0, len(self) * interval / self.window_ms)


@dataclass(slots=True)
class _Site:
    means: dict[str, _RunningMean] = field(default_factory=dict)
    updated_ms: int = 0
    alerting_band: Band | None = None
    low_since_ms: int | None = None
    declared_interval_ms: int | None = None


class DaqiRules:
    """DAQI for every air site in the registry."""

    domains: frozenset[Domain] = frozenset({"air"})

    def __init__(self, registry: Registry, lookup: SectionLookup) -> None:
        self._registry = registry
        self._lookup = lookup
        self._sites: dict[str, _Site] = {}
        self._now_ms = 0  # the engine's latest time: a site silent since is judged at it

    def start(self, now_ms: int) -> None:
        self._now_ms = max(self._now_ms, now_ms)

    def state(self) -> dict[str, Any]:
        """Every site's running means and band (``placesense.evaluation_state``): without them, a restart would
        show no band until the 1-, 8- and 24-hour windows filled again."""
        return {"sites": self._sites, "now_ms": self._now_ms}

    def restore(self, state: Mapping[str, Any]) -> None:
        self._sites.update({site: kept for site, kept in state["sites"].items() if site in self._registry.air_sites})
        self._now_ms = max(self._now_ms, int(state["now_ms"]))

    def forget(self, subject: str) -> None:
        self._sites.pop(subject, None)

    def on_time(self, now_ms: int) -> list[Finding]:
        self._now_ms = max(self._now_ms, now_ms)
        return []

    def on_reading(self, reading: Reading, device: DeviceSpec) -> list[Finding]:
        if reading.subject not in self._registry.air_sites:
            return []
        present = [m for m in POLLUTANTS if m in reading.metrics]
        if not present:
            return []
        site = self._sites.get(reading.subject)
        if site is None:
            site = self._sites[reading.subject] = _Site()
        declared = self._lookup.get(ReportingRule, reading.subject, device).interval_minutes
        site.declared_interval_ms = None if declared is None else int(declared * MINUTE_MS)
        for metric in present:
            running = site.means.get(metric)
            if running is None:
                running = site.means[metric] = _RunningMean(POLLUTANTS[metric][1] * HOUR_MS)
            running.add(reading.ts_ms, reading.metrics[metric])
        site.updated_ms = max(site.updated_ms, reading.ts_ms)
        self._now_ms = max(self._now_ms, reading.ts_ms)
        cfg = self._lookup.get(DaqiRule, reading.subject)
        return self._evaluate(reading, site, cfg) if cfg.enabled else []

    @staticmethod
    def _complete(running: _RunningMean, site: _Site, cfg: DaqiRule) -> bool:
        return bool(len(running)) and running.coverage(site.declared_interval_ms) >= cfg.min_coverage - 1e-9

    def _current(self, site: _Site, cfg: DaqiRule, now_ms: int) -> list[tuple[str, _RunningMean]]:
        """The pollutants whose readings cover enough of their period up to ``now_ms`` (older ones trimmed)."""
        current = []
        for metric, running in site.means.items():
            running.trim(now_ms)
            if self._complete(running, site, cfg):
                current.append((metric, running))
        return current

    def _levels(self, site: _Site, cfg: DaqiRule, now_ms: int) -> list[PollutantLevel]:
        levels = []
        for metric, running in site.means.items():
            running.trim(now_ms)
            label, hours, _ = POLLUTANTS[metric]
            if not len(running):
                levels.append(
                    PollutantLevel(metric, label, hours, None, None, None, False, "no data", 0.0, running.last_ms)
                )
                continue
            mean = running.mean()
            index = daqi_index(metric, mean)
            coverage = running.coverage(site.declared_interval_ms)
            complete = self._complete(running, site, cfg)
            levels.append(
                PollutantLevel(
                    metric, label, hours, round(mean, 1), index, daqi_band(index), complete,
                    "current" if complete else "incomplete", round(coverage, 3), running.last_ms,
                )
            )
        return levels

    def _evaluate(self, reading: Reading, site: _Site, cfg: DaqiRule) -> list[Finding]:
        # Most readings leave the site's band as it was: find the worst (index, metric) first, and build the
        # levels only for a finding.
        current = self._current(site, cfg, site.updated_ms)
        worst_index, worst_metric = max(
            ((daqi_index(metric, running.mean()), metric) for metric, running in current), default=(0, "")
        )
        if not worst_metric:
            return []
        band = daqi_band(worst_index)
        if worst_index >= cfg.alert_from_index:
            site.low_since_ms = None
            if band == site.alerting_band:
                return []
            site.alerting_band = band
            return self._finding(reading, site, cfg, worst_metric, active=True)
        if site.alerting_band is None:
            return []
        if band != "Low":
            # Between Low and the alert level (possible only with alert_from_index above 4): hold.
            return []
        if site.low_since_ms is None:
            site.low_since_ms = reading.ts_ms
        if reading.ts_ms - site.low_since_ms < cfg.clear_after_minutes * MINUTE_MS:
            return []
        site.alerting_band = None
        site.low_since_ms = None
        return self._finding(reading, site, cfg, worst_metric, active=False)

    def _finding(self, reading: Reading, site: _Site, cfg: DaqiRule, worst_metric: str, active: bool) -> list[Finding]:
        all_levels = self._levels(site, cfg, site.updated_ms)
        levels = [lv for lv in all_levels if lv.complete]
        worst = next(lv for lv in levels if lv.metric == worst_metric)
        assert worst.index is not None and worst.band is not None and worst.mean_ugm3 is not None
        name = self._registry.air_sites[reading.subject].name
        tz = zone()
        stopped = [lv for lv in all_levels if lv.status == "no data" and lv.last_reading_ms is not None]
        gaps = [
            text("daqi.no_data", pollutant=lv.label, time=hm(lv.last_reading_ms, tz))
            for lv in stopped if lv.last_reading_ms
        ]
        evidence: dict[str, float | int | str | None] = {
            "index": worst.index,
            "band": worst.band,
            "pollutant": worst.label,
        }
        for level in levels:
            evidence[f"{level.metric}_mean"] = level.mean_ugm3
            evidence[f"{level.metric}_index"] = level.index
        for level in stopped:
            evidence[f"{level.metric}_no_data_since_ms"] = level.last_reading_ms
        if active:
            message = text(
                "daqi", site=name, band=worst.band, index=worst.index, pollutant=worst.label,
                hours=worst.averaging_hours, mean=worst.mean_ugm3, advice=text(f"daqi.advice.{worst.band}"), gaps=gaps,
            )
            severity = cfg.severity_by_band.get(worst.band, cfg.severity) if worst.band != "Low" else "info"
        else:
            message = text(
                "daqi.cleared", site=name, index=worst.index, pollutant=worst.label, hours=worst.averaging_hours,
                mean=worst.mean_ugm3, advice=text("daqi.advice.Low"), gaps=gaps,
            )
            severity = "info"
        finding = Finding(
            rule="daqi",
            audience="street",
            subject=reading.subject,
            severity=severity,
            message=message.english,
            at_ms=reading.ts_ms,
            active=active,
            evidence=evidence,
            device_id=reading.device_id,
            text=message,
        )
        return [finding]

    def air_quality(self) -> list[SiteAirQuality]:
        """The latest index and band per site and pollutant, judged at the engine's latest time: incomplete
        averages are listed but not banded, and a pollutant with nothing in its averaging period is "no data"."""
        result = []
        for site_id, spec in self._registry.air_sites.items():
            site = self._sites.get(site_id)
            if site is None:
                result.append(SiteAirQuality(site_id, spec.name, None, None, 0, ()))
                continue
            levels = self._levels(site, self._lookup.get(DaqiRule, site_id), max(site.updated_ms, self._now_ms))
            complete = [lv.index for lv in levels if lv.complete and lv.index is not None]
            index = max(complete) if complete else None
            result.append(
                SiteAirQuality(
                    site_id,
                    spec.name,
                    index,
                    daqi_band(index) if index is not None else None,
                    site.updated_ms,
                    tuple(sorted(levels, key=lambda lv: lv.metric)),
                )
            )
        return result

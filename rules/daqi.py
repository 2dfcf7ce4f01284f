"""The UK Daily Air Quality Index: running means per pollutant, the band per site, and band-change alerts.

Averaging periods (as the UK index defines them): NO2 the 1-hour mean, PM2.5 and PM10 the running 24-hour
mean, O3 the 8-hour running mean. Readings arrive every few minutes, so each running mean is the mean of the
readings inside its window; a pollutant counts only once its readings span ``min_coverage`` of the window.

Banding of non-integer means: the table's bands are whole µg/m³ (PM2.5 11 → 1, 12 → 2), so a mean is rounded
to the nearest whole µg/m³ first, halves rounding up (11.5 → 12 → index 2; 11.49 → 11 → index 1), and then
looked up. The site's index is the highest over its pollutants.

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
from typing import Any, Literal

from devices.readings import Domain, Reading
from devices.registry import DeviceSpec, Registry
from rules.config import DaqiRule, SectionLookup
from rules.findings import Finding
from rules.localtime import HOUR_MS, MINUTE_MS

Band = Literal["Low", "Moderate", "High", "Very High"]

# metric -> (label, averaging hours, upper bounds of indexes 1..9 in whole µg/m³; above the last is 10)
POLLUTANTS: dict[str, tuple[str, int, tuple[int, ...]]] = {
    "no2_ugm3": ("NO2", 1, (67, 134, 200, 267, 334, 400, 467, 534, 600)),
    "pm2_5_ugm3": ("PM2.5", 24, (11, 23, 35, 41, 47, 53, 58, 64, 70)),
    "pm10_ugm3": ("PM10", 24, (16, 33, 50, 58, 66, 75, 83, 91, 100)),
    "o3_ugm3": ("O3", 8, (33, 66, 100, 120, 140, 160, 187, 213, 240)),
}

# Our own plain-English summary of what the UK health advice means for each band.
HEALTH_MESSAGES: dict[Band, str] = {
    "Low": "Air pollution is low: everyone can carry on with outdoor activities as usual.",
    "Moderate": (
        "Air pollution is moderate. Most people need not change anything. People with heart or lung "
        "conditions, and older people, who notice symptoms should think about doing less strenuous "
        "activity, especially outdoors."
    ),
    "High": (
        "Air pollution is high. Anyone with sore eyes, a cough or a sore throat should think about doing less "
        "outdoors. People with heart or lung conditions, and older people, should cut down on strenuous "
        "activity, especially outdoors; people with asthma may need their reliever inhaler more often."
    ),
    "Very High": (
        "Air pollution is very high. Everyone should cut down on strenuous activity outdoors, especially with "
        "a cough or sore throat. People with heart or lung conditions, and older people, should avoid "
        "strenuous activity, and people with asthma may need their reliever inhaler more often."
    ),
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
    """One pollutant's running mean at a site and its index."""

    metric: str
    label: str
    averaging_hours: int
    mean_ugm3: float
    index: int
    band: Band
    complete: bool  # the readings span enough of the averaging period to count towards the site's index


@dataclass(frozen=True, slots=True)
class SiteAirQuality:
    site_id: str
    name: str
    index: int | None
    band: Band | None
    updated_ms: int
    pollutants: tuple[PollutantLevel, ...]


class _RunningMean:
    """The mean of the readings of the last ``window_ms``, in arrival order.

    Times and values are kept in two flat arrays (16 bytes a reading) rather than a deque of (time, value)
    tuples (about 100): a site keeps a day of readings for each of its pollutants. Readings that have left the
    window are skipped by ``_head`` and cut off in one go once they are half of the arrays, so dropping the
    oldest reading does not move the whole day's arrays on every reading.
    """

    __slots__ = ("_head", "_times", "_values", "total", "window_ms")

    def __init__(self, window_ms: int) -> None:
        self.window_ms = window_ms
        self._times: array[int] = array("q")
        self._values: array[float] = array("d")
        self._head = 0  # index of the oldest reading still in the window
        self.total = 0.0

    def __len__(self) -> int:
        return len(self._times) - self._head

    def add(self, ts_ms: int, value: float) -> None:
        times, values = self._times, self._values
        times.append(ts_ms)
        values.append(value)
        self.total += value
        head = self._head
        while head < len(times) and times[head] <= ts_ms - self.window_ms:
            self.total -= values[head]
            head += 1
        if 2 * head >= len(times):
            del times[:head], values[:head]
            head = 0
        self._head = head
        if len(self) == 1:
            self.total = value  # re-anchor the sum so float error cannot accumulate over months

    def mean(self) -> float:
        return self.total / len(self)

    def span_ms(self) -> int:
        return self._times[-1] - self._times[self._head] if len(self) else 0


@dataclass(slots=True)
class _Site:
    means: dict[str, _RunningMean] = field(default_factory=dict)
    updated_ms: int = 0
    alerting_band: Band | None = None
    low_since_ms: int | None = None


class DaqiRules:
    """DAQI for every air site in the registry."""

    domains: frozenset[Domain] = frozenset({"air"})

    def __init__(self, registry: Registry, lookup: SectionLookup) -> None:
        self._registry = registry
        self._lookup = lookup
        self._sites: dict[str, _Site] = {}

    def start(self, now_ms: int) -> None:
        return None

    def state(self) -> dict[str, Any]:
        """Every site's running means and band (``placesense.evaluation_state``): without them, a restart would
        show no band until the 1-, 8- and 24-hour windows filled again."""
        return {"sites": self._sites}

    def restore(self, state: Mapping[str, Any]) -> None:
        self._sites.update({site: kept for site, kept in state["sites"].items() if site in self._registry.air_sites})

    def has_site(self, site_id: str) -> bool:
        return site_id in self._sites

    def forget(self, subject: str) -> None:
        self._sites.pop(subject, None)

    def on_time(self, now_ms: int) -> list[Finding]:
        return []

    def on_reading(self, reading: Reading, device: DeviceSpec) -> list[Finding]:
        if reading.subject not in self._registry.air_sites:
            return []
        present = [m for m in POLLUTANTS if m in reading.metrics]
        if not present:
            return []
        site = self._sites.setdefault(reading.subject, _Site())
        for metric in present:
            running = site.means.get(metric)
            if running is None:
                running = site.means[metric] = _RunningMean(POLLUTANTS[metric][1] * HOUR_MS)
            running.add(reading.ts_ms, reading.metrics[metric])
        site.updated_ms = max(site.updated_ms, reading.ts_ms)
        cfg = self._lookup.get(DaqiRule, reading.subject)
        return self._evaluate(reading, site, cfg) if cfg.enabled else []

    @staticmethod
    def _complete(running: _RunningMean, cfg: DaqiRule) -> bool:
        # Readings are minutes apart; a window with readings spanning most of it is a fair mean.
        return running.span_ms() >= cfg.min_coverage * running.window_ms - 10 * MINUTE_MS

    def _levels(self, site: _Site, cfg: DaqiRule) -> list[PollutantLevel]:
        levels = []
        for metric, running in site.means.items():
            if not len(running):
                continue
            label, hours, _ = POLLUTANTS[metric]
            mean = running.mean()
            index = daqi_index(metric, mean)
            complete = self._complete(running, cfg)
            levels.append(PollutantLevel(metric, label, hours, round(mean, 1), index, daqi_band(index), complete))
        return levels

    def _evaluate(self, reading: Reading, site: _Site, cfg: DaqiRule) -> list[Finding]:
        # Most readings leave the site's band as it was: find the worst (index, metric) first, and build the
        # levels only for a finding.
        worst_index, worst_metric = max(
            (
                (daqi_index(metric, running.mean()), metric)
                for metric, running in site.means.items()
                if len(running) and self._complete(running, cfg)
            ),
            default=(0, ""),
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
        levels = [lv for lv in self._levels(site, cfg) if lv.complete]
        worst = next(lv for lv in levels if lv.metric == worst_metric)
        name = self._registry.air_sites[reading.subject].name
        period = "1-hour" if worst.averaging_hours == 1 else f"{worst.averaging_hours}-hour"
        evidence: dict[str, float | int | str | None] = {
            "index": worst.index,
            "band": worst.band,
            "pollutant": worst.label,
        }
        for level in levels:
            evidence[f"{level.metric}_mean"] = level.mean_ugm3
            evidence[f"{level.metric}_index"] = level.index
        if active:
            message = (
                f"Air quality at {name} is {worst.band} (index {worst.index} of 10): {worst.label} "
                f"{period} mean {worst.mean_ugm3:.0f} µg/m³. {HEALTH_MESSAGES[worst.band]}"
            )
            severity = cfg.severity_by_band.get(worst.band, cfg.severity) if worst.band != "Low" else "info"
        else:
            message = (
                f"Air quality at {name} is back to Low (index {worst.index}): highest is {worst.label} "
                f"{period} mean {worst.mean_ugm3:.0f} µg/m³. {HEALTH_MESSAGES['Low']}"
            )
            severity = "info"
        finding = Finding(
            rule="daqi",
            audience="street",
            subject=reading.subject,
            severity=severity,
            message=message,
            at_ms=reading.ts_ms,
            active=active,
            evidence=evidence,
            device_id=reading.device_id,
        )
        return [finding]

    def air_quality(self) -> list[SiteAirQuality]:
        """The latest index and band per site and pollutant (incomplete averages are listed but not banded)."""
        result = []
        for site_id, spec in self._registry.air_sites.items():
            site = self._sites.get(site_id)
            if site is None:
                result.append(SiteAirQuality(site_id, spec.name, None, None, 0, ()))
                continue
            levels = self._levels(site, self._lookup.get(DaqiRule, site_id))
            complete = [lv.index for lv in levels if lv.complete]
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

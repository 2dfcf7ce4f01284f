"""``placesense evaluate --street DIR``: DAQI from an hourly reference station, hour by hour, against DEFRA's method.

The air set (``DIR/openair_marylebone``, a year of hourly means) is replayed through
``placesense.tools.evaluate.street_replay.StreetReplay`` with the default rules: one reading per hour holding the
channels that have
a value (a missing channel is left out, as the decoders' per-metric dead letters do). After each hour the
pollutant levels placesense shows as current (``air_quality()``) are compared with an independent computation of
DEFRA's method written here from the published rules, sharing no code with ``rules.daqi``:

- NO2: the hour's mean itself; PM2.5 and PM10: the mean of the last 24 hourly means, valid with at least 18 of
  them (75 % data capture); O3: the mean of the last 8 hourly means, valid with at least 6;
- each valid mean rounded to whole µg/m³ (halves up) and looked up in the index table; the site's index is the
  highest over its valid pollutants; a pollutant without a valid mean has no index (a stopped analyser).

Counted: hours on which the site index differs, disagreements per pollutant (including a band shown while DEFRA's
method has none: a stale value), DAQI alert changes, and offline/online changes of the hourly device.

This module only measures; it must not change how the rules decide.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from placesense.basics.timeunits import HOUR_MS
from placesense.tools.evaluate.street_replay import AirRecord, StreetReplay, air_registry, load_air, reading

SITE, DEVICE = "marylebone-road", "aurn-my1"
# metric -> (hours averaged, hours needed (75 %), upper bound of each of indexes 1..9 in whole µg/m³)
DEFRA_TABLE: dict[str, tuple[int, int, tuple[int, ...]]] = {
    "no2_ugm3": (1, 1, (67, 134, 200, 267, 334, 400, 467, 534, 600)),
    "pm2_5_ugm3": (24, 18, (11, 23, 35, 41, 47, 53, 58, 64, 70)),
    "pm10_ugm3": (24, 18, (16, 33, 50, 58, 66, 75, 83, 91, 100)),
    "o3_ugm3": (8, 6, (33, 66, 100, 120, 140, 160, 187, 213, 240)),
}


def defra_index(metric: str, mean: float) -> int:
    whole = int(mean + 0.5) if mean >= 0 else 0
    for index, upper in enumerate(DEFRA_TABLE[metric][2], start=1):
        if whole <= upper:
            return index
    return 10


def defra_reference(record: AirRecord) -> list[dict[str, int]]:
    """Per hour, each pollutant's DEFRA index where its mean is valid (absent where it is not)."""
    out: list[dict[str, int]] = []
    for hour in range(len(record.times)):
        indexes: dict[str, int] = {}
        for metric, (hours, needed, _) in DEFRA_TABLE.items():
            window = [v for v in record.metrics[metric][max(0, hour - hours + 1) : hour + 1] if v is not None]
            if len(window) >= needed:
                indexes[metric] = defra_index(metric, sum(window) / len(window))
        out.append(indexes)
    return out


def shown_current(replay: StreetReplay) -> tuple[int | None, dict[str, int]]:
    """The site index and the per-pollutant indexes placesense shows as current (complete, not stale)."""
    for site in replay.core.air_quality():
        if site.site_id != SITE:
            continue
        current = {
            p.metric: p.index
            for p in site.pollutants
            if p.complete and p.index is not None and getattr(p, "status", "current") == "current"
        }
        return site.index, current
    return None, {}


def evaluate_air(folder: Path, device_rules: dict[str, Any] | None = None) -> dict[str, Any]:
    record = load_air(folder)
    reference = defra_reference(record)
    site_disagree = 0
    by_metric: dict[str, int] = defaultdict(int)
    stale_shown: dict[str, int] = defaultdict(int)
    missing_shown: dict[str, int] = defaultdict(int)
    moderate_hours = 0
    with StreetReplay(air_registry(SITE, DEVICE, device_rules)) as replay:
        for hour, ts in enumerate(record.times):
            metrics = {m: v for m, vs in record.metrics.items() if (v := vs[hour]) is not None}
            # The hourly mean of the hour starting at ``ts`` is published when the hour ends.
            published = ts + HOUR_MS
            replay.batch([reading("air", DEVICE, SITE, published, metrics)] if metrics else [], published)
            site_index, shown = shown_current(replay)
            expected = reference[hour]
            expected_site = max(expected.values(), default=None)
            moderate_hours += expected_site is not None and expected_site >= 4
            site_disagree += site_index != expected_site
            for metric in DEFRA_TABLE:
                if shown.get(metric) != expected.get(metric):
                    by_metric[metric] += 1
                    if metric in shown and metric not in expected:
                        stale_shown[metric] += 1
                    if metric in expected and metric not in shown:
                        missing_shown[metric] += 1
        changes = replay.log.changes
    daqi = [c for c in changes if c[2] == "daqi"]
    offline = [c for c in changes if c[2] == "device_offline"]
    return {
        "hours": len(record.times),
        "hours_site_index_disagrees": site_disagree,
        "hours_disagree_by_pollutant": dict(sorted(by_metric.items())),
        "hours_band_shown_without_valid_mean": dict(sorted(stale_shown.items())),
        "hours_valid_mean_not_banded": dict(sorted(missing_shown.items())),
        "defra_moderate_or_worse_hours": moderate_hours,
        "daqi_alerts_opened": sum(1 for c in daqi if c[1] == "opened"),
        "daqi_alert_changes": len(daqi),
        "offline_alert_changes": len(offline),
    }

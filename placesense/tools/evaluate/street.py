"""``placesense evaluate --street DIR``: the watering forecast, sensor faults and alert budget on real soil probes.

The soil set (``DIR/simpact_soil``) is replayed hour by hour through
``placesense.tools.evaluate.street_replay.StreetReplay`` — the
rules and detectors serve runs, on the event clock, with findings applied to alerts — one flowerbed per probe,
each bed's ``dry_below_pct`` at the 25th percentile of its own record (probes read in ranges of their own, so a
fixed 25 % would make most beds "dry" for months). Then:

- **announcements**: each "will need water within a day" (a bed entering the "soon" level); one *comes true*
  when the probe reads below the bed's threshold within 24 h of it. Announcements less than 6 h apart on the same
  bed are also merged into *episodes* (an episode comes true when one of its announcements does).
- **crossings**: a probe going below its threshold once per drying cycle: the first reading below it after the
  probe was at least a point above it (re-wetted), so a settled bed wobbling around its threshold is one
  crossing, not one a day. A crossing is *announced 12 h ahead* when the bed was on the list (soon or now) for
  the whole 12 h before it. Crossings after a day of drying, and those less than 12 h after the probe was a
  point above its threshold (wetted inside the 12 h: a wetting clears a listing), are also counted apart.
- **flapping**: announcements withdrawn ("no longer needs water") although the moisture had not risen by a
  point since — the forecast changed its mind, not the bed.
- **forecastability** (``placesense.tools.evaluate.forecastability``): how close the rule's drying forecast
  comes to the actual crossing time at each hour of a dry spell with a day of drying behind it, whatever the
  announcement bar.
- **the morning list**: the watering list at 07:00 each day; its "soon" rows that came true within 24 h.
- **faults**: fault alerts (``sensor_fault`` and the detectors' ``sensor_anomaly_*``) opened per probe-month,
  with the probes the owners judged failed (none in this set) caught or not.
- **budget**: street alert changes (opened, updated, severity raised, resolved) a day per 30 beds.
- **transplanted faults**: the owners judged no probe of this set failed, so five probes get a real failure
  pattern from day 21 (stuck at one value; dead, reading 0.3–0.7 %; falling to 0.1 % every few days; still
  drifting down when the park is watered; erratic ±3 points), and the fault alerts on those and on the eight
  untouched probes are counted. This is a labelled scenario on real backgrounds, reported apart from the rest.

This module only measures; it must not change how the rules decide.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from placesense.basics.findings import Finding
from placesense.basics.timeunits import DAY_MS, HOUR_MS
from placesense.tools.evaluate.forecastability import forecastability
from placesense.tools.evaluate.street_replay import SoilRecord, StreetReplay, load_soil, reading, soil_registry

DRY_PERCENTILE = 25
TRUE_WITHIN_MS = 24 * HOUR_MS
EPISODE_GAP_MS = 6 * HOUR_MS
LEAD_MS = 12 * HOUR_MS
REWETTED_PCT = 1.0
MORNING_HOUR_UTC = 7
FAULT_RULES = ("sensor_fault", "sensor_anomaly")


def percentile(values: Sequence[float], share: int) -> float:
    ordered = sorted(values)
    return statistics.quantiles(ordered, n=100, method="inclusive")[share - 1]


def level_of(finding: Finding) -> str | None:
    """'now', 'soon' or None (cleared) for a needs_water finding."""
    if not finding.active:
        return None
    status = finding.evidence.get("status")
    if isinstance(status, str):
        return status
    return "now" if "needs water now" in finding.message else "soon"


@dataclass
class BedTimeline:
    """One bed's levels over time, from its findings: (time, level) at each change."""

    changes: list[tuple[int, str | None]] = field(default_factory=list)

    def level_at(self, ts_ms: int) -> str | None:
        level: str | None = None
        for at, new in self.changes:
            if at > ts_ms:
                break
            level = new
        return level

    def listed_throughout(self, start_ms: int, end_ms: int) -> bool:
        if self.level_at(start_ms) is None:
            return False
        return all(new is not None for at, new in self.changes if start_ms < at < end_ms)


def crossings(times: Sequence[int], values: Sequence[float | None], dry: float) -> list[int]:
    found: list[int] = []
    wet = False
    for ts, value in zip(times, values, strict=True):
        if value is None:
            continue
        if value >= dry + REWETTED_PCT:
            wet = True
        elif value < dry and wet:
            found.append(ts)
            wet = False
    return found


def comes_true(times: Sequence[int], values: Sequence[float | None], dry: float, at_ms: int) -> bool:
    return any(
        v is not None and v < dry for t, v in zip(times, values, strict=True) if at_ms < t <= at_ms + TRUE_WITHIN_MS
    )


def evaluate_soil(folder: Path) -> dict[str, Any]:
    record = load_soil(folder)
    dry = {p: percentile([v for v in vs if v is not None], DRY_PERCENTILE) for p, vs in record.probes.items()}
    registry = soil_registry(record.probes, dry)
    bed_of = {p: f"bed-{p.lower()}" for p in record.probes}
    morning: list[tuple[int, str, str]] = []  # (time, bed, status)
    with StreetReplay(registry) as replay:
        for index, ts in enumerate(record.times):
            batch = [
                reading("soil", f"soil-{p.lower()}", bed_of[p], ts, {"soil_moisture_pct": value})
                for p, vs in record.probes.items()
                if (value := vs[index]) is not None
            ]
            replay.batch(batch)
            if (ts // HOUR_MS) % 24 == MORNING_HOUR_UTC:
                morning += [(ts, row.bed_id, row.status) for row in replay.core.watering_list(ts)]
        findings, changes = replay.findings, replay.log.changes
    scores = score_soil(record, dry, bed_of, findings, changes, morning)
    scores["forecastability"] = forecastability(record, dry)
    return scores


FAULT_FROM_HOURS = 21 * 24
TRANSPLANTS = ("stuck", "dead", "drops", "unresponsive", "erratic")


def transplant(record: SoilRecord) -> tuple[SoilRecord, dict[str, str]]:
    """The record with five probes failing from day 21 (the first five in name order), and which failed how."""
    probes = dict(record.probes)
    failed: dict[str, str] = {}
    for kind, probe in zip(TRANSPLANTS, sorted(probes), strict=False):
        values = list(probes[probe])
        start = FAULT_FROM_HOURS if kind != "unresponsive" else 10 * 24
        held = values[start - 1]
        assert held is not None
        for hour in range(start, len(values)):
            if kind == "stuck":
                values[hour] = held
            elif kind == "dead":
                values[hour] = (0.3, 0.5, 0.7, 0.4)[hour % 4]
            elif kind == "drops":
                values[hour] = 0.1 if hour % 72 < 2 else values[hour]
            elif kind == "unresponsive":
                values[hour] = round(held - 0.01 * (hour - start), 2)  # keeps drying whatever happens
            elif kind == "erratic" and values[hour] is not None:
                values[hour] = round(max(0.0, (values[hour] or 0.0) + (3.0 if hour % 2 else -3.0)), 2)
        probes[probe] = values
        failed[probe] = kind
    return SoilRecord(record.times, probes), failed


def evaluate_transplanted(folder: Path) -> dict[str, Any]:
    record, failed = transplant(load_soil(folder))
    dry = {p: percentile([v for v in vs if v is not None], DRY_PERCENTILE) for p, vs in record.probes.items()}
    registry = soil_registry(record.probes, dry)
    with StreetReplay(registry) as replay:
        for index, ts in enumerate(record.times):
            replay.batch([
                reading("soil", f"soil-{p.lower()}", f"bed-{p.lower()}", ts, {"soil_moisture_pct": value})
                for p, vs in record.probes.items()
                if (value := vs[index]) is not None
            ])
        changes = replay.log.changes
    start = record.times[0] + 10 * 24 * HOUR_MS
    opened = [c for c in changes if c[1] == "opened" and c[2].startswith(FAULT_RULES) and c[0] >= start]
    caught = {kind: any(c[3] == f"bed-{probe.lower()}" for c in opened) for probe, kind in failed.items()}
    healthy = [c for c in changes if c[1] == "opened" and c[2].startswith(FAULT_RULES)
               and c[3] not in {f"bed-{p.lower()}" for p in failed}]
    days = (record.times[-1] - record.times[0]) / DAY_MS
    return {
        "failed_probes": len(failed),
        "caught": sum(caught.values()),
        "caught_by_kind": caught,
        "alerts_on_failed_probes": sum(1 for c in opened if c[3] in {f"bed-{p.lower()}" for p in failed}),
        "false_alerts_on_healthy_probes": len(healthy),
        "false_per_healthy_probe_month": round(len(healthy) / ((len(record.probes) - len(failed)) * days / 30), 2),
    }


def score_soil(
    record: SoilRecord,
    dry: dict[str, float],
    bed_of: dict[str, str],
    findings: list[Finding],
    changes: list[tuple[int, str, str, str, str]],
    morning: list[tuple[int, str, str]],
) -> dict[str, Any]:
    probe_of = {bed: probe for probe, bed in bed_of.items()}
    times = record.times
    timelines: dict[str, BedTimeline] = defaultdict(BedTimeline)
    announcements: dict[str, list[tuple[int, float]]] = defaultdict(list)
    withdrawn_without_rise = 0
    for finding in findings:
        if finding.rule != "needs_water":
            continue
        timeline = timelines[finding.subject]
        before = timeline.changes[-1][1] if timeline.changes else None
        level = level_of(finding)
        timeline.changes.append((finding.at_ms, level))
        moisture = float(finding.evidence.get("moisture_pct") or 0.0)
        if level == "soon" and before != "soon":
            announcements[finding.subject].append((finding.at_ms, moisture))
        if before == "soon" and level is None and announcements[finding.subject]:
            announced_at, announced_moisture = announcements[finding.subject][-1]
            values = record.probes[probe_of[finding.subject]]
            risen = max(
                (v for t, v in zip(times, values, strict=True) if announced_at <= t <= finding.at_ms and v is not None),
                default=announced_moisture,
            )
            if risen < announced_moisture + 1.0:
                withdrawn_without_rise += 1
    total = true = episodes = episodes_true = 0
    per_bed: dict[str, int] = {}
    for bed, made in announcements.items():
        probe = probe_of[bed]
        values = record.probes[probe]
        per_bed[bed] = len(made)
        outcome = [comes_true(times, values, dry[probe], at) for at, _ in made]
        total += len(made)
        true += sum(outcome)
        last: int | None = None
        for (at, _), ok in zip(made, outcome, strict=True):
            if last is None or at - last >= EPISODE_GAP_MS:
                episodes += 1
                episodes_true += ok
                counted = ok
            elif ok and not counted:
                episodes_true += 1
                counted = True
            last = at
    crossed = caught_12h = caught_6h = caught_at = dried_a_day = dried_a_day_caught = 0
    rewetted_12h = rewetted_12h_caught = 0
    for probe, values in record.probes.items():
        timeline = timelines[bed_of[probe]]
        for ts in crossings(times, values, dry[probe]):
            crossed += 1
            listed = timeline.listed_throughout(ts - LEAD_MS, ts)
            caught_12h += listed
            # Crossings after a day or more of drying since the probe was last re-wetted: the ones a forecast
            # can see 12 h ahead with 12 h of drying behind it (after a small watering that drains back below
            # the threshold within hours, no forecast can).
            wet = [t for t, v in zip(times, values, strict=True) if t < ts and v is not None and v >= dry[probe] + 1]
            if wet and ts - wet[-1] >= 24 * HOUR_MS:
                dried_a_day += 1
                dried_a_day_caught += listed
            # Crossings less than 12 h after the probe was a point above its threshold: the bed was wetted inside
            # the 12 h a listing would have to span, and a wetting clears a listing, so these are listed 12 h
            # ahead only when the watering was too small to clear a bed that already needed water.
            if wet and ts - wet[-1] < LEAD_MS:
                rewetted_12h += 1
                rewetted_12h_caught += listed
            caught_6h += timeline.listed_throughout(ts - 6 * HOUR_MS, ts)
            caught_at += timeline.level_at(ts + HOUR_MS) is not None
    soon_morning = [(t, bed) for t, bed, status in morning if status == "soon"]
    morning_true = sum(
        comes_true(times, record.probes[probe_of[bed]], dry[probe_of[bed]], t) for t, bed in soon_morning
    )
    days = (times[-1] - times[0]) / DAY_MS
    months = len(record.probes) * days / 30.0
    street = [c for c in changes if not c[2].startswith("device_")]
    fault_opened = [c for c in changes if c[1] == "opened" and c[2].startswith(FAULT_RULES)]
    fault_by_rule: dict[str, int] = defaultdict(int)
    for change in fault_opened:
        fault_by_rule[change[2]] += 1
    return {
        "probes": len(record.probes),
        "days": round(days, 1),
        "watering": {
            "announcements": total,
            "announcements_true": true,
            "precision": round(true / total, 3) if total else None,
            "episodes": episodes,
            "episodes_true": episodes_true,
            "episode_precision": round(episodes_true / episodes, 3) if episodes else None,
            "crossings": crossed,
            "announced_12h_ahead": caught_12h,
            "recall_12h": round(caught_12h / crossed, 3) if crossed else None,
            "crossings_after_a_day_drying": dried_a_day,
            "of_those_announced_12h_ahead": dried_a_day_caught,
            "crossings_within_12h_of_a_wetting": rewetted_12h,
            "of_those_listed_12h_ahead": rewetted_12h_caught,
            "announced_6h_ahead": caught_6h,
            "listed_within_1h_of_crossing": caught_at,
            "withdrawn_without_rise": withdrawn_without_rise,
            "most_announcements_one_bed": max(per_bed.values(), default=0),
            "morning_list_soon": len(soon_morning),
            "morning_list_soon_true": morning_true,
        },
        "faults": {
            "fault_alerts_opened": len(fault_opened),
            "false_per_probe_month": round(len(fault_opened) / months, 2),
            "by_rule": dict(sorted(fault_by_rule.items())),
            "failed_probes_judged_by_owners": 0,
            "examples": [c[4] for c in fault_opened[:5]],
        },
        "alert_changes": len(street),
        "alert_changes_per_day_per_30_beds": round(len(street) / days * 30 / len(record.probes), 1),
    }

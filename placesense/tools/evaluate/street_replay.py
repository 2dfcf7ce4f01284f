"""Replays of real street data through exactly what serve's evaluation process runs, with alerts as a team sees them.

``StreetReplay`` builds a ``placesense.evaluation_core.EvaluationCore`` on the event clock (the rules and
detectors serve's child runs) and a ``placesense.alerts.lifecycle.AlertService`` over a SQLite ``AlertStore`` in a
scratch folder. Readings go in one batch per timestamp, followed by the event clock's time-based checks, as serve's
child does after each batch; every finding is applied to the alerts, and every alert change they cause (opened,
updated, severity raised, resolved) is recorded, so "alert changes a day" counts what a street team would see.
Reminders (escalation) are left out: they depend on whether someone acknowledges.

The loaders read the sets under ``tests/data`` (see their README files). Readings are built only from the
channels that have a value: a missing hour or a sentinel channel is left out of the reading rather than sent,
as the per-metric dead letters of the decoders do (the message's other channels are stored and evaluated).

This module only replays and records; it must not decide anything the rules decide.
"""

from __future__ import annotations

import csv
import gzip
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from devices.readings import Domain, Reading
from devices.registry import Registry
from placesense.alerts.changes import AlertChange
from placesense.alerts.lifecycle import AlertService
from placesense.alerts.store import AlertStore
from placesense.basics.clock import EventClock
from placesense.basics.db import make_engine
from placesense.basics.findings import Finding
from placesense.evaluation_core import EvaluationCore, EvaluationSpec
from rules.config import RulesConfig

SENTINELS = frozenset({-200.0, -999.0, -9999.0})
# DEFRA's conversion of ppb to µg/m³ at 20 °C and 1013 mb.
PPB_TO_UGM3 = {"no2": 1.91, "o3": 2.00}


def epoch_ms(text: str) -> int:
    stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(stamp.timestamp() * 1000)


def read_csv_gz(path: Path) -> list[dict[str, str]]:
    with gzip.open(path, "rt", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def number(text: str | None) -> float | None:
    """A channel's value, or None when it is empty, not a number, or a sentinel."""
    if text is None or not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return None if value in SENTINELS or value != value else value


@dataclass
class SoilRecord:
    """Hourly soil moisture per probe: times (ms) and values (None where the probe sent nothing)."""

    times: list[int]
    probes: dict[str, list[float | None]]


def load_soil(folder: Path) -> SoilRecord:
    rows = read_csv_gz(folder / "vwc_hourly.csv.gz")
    probes = [c for c in rows[0] if c != "timestamp"]
    return SoilRecord(
        times=[epoch_ms(r["timestamp"]) for r in rows],
        probes={p: [number(r[p]) for r in rows] for p in probes},
    )


@dataclass
class AirRecord:
    """Hourly means of one station, in µg/m³, per placesense metric (None where missing)."""

    times: list[int]
    metrics: dict[str, list[float | None]]


def load_air(folder: Path) -> AirRecord:
    rows = read_csv_gz(folder / "2003_hourly.csv.gz")

    def converted(text: str, factor: float) -> float | None:
        value = number(text)
        return None if value is None else round(value * factor, 1)

    return AirRecord(
        times=[epoch_ms(r["timestamp"]) for r in rows],
        metrics={
            "no2_ugm3": [converted(r["no2_ppb"], PPB_TO_UGM3["no2"]) for r in rows],
            "o3_ugm3": [converted(r["o3_ppb"], PPB_TO_UGM3["o3"]) for r in rows],
            "pm10_ugm3": [number(r["pm10_ugm3"]) for r in rows],
            "pm2_5_ugm3": [number(r["pm25_ugm3"]) for r in rows],
        },
    )


@dataclass
class ChangeLog:
    """Every alert change the findings caused, as (time, action, rule, subject, message)."""

    changes: list[tuple[int, str, str, str, str]] = field(default_factory=list)
    # Like the live pages, it sees every change as it happens, quiet hours or not (notifications wait for the
    # quiet hours to end; the alert itself does not).
    live = True

    def publish(self, change: AlertChange) -> None:
        alert = change.alert
        self.changes.append((alert.updated_at_ms, change.action, alert.rule, alert.subject, alert.message))


class StreetReplay:
    """One event-clock evaluation core and its alerts, fed readings in time order."""

    def __init__(self, registry: Registry, rules: RulesConfig | None = None) -> None:
        self._scratch = tempfile.TemporaryDirectory(prefix="placesense-replay-")
        folder = Path(self._scratch.name)
        rules = rules or RulesConfig()
        spec = EvaluationSpec(registry=registry, rules=rules, clock="event", state_dir=folder / "state", log_level=30)
        self.core = EvaluationCore(spec)
        self.log = ChangeLog()
        self.alert_clock = EventClock()
        self.store = AlertStore(make_engine(f"sqlite:///{folder / 'alerts.db'}"))
        self.alerts = AlertService(self.store, self.alert_clock, rules, publishers=[self.log])
        self.findings: list[Finding] = []

    def close(self) -> None:
        self.store.engine.dispose()
        self._scratch.cleanup()

    def __enter__(self) -> StreetReplay:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def batch(self, readings: Iterable[Reading], now_ms: int | None = None) -> list[Finding]:
        """Evaluate one batch (as serve's child does: the readings, then the event clock's timers). ``now_ms``
        moves the event clock on when the batch is empty (other devices of a fleet would have moved it)."""
        batch = list(readings)
        rows = [tuple(r) for r in batch]
        if now_ms is not None:
            self.core.clock.observe(now_ms)
        findings = self.core.readings(rows)
        findings += self.core.tick()
        self.alert_clock.observe(max([r.ts_ms for r in batch] + [now_ms or 0]))
        self.alerts.apply_all(findings)
        self.findings += findings
        return findings


def reading(domain: Domain, device: str, subject: str, ts_ms: int, metrics: Mapping[str, float]) -> Reading:
    return Reading(domain, device, subject, None, ts_ms, dict(metrics), None, None, "canonical", ts_ms)


def soil_registry(probes: Iterable[str], dry_below: Mapping[str, float]) -> Registry:
    """One flowerbed per probe (the probe is the bed's only sensor), spread on a 20 m grid."""
    beds, devices = [], []
    for number_, probe in enumerate(sorted(probes)):
        bed = f"bed-{probe.lower()}"
        beds.append({
            "id": bed, "name": f"Bed {probe}", "lat": 51.5 + (number_ // 5) * 0.0002,
            "lon": -0.1 + (number_ % 5) * 0.0003, "dry_below_pct": round(dry_below[probe], 1),
        })
        devices.append({"id": f"soil-{probe.lower()}", "domain": "soil", "subject": bed, "kind": "soil"})
    return Registry.from_data({"flowerbeds": beds, "devices": devices})


def air_registry(site: str, device: str, device_rules: dict[str, Any] | None = None) -> Registry:
    spec: dict[str, Any] = {"id": device, "domain": "air", "subject": site, "kind": "air"}
    if device_rules:
        spec["rules"] = device_rules
    return Registry.from_data({
        "air_sites": [{"id": site, "name": "Marylebone Road", "lat": 51.5225, "lon": -0.1546}],
        "devices": [spec],
    })

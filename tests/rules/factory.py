"""Builders for rule tests: a small registry, readings at local (Europe/London) times, an engine on an event clock."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from devices.readings import Domain, Reading
from devices.registry import Registry
from placesense.basics.clock import EventClock
from placesense.basics.findings import Finding
from rules.config import RulesConfig, rules_from_data
from rules.engine import RuleEngine

LONDON = ZoneInfo("Europe/London")
MINUTE = 60_000
HOUR = 3_600_000
DAY = 86_400_000
HOME = "h-0a1b2c"

HOME_DEVICES = [
    ("pir-bedroom", "motion", "bedroom"),
    ("pir-bathroom", "motion", "bathroom"),
    ("pir-kitchen", "motion", "kitchen"),
    ("pir-living", "motion", "living_room"),
    ("pir-hallway", "motion", "hallway"),
    ("door-front", "front_door", "hallway"),
    ("door-fridge", "fridge_door", "kitchen"),
    ("bed", "bed", "bedroom"),
    ("plug-kettle", "kettle", "kitchen"),
    ("climate", "climate", "living_room"),
    ("climate-bed", "climate", "bedroom"),
    ("help", "help_button", "living_room"),
]


def registry(beds: int = 3, sites: int = 1, device_rules: dict[str, dict[str, Any]] | None = None) -> Registry:
    devices: list[dict[str, Any]] = [
        {"id": f"{HOME}-{short}", "domain": "home", "subject": HOME, "kind": kind, "room": room}
        for short, kind, room in HOME_DEVICES
    ]
    devices += [{"id": f"bed-{i}-soil", "domain": "soil", "subject": f"bed-{i}", "kind": "soil"} for i in range(beds)]
    devices += [{"id": f"air-{i}-aq", "domain": "air", "subject": f"air-{i}", "kind": "air"} for i in range(sites)]
    for device in devices:
        device["rules"] = (device_rules or {}).get(device["id"], {})
    return Registry.from_data(
        {
            "homes": [{"id": HOME}],
            "flowerbeds": [{"id": f"bed-{i}", "name": f"Bed {i}", "lat": 53.0, "lon": -3.0} for i in range(beds)],
            "air_sites": [{"id": f"air-{i}", "name": f"Site {i}", "lat": 53.0, "lon": -3.0} for i in range(sites)],
            "devices": devices,
        }
    )


def local_ms(day: int, hh: int, mm: int = 0, month: int = 1) -> int:
    """Epoch ms of hh:mm London time on ``day`` of ``month`` 2026."""
    return int(datetime(2026, month, day, hh, mm, tzinfo=LONDON).timestamp() * 1000)


def local_hm(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=LONDON).strftime("%H:%M")


def home_reading(short: str, ts_ms: int, battery_pct: float | None = None, **metrics: float) -> Reading:
    room = next(r for s, _, r in HOME_DEVICES if s == short)
    return _reading("home", f"{HOME}-{short}", HOME, room, ts_ms, metrics, battery_pct)


def soil_reading(bed: int, ts_ms: int, moisture: float, battery_pct: float | None = None) -> Reading:
    return _reading("soil", f"bed-{bed}-soil", f"bed-{bed}", None, ts_ms, {"soil_moisture_pct": moisture}, battery_pct)


def air_reading(site: int, ts_ms: int, **metrics: float) -> Reading:
    return _reading("air", f"air-{site}-aq", f"air-{site}", None, ts_ms, metrics, None)


def _reading(
    domain: Domain,
    device: str,
    subject: str,
    room: str | None,
    ts: int,
    metrics: dict[str, float],
    battery: float | None,
) -> Reading:
    return Reading(
        domain=domain, device_id=device, subject=subject, room=room, ts_ms=ts, metrics=metrics, battery_pct=battery
    )


def engine(config: dict[str, Any] | RulesConfig | None = None, reg: Registry | None = None) -> RuleEngine:
    rules = config if isinstance(config, RulesConfig) else rules_from_data(config or {})
    return RuleEngine(reg or registry(), rules, EventClock())


def only_rules(rules: set[str]) -> dict[str, Any]:
    """A config that disables every rule section except ``rules`` (section names)."""
    from rules.config import SECTIONS

    return {name: {"enabled": name in rules} for name in SECTIONS}


def run(eng: RuleEngine, readings: list[Reading], until_ms: int | None = None) -> list[Finding]:
    findings: list[Finding] = []
    for reading in sorted(readings, key=lambda r: r.ts_ms):
        findings += eng.process(reading)
    if until_ms is not None:
        eng.clock.observe(until_ms)
        findings += eng.tick(until_ms)
    return findings


def of(findings: list[Finding], rule: str) -> list[Finding]:
    return [f for f in findings if f.rule == rule]

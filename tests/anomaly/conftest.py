"""A simulated month of homes, run through one RoutineDetector once per session (it takes a few seconds)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from firmware_sim.anomalies import Injection
from firmware_sim.fleet import build_fleet
from firmware_sim.simulation import generate, ground_truth

from anomaly.routine import RoutineDetector
from devices.readings import Reading
from devices.registry import Registry
from placesense.basics.clock import EventClock
from placesense.basics.findings import Finding
from placesense.basics.timeunits import DAY_MS
from placesense.tools.evaluate.simulated import START_MS


@dataclass
class RoutineRun:
    registry: Registry
    detector: RoutineDetector
    clock: EventClock
    findings: list[Finding]
    truth: list[Injection]
    end_ms: int


def readings(registry: Registry, start_ms: int, end_ms: int, seed: int, anomalies: list[str]) -> Iterator[Reading]:
    for device, m in generate(registry, start_ms, end_ms, seed=seed, anomalies=anomalies):
        yield Reading(
            domain=device.domain, device_id=device.id, subject=device.subject, room=device.room, ts_ms=m.ts_ms,
            metrics={k: float(v) for k, v in m.metrics.items()},
        )


def feed(detector: RoutineDetector, clock: EventClock, stream: Iterator[Reading], start_ms: int) -> list[Finding]:
    findings: list[Finding] = []
    next_tick = start_ms + 300_000
    for reading in stream:
        while reading.ts_ms >= next_tick:
            clock.observe(next_tick)
            findings += detector.tick(next_tick)
            next_tick += 300_000
        clock.observe(reading.ts_ms)
        findings += detector.process(reading)
    return findings


def run_homes(days: int, anomalies: list[str], seed: int = 7, homes: int = 3) -> RoutineRun:
    registry = build_fleet(homes=homes, beds=0, air_sites=0, seed=seed, formats="canonical")
    end_ms = START_MS + days * DAY_MS
    clock = EventClock(START_MS)
    detector = RoutineDetector(registry, clock)
    findings = feed(detector, clock, readings(registry, START_MS, end_ms, seed, anomalies), START_MS)
    truth = ground_truth(registry, START_MS, end_ms, seed=seed, anomalies=anomalies)
    return RoutineRun(registry, detector, clock, findings, truth, end_ms)


@pytest.fixture(scope="session")
def normal_month() -> RoutineRun:
    return run_homes(days=44, anomalies=[])


@pytest.fixture(scope="session")
def changed_homes() -> RoutineRun:
    """Six homes, each with one injected change after a 14-day warm-up."""
    registry = build_fleet(homes=6, beds=0, air_sites=0, seed=11, formats="canonical")
    homes = sorted(registry.homes)
    kinds = ["late_wakeup", "night_wandering", "no_movement", "cold_home", "reduced_kitchen_use",
             "more_bathroom_visits"]
    anomalies = [f"{kind}:{home}@18" for kind, home in zip(kinds, homes, strict=True)]
    return run_homes(days=23, anomalies=anomalies, seed=11, homes=6)


@pytest.fixture(scope="session")
def declining_home() -> RoutineRun:
    """Three homes for 52 days; in the first a gradual decline starts on day 38 and goes on to the end."""
    registry = build_fleet(homes=3, beds=0, air_sites=0, seed=5, formats="canonical")
    first = sorted(registry.homes)[0]
    return run_homes(days=52, anomalies=[f"gradual_decline:{first}@38"], seed=5, homes=3)


@pytest.fixture(scope="session")
def infection_home() -> RoutineRun:
    """Two homes for 26 days; in the first, more bathroom visits for three days from day 19 (a urinary
    infection) that no single day shows clearly enough for the check that runs during the day."""
    registry = build_fleet(homes=2, beds=0, air_sites=0, seed=7, formats="canonical")
    first = sorted(registry.homes)[0]
    return run_homes(days=26, anomalies=[f"more_bathroom_visits:{first}@19"], seed=7, homes=2)

"""Shared simulated runs for the firmware_sim tests: built once per session because a month takes a second."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from firmware_sim.firmware import SimEvent
from firmware_sim.fleet import build_fleet
from firmware_sim.simulation import Simulation
from firmware_sim.timebase import parse_rfc3339

from devices.registry import Registry
from placesense.basics.timeunits import DAY_MS

ALL_FORMATS = ("canonical", "zigbee2mqtt", "ttn", "chirpstack")
# A Monday in late spring: warm enough for beds to dry, cool enough at night for heating to matter.
START_MS = parse_rfc3339("2024-05-06T00:00:00Z")
DAYS = 28


@dataclass
class Run:
    registry: Registry
    simulation: Simulation
    events: list[SimEvent]

    @property
    def homes(self) -> list[str]:
        return list(self.registry.homes)


def _run(anomalies: list[str], homes: int, beds: int, air_sites: int, seed: int) -> Run:
    registry = build_fleet(homes, beds, air_sites, seed=seed, formats="mix", encoders=ALL_FORMATS)
    simulation = Simulation(registry, START_MS, START_MS + DAYS * DAY_MS, seed=seed, anomalies=anomalies)
    return Run(registry, simulation, list(simulation.events()))


@pytest.fixture(scope="session")
def normal_run() -> Run:
    """Four weeks of a small mixed fleet with nothing injected."""
    return _run([], homes=3, beds=4, air_sites=2, seed=7)


@pytest.fixture(scope="session")
def anomaly_run() -> Run:
    """Four weeks with every anomaly type, spread so that no two touch the same home at once."""
    registry = build_fleet(5, 3, 2, seed=11, formats="mix", encoders=ALL_FORMATS)
    a, b, c, d, _normal = list(registry.homes)
    anomalies = [
        f"late_wakeup:{a}@10",
        f"night_wandering:{a}@13",
        f"no_movement:{a}@17",
        f"cold_home:{a}@21",
        f"more_bathroom_visits:{b}@10",
        f"reduced_kitchen_use:{b}@19",
        f"gradual_decline:{c}@2",
        f"stuck_sensor:{d}-climate@12",
        "bed_drying_out:bed-001@9",
        "stuck_sensor:bed-002-soil@14",
        "pollution_episode:air-01@15",
        f"device_offline:{d}-pir-kitchen@20",
        "device_offline:bed-003-soil@6",
    ]
    simulation = Simulation(registry, START_MS, START_MS + DAYS * DAY_MS, seed=11, anomalies=anomalies)
    return Run(registry, simulation, list(simulation.events()))

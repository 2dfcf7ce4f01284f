"""firmware_sim: simulated device firmware for placesense — residents' routines, drying flowerbeds, street air.

The public API, for the rules, anomaly and ingest rooms and their tests::

    from firmware_sim import build_fleet, generate, ground_truth, publish, Simulation

    registry = build_fleet(homes=3, beds=5, air_sites=2, seed=1, formats="mix")   # -> devices.registry.Registry
    stream = generate(registry, start_ms, end_ms, seed=1, anomalies=["late_wakeup@9", "cold_home"])
    for device, measurement in stream:            # (DeviceSpec, SimMeasurement), in publish order
        ...
    truth = ground_truth(registry, start_ms, end_ms, seed=1, anomalies=["late_wakeup@9", "cold_home"])

``generate`` is pure and deterministic: the same arguments give the same stream. ``ground_truth`` lists the
injected anomalies (``Injection``: type, subject, device, start_ms, end_ms, details; ``.to_json()`` gives the
RFC 3339 record). ``Simulation`` offers both at once plus ``events()`` with each message's broker-arrival
time (``SimEvent.send_ms``), which ``publish(events, devices, mqtt_url, speed=...) -> SimResult`` paces and
puts on MQTT. Anomalies are ``AnomalyRequest``s or ``"TYPE[:SUBJECT][@DAY]"`` strings (``ANOMALY_TYPES``).

Names load lazily so that ``placesense --help`` does not import pydantic or paho. This package only simulates
devices; it must not read from the broker, InfluxDB or the service.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from firmware_sim.anomalies import (
        ANOMALY_TYPES,
        AnomalyRequest,
        AnomalyType,
        Injection,
        parse_anomaly,
        random_requests,
        read_ground_truth,
        write_ground_truth,
    )
    from firmware_sim.encoders import SimMeasurement
    from firmware_sim.firmware import SimEvent
    from firmware_sim.fleet import build_fleet, write_registry
    from firmware_sim.publisher import PublishError, SimResult, publish
    from firmware_sim.simulation import Quirks, Simulation, generate, ground_truth

_HOME: dict[str, str] = {
    "ANOMALY_TYPES": "firmware_sim.anomalies",
    "AnomalyRequest": "firmware_sim.anomalies",
    "AnomalyType": "firmware_sim.anomalies",
    "Injection": "firmware_sim.anomalies",
    "parse_anomaly": "firmware_sim.anomalies",
    "random_requests": "firmware_sim.anomalies",
    "read_ground_truth": "firmware_sim.anomalies",
    "write_ground_truth": "firmware_sim.anomalies",
    "SimMeasurement": "firmware_sim.encoders",
    "SimEvent": "firmware_sim.firmware",
    "build_fleet": "firmware_sim.fleet",
    "write_registry": "firmware_sim.fleet",
    "PublishError": "firmware_sim.publisher",
    "SimResult": "firmware_sim.publisher",
    "publish": "firmware_sim.publisher",
    "Quirks": "firmware_sim.simulation",
    "Simulation": "firmware_sim.simulation",
    "generate": "firmware_sim.simulation",
    "ground_truth": "firmware_sim.simulation",
}

__all__ = [
    "ANOMALY_TYPES",
    "AnomalyRequest",
    "AnomalyType",
    "Injection",
    "PublishError",
    "Quirks",
    "SimEvent",
    "SimMeasurement",
    "SimResult",
    "Simulation",
    "build_fleet",
    "generate",
    "ground_truth",
    "parse_anomaly",
    "publish",
    "random_requests",
    "read_ground_truth",
    "write_ground_truth",
    "write_registry",
]


def __getattr__(name: str) -> Any:
    module_name = _HOME.get(name)
    if module_name is None:
        raise AttributeError(f"module 'firmware_sim' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

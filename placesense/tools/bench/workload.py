"""The benchmark's workload: a registry of simulated devices and the messages they publish.

Everything here is a pure function of (devices, messages, formats, base time, topic prefix), so the bench
process, its publisher and its raw-limit workers each rebuild exactly the same registry and bytes without
shipping megabytes of payloads between processes. Payloads come from ``firmware_sim.encoders``, the same
encoders the simulator uses, so every source format is exercised as it looks on the wire.

Message ``i`` goes to device ``i % devices`` with event time ``base_ms + i``: timestamps are distinct per
device (and globally), which keeps InfluxDB from merging points, and a stored reading's timestamp gives back
the index of the message it came from, so latencies need no side table keyed by device. This module does not
talk to a broker or a database.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from firmware_sim.encoders import ENCODERS, SimMeasurement, encode

from devices.registry import DeviceSpec, Registry

BENCH_FORMATS: tuple[str, ...] = ("canonical", "zigbee2mqtt", "ttn", "chirpstack")
HEAVY_PRESSER = "bench-heavy-presser"  # a help button pressed on half its messages

# What each source format carries in the field: Zigbee for home sensors, LoRaWAN for soil and air,
# the canonical format for all three domains. Each entry is (domain, kind, room, model).
_PLAN: dict[str, tuple[tuple[str, str, str | None, str | None], ...]] = {
    "canonical": (
        ("home", "climate", "living_room", None),
        ("soil", "soil", None, None),
        ("air", "air", None, None),
        ("home", "motion", "kitchen", None),
        ("home", "help_button", "living_room", None),
    ),
    "zigbee2mqtt": (
        ("home", "motion", "bedroom", "aqara-rtcgq11lm"),
        ("home", "front_door", "hallway", "aqara-mccgq11lm"),
        ("home", "climate", "living_room", "aqara-wsdcgq11lm"),
        ("home", "kettle", "kitchen", "tuya-ts011f"),
        ("home", "bed", "bedroom", "sonoff-snzb-06p"),
    ),
    # Raw frm_payload bytes through a vendor codec: the costlier LoRaWAN path.
    "ttn": (("soil", "soil", None, "dragino-se01-lb"),),
    "chirpstack": (
        ("soil", "soil", None, "milesight-em500-smtc"),
        ("air", "air", None, None),
    ),
    # Finding-heavy homes (canonical payloads): help buttons pressed on half their messages and front doors, so
    # nearly every message makes the rules say something. Not in the default mix: the stress test's worst case.
    "care": (
        ("home", "help_button", "hallway", HEAVY_PRESSER),
        ("home", "front_door", "hallway", None),
    ),
}
# What each plan entry publishes as (the registry's format): "care" is canonical payloads with a heavier load.
_WIRE_FORMAT = {"care": "canonical"}

# Devices of one home share a subject, as a real home's ten sensors do.
_DEVICES_PER_HOME = 10


def parse_formats(text: str) -> tuple[str, ...]:
    """``"canonical,ttn"`` → ``("canonical", "ttn")``; unknown names raise ``ValueError``."""
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [name for name in names if name not in _PLAN or _WIRE_FORMAT.get(name, name) not in ENCODERS]
    if unknown or not names:
        raise ValueError(
            f"unknown source format(s) {', '.join(unknown) or '(none given)'}; choose from "
            f"{', '.join(BENCH_FORMATS)}, or care (finding-heavy homes)"
        )
    return names


def build_registry(devices: int, formats: Sequence[str]) -> Registry:
    """A registry of ``devices`` devices, spread round-robin over ``formats`` and their usual device kinds."""
    homes: dict[str, dict[str, Any]] = {}
    beds: list[dict[str, Any]] = []
    sites: list[dict[str, Any]] = []
    specs: list[dict[str, Any]] = []
    per_format: dict[str, int] = dict.fromkeys(formats, 0)
    for index in range(devices):
        source_format = formats[index % len(formats)]
        nth = per_format[source_format]
        per_format[source_format] += 1
        domain, kind, room, model = _PLAN[source_format][nth % len(_PLAN[source_format])]
        device_id = f"bench-{index:06d}"
        spec: dict[str, Any] = {
            "id": device_id, "domain": domain, "kind": kind, "format": _WIRE_FORMAT.get(source_format, source_format),
        }
        if domain == "home":
            subject = f"h-{index // _DEVICES_PER_HOME:05d}"
            homes.setdefault(subject, {"id": subject})
            spec["room"] = room
        elif domain == "soil":
            subject = f"bed-{index:06d}"
            beds.append({"id": subject, "name": f"Bench bed {index}", "lat": 53.04, "lon": -2.99})
        else:
            subject = f"air-{index:06d}"
            sites.append({"id": subject, "name": f"Bench site {index}", "lat": 53.05, "lon": -2.99})
        spec["subject"] = subject
        if model:
            spec["model"] = model
        if source_format == "chirpstack":
            spec["source_id"] = f"a84041ffff{index:06x}"  # a DevEUI, as ChirpStack names devices
        specs.append(spec)
    return Registry.from_data(
        {"homes": list(homes.values()), "flowerbeds": beds, "air_sites": sites, "devices": specs}
    )


def _walk(state: dict[str, float], name: str, rng: random.Random, start: tuple[float, float], step: float,
          low: float, high: float) -> float:
    """A bounded random walk: sensors drift, they do not jump to a fresh random value on every message (which
    would make every threshold rule flap and measure alert churn instead of a realistic load)."""
    value = state.get(name)
    value = rng.uniform(*start) if value is None else min(high, max(low, value + rng.uniform(-step, step)))
    state[name] = value
    return value


def _metrics(device: DeviceSpec, rng: random.Random, state: dict[str, float]) -> tuple[dict[str, float | bool],
                                                                                      float | None]:
    """Plausible metrics for one message of ``device``; each device always sends the same metric names."""
    kind = device.kind
    battery = round(_walk(state, "battery", rng, (40, 100), 0.01, 21, 100), 1)
    if kind == "help_button":
        # Now and then a press: each raises (or updates) a critical care alert, which gives event→alert latency.
        return {"help_pressed": rng.random() < (0.5 if device.model == HEAVY_PRESSER else 0.05)}, battery
    if kind == "motion":
        return {"motion": rng.random() < 0.3}, battery
    if kind == "front_door":
        return {"door_open": rng.random() < 0.1}, battery
    if kind == "bed":
        return {"occupied": rng.random() < 0.4}, battery
    if kind == "kettle":
        return {"power_w": round(rng.choice((0.0, 0.0, 0.0, rng.uniform(1800, 3000))), 1)}, None
    if kind == "climate":
        return {
            "temperature_c": round(_walk(state, "t", rng, (18, 22), 0.05, 17, 24), 2),
            "humidity_pct": round(_walk(state, "h", rng, (35, 60), 0.2, 30, 70), 1),
        }, battery
    if kind == "soil":
        return {
            "soil_moisture_pct": round(_walk(state, "m", rng, (35, 60), 0.05, 30, 65), 2),
            "soil_temperature_c": round(_walk(state, "t", rng, (6, 18), 0.05, 4, 22), 2),
            "soil_conductivity_us_cm": float(round(_walk(state, "ec", rng, (100, 800), 2, 50, 900))),
        }, battery
    return {
        "pm2_5_ugm3": round(_walk(state, "pm25", rng, (3, 10), 0.2, 1, 11), 1),
        "pm10_ugm3": round(_walk(state, "pm10", rng, (6, 14), 0.3, 2, 16), 1),
        "no2_ugm3": round(_walk(state, "no2", rng, (10, 50), 1, 5, 65), 1),
        "temperature_c": round(_walk(state, "t", rng, (5, 15), 0.1, 2, 25), 1),
        "humidity_pct": round(_walk(state, "h", rng, (50, 80), 0.3, 40, 95), 1),
    }, None


@dataclass(frozen=True)
class Workload:
    """The benchmark's messages: ``messages`` of them over the devices of ``registry``."""

    registry: Registry
    messages: int
    base_ms: int
    seed: int = 1

    @property
    def device_list(self) -> list[DeviceSpec]:
        return list(self.registry.devices.values())

    def message_index(self, ts_ms: int) -> int:
        """The index of the message whose event time is ``ts_ms``."""
        return ts_ms - self.base_ms

    def encoded(self, prefix: str = "") -> Iterator[tuple[str, bytes]]:
        """(topic, payload) of every message in publish order."""
        devices = self.device_list
        rng = random.Random(self.seed)
        count = len(devices)
        states: list[dict[str, float]] = [{} for _ in devices]
        for index in range(self.messages):
            device = devices[index % count]
            metrics, battery = _metrics(device, rng, states[index % count])
            measurement = SimMeasurement(
                ts_ms=self.base_ms + index, metrics=metrics, battery_pct=battery, seq=index // count
            )
            yield encode(device, measurement, prefix)
